"""Login throttling: failed logins are counted per e-mail and per client address in PostgreSQL
(so every dashboard copy counts the same), and past RAMPART_LOGIN_MAX_FAILURES within
RAMPART_LOGIN_WINDOW further logins are refused with 429 and Retry-After, even with the right
password, until the window has passed. Runs its own dashboard (a low limit, and
X-Forwarded-For trusted to play several client addresses) so the shared one is not locked."""
import secrets
import signal
import time

import pytest

from conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Client, Dashboard, err, ok


@pytest.fixture(scope="module")
def throttled():
    d = Dashboard("rampart_throttle_" + secrets.token_hex(4),
                  extra_env={"RAMPART_LOGIN_MAX_FAILURES": "3", "RAMPART_LOGIN_WINDOW": "4s",
                             "RAMPART_TRUST_PROXY": "true"})
    d.create_databases()
    try:
        d.start()
        yield d
        assert d.stop() == 0
    finally:
        d.stop(signal.SIGKILL)
        d.drop_databases()


def login(d, email, password, ip):
    return Client(d.url).request("POST", "/api/v1/session",
                                 json_body={"email": email, "password": password},
                                 headers={"X-Forwarded-For": ip})


def test_per_email_then_window(throttled):
    for _ in range(3):
        err(login(throttled, ADMIN_EMAIL, "wrong", "10.0.0.1"), 401, "invalid_credentials")
    r = login(throttled, ADMIN_EMAIL, ADMIN_PASSWORD, "10.0.0.1")
    e = err(r, 429, "too_many_attempts")
    assert 1 <= int(r.headers["Retry-After"]) <= 4, r.headers
    assert "try again" in e["message"]
    # another address: the account itself is throttled
    err(login(throttled, ADMIN_EMAIL, ADMIN_PASSWORD, "10.0.0.2"), 429, "too_many_attempts")
    time.sleep(int(r.headers["Retry-After"]) + 0.5)
    ok(login(throttled, ADMIN_EMAIL, ADMIN_PASSWORD, "10.0.0.2"), 201)


def test_per_address(throttled):
    for i in range(3):  # unknown accounts from one address
        err(login(throttled, f"nobody{i}@example.com", "x", "10.0.0.9"), 401,
            "invalid_credentials")
    err(login(throttled, ADMIN_EMAIL, ADMIN_PASSWORD, "10.0.0.9"), 429, "too_many_attempts")
    # the account is fine from elsewhere
    ok(login(throttled, ADMIN_EMAIL, ADMIN_PASSWORD, "10.0.0.10"), 201)


def test_unknown_email_and_wrong_password_look_alike(throttled):
    t0 = time.monotonic()
    a = login(throttled, ADMIN_EMAIL, "wrong-password", "10.0.1.1")
    t1 = time.monotonic()
    b = login(throttled, "no-such-user@example.com", "wrong-password", "10.0.1.2")
    t2 = time.monotonic()
    assert a.status_code == b.status_code == 401
    assert a.json()["error"]["message"] == b.json()["error"]["message"]
    # both verify an argon2id hash (a dummy one for an unknown e-mail)
    assert (t2 - t1) > 0.3 * (t1 - t0), (t1 - t0, t2 - t1)
