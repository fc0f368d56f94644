"""The alerting configuration through the API: channels (every kind, valid and invalid; secrets
sealed at rest, never returned, merged member by member), alert rules and maintenance windows
(references to this project's tests and channels only), the role matrix, audit rows, and every
answer checked against the OpenAPI document."""
import base64
import ctypes
import ctypes.util
import datetime
import json
import re
import secrets
import signal
import uuid

import pytest

from conftest import ADMIN_EMAIL, ADMIN_PASSWORD, SECRET_KEY, Client, Dashboard, err, ok

P = "/api/v1/projects"
NO_ID = "00000000-0000-4000-8000-000000000000"

# ---- every answer of this file is recorded and checked against the OpenAPI document ---------

ROUTES = [
    (re.compile(r"^/api/v1/projects/[^/]+/channels$"), "/api/v1/projects/{project}/channels"),
    (re.compile(r"^/api/v1/projects/[^/]+/channels/[^/]+$"),
     "/api/v1/projects/{project}/channels/{channel}"),
    (re.compile(r"^/api/v1/projects/[^/]+/alert-rules$"), "/api/v1/projects/{project}/alert-rules"),
    (re.compile(r"^/api/v1/projects/[^/]+/alert-rules/[^/]+$"),
     "/api/v1/projects/{project}/alert-rules/{rule}"),
    (re.compile(r"^/api/v1/projects/[^/]+/maintenance-windows$"),
     "/api/v1/projects/{project}/maintenance-windows"),
    (re.compile(r"^/api/v1/projects/[^/]+/maintenance-windows/[^/]+$"),
     "/api/v1/projects/{project}/maintenance-windows/{window}"),
]
OPERATIONS = [(m, t) for _, t in ROUTES[0::2] for m in ("get", "post")] + \
             [(m, t) for _, t in ROUTES[1::2] for m in ("get", "patch", "delete")]
SEEN = []


@pytest.fixture(scope="module", autouse=True)
def record_answers():
    original = Client.request

    def request(self, method, path, **kw):
        r = original(self, method, path, **kw)
        for rx, template in ROUTES:
            if rx.match(path.split("?")[0]):
                body = r.json() if r.content and r.headers.get(
                    "Content-Type", "").startswith("application/json") else None
                SEEN.append((method.lower(), template, r.status_code, body))
        return r

    Client.request = request
    yield
    Client.request = original


# ---- helpers -----------------------------------------------------------------------------------

_sodium = ctypes.CDLL(ctypes.util.find_library("sodium") or "libsodium.so.23")
_sodium.sodium_init()


def unseal(value):
    """Open a value sealed by the dashboard (v1: + base64(nonce || secretbox)) with the key the
    test dashboard was given: what the mailer and connector will do."""
    assert value.startswith("v1:"), value
    box = base64.b64decode(value[3:])
    nonce, c = box[:24], box[24:]
    m = ctypes.create_string_buffer(len(c) - 16)
    rc = _sodium.crypto_secretbox_open_easy(m, c, ctypes.c_ulonglong(len(c)), nonce,
                                            bytes.fromhex(SECRET_KEY))
    assert rc == 0, "the sealed value does not open with RAMPART_SECRET_KEY"
    return m.raw.decode()


def at(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def stored_secrets(dash, channel_id):
    return dash.sql("SELECT secrets FROM channels WHERE id = %s", (channel_id,))[0][0]


def add_test(dash, project, name=None):
    return str(dash.sql("INSERT INTO tests (project_id, name) VALUES (%s, %s) RETURNING id",
                        (project["id"], name or "t-" + uuid.uuid4().hex[:8]))[0][0])


def api_key(dash, project, role):
    """A Client with an API key of `role` in `project` (inserted directly: the keys API is
    another file's)."""
    prefix = secrets.token_hex(6)
    token = f"rpk_{prefix}_{secrets.token_urlsafe(24)}"
    dash.sql("INSERT INTO api_keys (project_id, name, role, prefix, token_hash) "
             "VALUES (%s, %s, %s, %s, sha256(convert_to(%s, 'UTF8')))",
             (project["id"], "ci-" + prefix, role, prefix, token))
    return Client(dash.url, api_key=token)


def audit(dash, target_id):
    return dash.sql("SELECT action, details::text, actor FROM audit_log WHERE target_id = %s "
                    "ORDER BY id", (str(target_id),))


def slack(client, project, name=None, url="https://hooks.slack.com/services/T0/B0/xyz"):
    return ok(client.post(f"{P}/{project['id']}/channels",
                          {"name": name or "slack-" + uuid.uuid4().hex[:6], "kind": "slack",
                           "secrets": {"webhook_url": url}}), 201)


@pytest.fixture
def proj(make_project):
    return make_project()


# ---- channels: every kind ----------------------------------------------------------------------

SP_OPEN = {"method": "POST", "url": "https://api.statuspage.example/v1/pages/p/incidents",
           "body_template": "{\"incident\": {\"name\": \"{{test.name}} is failing\"}}"}
SP_RESOLVE = {"method": "PATCH", "url": "https://api.statuspage.example/v1/pages/p/incidents/x"}

VALID = [
    ("email", {"to": ["ops@example.com", "o'neil+alerts@mail.example.org"],
               "cc": ["lead@example.com"]}, None),
    ("email", {"to": ["root@localhost"]}, {}),
    ("webhook", {"url": "https://hooks.example.com/rampart?x=1", "method": "PUT",
                 "headers": {"X-Env": "prod", "X-Team": "payments"}},
     {"hmac_secret": "hmac-secret-0123456789", "headers": {"Authorization": "Bearer tok-123"}}),
    ("webhook", {"url": "http://127.0.0.1:8080/hook"}, None),
    ("slack", {}, {"webhook_url": "https://hooks.slack.com/services/T000/B000/XXXX"}),
    ("mattermost", None, {"webhook_url": "http://mm.internal:8065/hooks/abc"}),
    ("teams", {}, {"webhook_url": "https://example.webhook.office.com/webhookb2/x@y/z"}),
    ("discord", {}, {"webhook_url": "https://discord.com/api/webhooks/1/abc"}),
    ("pagerduty", {"severity": "warning"}, {"routing_key": "0123456789abcdef0123456789ABCDEF"}),
    ("pagerduty", {}, {"routing_key": "R" * 32}),
    ("opsgenie", {"region": "eu", "priority": "P2"},
     {"api_key": "11111111-2222-3333-4444-555555555555"}),
    ("statuspage", {"open": SP_OPEN, "resolve": SP_RESOLVE},
     {"headers": {"Authorization": "OAuth statuspage-token"}}),
    ("statuspage", {"open": SP_RESOLVE, "resolve": SP_RESOLVE}, None),
]


@pytest.mark.parametrize("kind,config,secret", VALID,
                         ids=[f"{v[0]}-{i}" for i, v in enumerate(VALID)])
def test_channel_kind_valid(dash, admin, proj, kind, config, secret):
    body = {"name": f"{kind} channel", "kind": kind}
    if config is not None:
        body["config"] = config
    if secret is not None:
        body["secrets"] = secret
    r = admin.post(f"{P}/{proj['id']}/channels", body)
    c = ok(r, 201)
    assert c["kind"] == kind and c["name"] == f"{kind} channel" and c["enabled"] is True
    assert c["config"] == (config or {})
    assert c["secrets"] == {k: {"set": True} for k in (secret or {})}
    got = ok(admin.get(f"{P}/{proj['id']}/channels/{c['id']}"))
    assert got == c
    items = ok(admin.get(f"{P}/{proj['id']}/channels"))["items"]
    assert [i["id"] for i in items] == [c["id"]]
    # the values are sealed at rest and open with the key; no answer shows them
    stored = stored_secrets(dash, c["id"])
    assert sorted(stored) == sorted(secret or {})
    for name, value in (secret or {}).items():
        plain = unseal(stored[name])
        assert (json.loads(plain) if isinstance(value, dict) else plain) == value
        for text in (r.text, json.dumps(got), json.dumps(items)):
            for v in (value.values() if isinstance(value, dict) else [value]):
                assert v not in text
    assert [a[0] for a in audit(dash, c["id"])] == ["channel.create"]


SR = SP_RESOLVE
INVALID = [
    ("email", None, None, "missing_field", "config.to"),
    ("email", {"to": []}, None, "invalid_field", "config.to"),
    ("email", {"to": "ops@example.com"}, None, "invalid_field", "config.to"),
    ("email", {"to": ["not-an-address"]}, None, "invalid_field", "config.to[0]"),
    ("email", {"to": ["a@example.com", "x@@example.com"]}, None, "invalid_field", "config.to[1]"),
    ("email", {"to": ["a@-example.com"]}, None, "invalid_field", "config.to[0]"),
    ("email", {"to": ["ops@example.com\r\nBcc: x@evil.example"]}, None, "invalid_field",
     "config.to[0]"),
    ("email", {"to": [3]}, None, "invalid_field", "config.to[0]"),
    ("email", {"to": [f"u{i}@example.com" for i in range(51)]}, None, "invalid_field",
     "config.to"),
    ("email", {"to": ["a@example.com"], "cc": ["nope"]}, None, "invalid_field", "config.cc[0]"),
    ("email", {"to": ["a@example.com"], "bcc": ["b@example.com"]}, None, "unknown_field",
     "config.bcc"),
    ("email", {"to": ["a@example.com"]}, {"password": "x"}, "unknown_field", "secrets.password"),
    ("email", ["a@example.com"], None, "invalid_field", "config"),
    ("webhook", {}, None, "missing_field", "config.url"),
    ("webhook", {"url": "ftp://example.com/x"}, None, "invalid_field", "config.url"),
    ("webhook", {"url": "https://user:pw@example.com/x"}, None, "invalid_field", "config.url"),
    ("webhook", {"url": "https:///no-host"}, None, "invalid_field", "config.url"),
    ("webhook", {"url": "https://example.com/a b"}, None, "invalid_field", "config.url"),
    ("webhook", {"url": "https://example.com", "method": "GET"}, None, "invalid_field",
     "config.method"),
    ("webhook", {"url": "https://example.com", "headers": {"X-A": "v\r\nX-Injected: 1"}}, None,
     "invalid_field", "config.headers.X-A"),
    ("webhook", {"url": "https://example.com", "headers": {"Bad Name": "v"}}, None,
     "invalid_field", "config.headers.Bad Name"),
    ("webhook", {"url": "https://example.com", "headers": {"Host": "evil.example"}}, None,
     "invalid_field", "config.headers.Host"),
    ("webhook", {"url": "https://example.com", "headers": {"X-A": 1}}, None, "invalid_field",
     "config.headers.X-A"),
    ("webhook", {"url": "https://example.com", "headers": ["X-A"]}, None, "invalid_field",
     "config.headers"),
    ("webhook", {"url": "https://example.com",
                 "headers": {f"X-{i}": "v" for i in range(33)}}, None, "invalid_field",
     "config.headers"),
    ("webhook", {"url": "https://example.com"}, {"hmac_secret": "short"}, "invalid_field",
     "secrets.hmac_secret"),
    ("webhook", {"url": "https://example.com"}, {"headers": {"X-Token": "a\nb"}},
     "invalid_field", "secrets.headers.X-Token"),
    ("webhook", {"url": "https://example.com"}, {"hmac_secret": None}, "invalid_field",
     "secrets.hmac_secret"),
    ("webhook", {"url": "https://example.com"}, "token", "invalid_field", "secrets"),
    ("slack", {}, None, "missing_field", "secrets.webhook_url"),
    ("slack", {}, {"webhook_url": "hooks.slack.com/services/x"}, "invalid_field",
     "secrets.webhook_url"),
    ("slack", {"channel": "#ops"}, {"webhook_url": "https://hooks.slack.com/x"}, "unknown_field",
     "config.channel"),
    ("mattermost", {}, {"webhook_url": 5}, "invalid_field", "secrets.webhook_url"),
    ("teams", {}, {}, "missing_field", "secrets.webhook_url"),
    ("discord", {}, {"webhook_url": "javascript:alert(1)"}, "invalid_field",
     "secrets.webhook_url"),
    ("discord", {}, {"webhook_url": "https://discord.com/x", "token": "y"}, "unknown_field",
     "secrets.token"),
    ("pagerduty", {}, {"routing_key": "tooshort"}, "invalid_field", "secrets.routing_key"),
    ("pagerduty", {}, {"routing_key": "0123456789abcdef0123456789abcde!"}, "invalid_field",
     "secrets.routing_key"),
    ("pagerduty", {"severity": "fatal"}, {"routing_key": "0" * 32}, "invalid_field",
     "config.severity"),
    ("pagerduty", {}, None, "missing_field", "secrets.routing_key"),
    ("opsgenie", {"region": "asia"}, {"api_key": "k" * 20}, "invalid_field", "config.region"),
    ("opsgenie", {"priority": "P6"}, {"api_key": "k" * 20}, "invalid_field", "config.priority"),
    ("opsgenie", {}, {"api_key": "has a space inside"}, "invalid_field", "secrets.api_key"),
    ("opsgenie", {}, None, "missing_field", "secrets.api_key"),
    ("statuspage", {"open": SP_OPEN}, None, "missing_field", "config.resolve"),
    ("statuspage", {"open": dict(SP_OPEN, method="GET"), "resolve": SR}, None, "invalid_field",
     "config.open.method"),
    ("statuspage", {"open": {"method": "POST"}, "resolve": SR}, None, "missing_field",
     "config.open.url"),
    ("statuspage", {"open": SP_OPEN, "resolve": dict(SR, extra=1)}, None, "unknown_field",
     "config.resolve.extra"),
    ("statuspage", {"open": "https://x.example/i", "resolve": SR}, None, "invalid_field",
     "config.open"),
    ("statuspage", {"open": SP_OPEN, "resolve": dict(SR, url="file:///etc/passwd")}, None,
     "invalid_field", "config.resolve.url"),
    ("statuspage", {"open": SP_OPEN, "resolve": SR}, {"hmac_secret": "x" * 20}, "unknown_field",
     "secrets.hmac_secret"),
    ("sms", {}, None, "invalid_field", "kind"),
    (3, {}, None, "invalid_field", "kind"),
]


@pytest.mark.parametrize("kind,config,secret,code,field", INVALID,
                         ids=[f"{v[0]}-{v[4]}-{i}" for i, v in enumerate(INVALID)])
def test_channel_kind_invalid(dash, admin, proj, kind, config, secret, code, field):
    body = {"name": "bad", "kind": kind}
    if config is not None:
        body["config"] = config
    if secret is not None:
        body["secrets"] = secret
    e = err(admin.post(f"{P}/{proj['id']}/channels", body), 400, code)
    assert e["field"] == field, e
    assert field in e["message"], e
    assert ok(admin.get(f"{P}/{proj['id']}/channels"))["items"] == []


def test_channel_repeated_members_refused(admin, proj):
    raw = ('{"name": "dup", "kind": "email", "config": {"to": ["a@example.com"], '
           '"to": ["b@example.com"]}}')
    e = err(admin.request("POST", f"{P}/{proj['id']}/channels", data=raw,
                          headers={"Content-Type": "application/json"}), 400, "invalid_field")
    assert e["field"] == "config.to" and "twice" in e["message"]
    dup_header = {"name": "dup", "kind": "webhook",
                  "config": {"url": "https://example.com", "headers": {"X-A": "1", "x-a": "2"}}}
    e = err(admin.post(f"{P}/{proj['id']}/channels", dup_header), 400, "invalid_field")
    assert e["field"] == "config.headers.x-a"


def test_channel_name_unique_and_enabled(admin, proj):
    c = ok(admin.post(f"{P}/{proj['id']}/channels",
                      {"name": "mail", "kind": "email", "config": {"to": ["a@example.com"]},
                       "enabled": False}), 201)
    assert c["enabled"] is False
    err(admin.post(f"{P}/{proj['id']}/channels",
                   {"name": "mail", "kind": "email", "config": {"to": ["b@example.com"]}}),
        409, "conflict")
    err(admin.post(f"{P}/{proj['id']}/channels",
                   {"name": "", "kind": "email", "config": {"to": ["b@example.com"]}}),
        400, "invalid_field")
    err(admin.post(f"{P}/{proj['id']}/channels", {"kind": "email"}), 400, "missing_field")
    err(admin.post(f"{P}/{proj['id']}/channels",
                   {"name": "x", "kind": "email", "config": {"to": ["b@example.com"]},
                    "enabled": "yes"}), 400, "invalid_field")
    err(admin.post(f"{P}/{proj['id']}/channels",
                   {"name": "x", "kind": "email", "config": {"to": ["b@example.com"]},
                    "color": "red"}), 400, "unknown_field")


# ---- secrets -----------------------------------------------------------------------------------

def test_secrets_merge_on_patch(dash, admin, proj):
    base = f"{P}/{proj['id']}/channels"
    c = ok(admin.post(base, {"name": "hook", "kind": "webhook",
                             "config": {"url": "https://example.com/h", "method": "PUT"},
                             "secrets": {"hmac_secret": "first-secret-value-1",
                                         "headers": {"Authorization": "Bearer one"}}}), 201)
    url = f"{base}/{c['id']}"
    before = stored_secrets(dash, c["id"])
    # a member given replaces that member only
    r = admin.patch(url, {"secrets": {"hmac_secret": "second-secret-value-2"}})
    got = ok(r)
    assert got["secrets"] == {"hmac_secret": {"set": True}, "headers": {"set": True}}
    assert "second-secret-value-2" not in r.text
    after = stored_secrets(dash, c["id"])
    assert unseal(after["hmac_secret"]) == "second-secret-value-2"
    assert after["headers"] == before["headers"]
    assert got["config"] == {"url": "https://example.com/h", "method": "PUT"}
    # null removes an optional member; a config given replaces the whole config
    got = ok(admin.patch(url, {"secrets": {"headers": None},
                               "config": {"url": "https://example.com/other"}}))
    assert got["secrets"] == {"hmac_secret": {"set": True}}
    assert got["config"] == {"url": "https://example.com/other"}
    assert sorted(stored_secrets(dash, c["id"])) == ["hmac_secret"]
    # nothing about secrets given: all kept
    got = ok(admin.patch(url, {"enabled": False, "name": "hook 2"}))
    assert got["enabled"] is False and got["name"] == "hook 2"
    assert unseal(stored_secrets(dash, c["id"])["hmac_secret"]) == "second-secret-value-2"
    # the audit trail names the secrets changed, never their values
    rows = audit(dash, c["id"])
    assert [a[0] for a in rows] == ["channel.create"] + ["channel.update"] * 3
    assert json.loads(rows[1][1])["secrets_set"] == ["hmac_secret"]
    assert json.loads(rows[2][1])["secrets_removed"] == ["headers"]
    assert json.loads(rows[3][1])["changed"] == ["enabled", "name"]
    everything = json.dumps(rows)
    for plain in ("first-secret-value-1", "second-secret-value-2", "Bearer one"):
        assert plain not in everything


def test_required_secret_cannot_be_removed_but_replaced(dash, admin, proj):
    c = slack(admin, proj)
    url = f"{P}/{proj['id']}/channels/{c['id']}"
    e = err(admin.patch(url, {"secrets": {"webhook_url": None}}), 400, "invalid_field")
    assert e["field"] == "secrets.webhook_url"
    err(admin.patch(url, {"secrets": {"webhook_url": "nope"}}), 400, "invalid_field")
    err(admin.patch(url, {"secrets": {"other": "x"}}), 400, "unknown_field")
    err(admin.patch(url, {"config": {"channel": "#x"}}), 400, "unknown_field")
    ok(admin.patch(url, {"secrets": {"webhook_url": "https://hooks.slack.com/services/new"}}))
    assert unseal(stored_secrets(dash, c["id"])["webhook_url"]) == \
        "https://hooks.slack.com/services/new"


def test_kind_cannot_change(admin, proj):
    c = slack(admin, proj)
    url = f"{P}/{proj['id']}/channels/{c['id']}"
    e = err(admin.patch(url, {"kind": "discord"}), 400, "invalid_field")
    assert e["field"] == "kind"
    assert ok(admin.patch(url, {"kind": "slack", "name": "same kind"}))["name"] == "same kind"
    err(admin.patch(url, {"kind": 7}), 400, "invalid_field")


def test_secret_key_missing():
    """A dashboard without RAMPART_SECRET_KEY refuses to store secrets (and only secrets)."""
    d = Dashboard("rampart_api_nokey_" + secrets.token_hex(4), {"RAMPART_SECRET_KEY": ""})
    d.create_databases()
    try:
        d.start()
        a = Client(d.url).login(ADMIN_EMAIL, ADMIN_PASSWORD)
        p = ok(a.post(P, {"slug": "nokey-" + secrets.token_hex(3), "name": "no key"}), 201)
        base = f"{P}/{p['id']}/channels"
        e = err(a.post(base, {"name": "s", "kind": "slack",
                              "secrets": {"webhook_url": "https://hooks.slack.com/x"}}),
                400, "secret_key_missing")
        assert e["field"] == "secrets"
        # validation comes first: a bad secret is named even without a key
        err(a.post(base, {"name": "s", "kind": "slack", "secrets": {"webhook_url": "x"}}), 400,
            "invalid_field")
        ok(a.post(base, {"name": "m", "kind": "email", "config": {"to": ["a@example.com"]}}),
           201)
        w = ok(a.post(base, {"name": "w", "kind": "webhook",
                             "config": {"url": "https://example.com"}}), 201)
        err(a.patch(f"{base}/{w['id']}", {"secrets": {"hmac_secret": "0123456789abcdefg"}}),
            400, "secret_key_missing")
        # removing needs no key
        ok(a.patch(f"{base}/{w['id']}", {"secrets": {"hmac_secret": None}}))
        assert d.sql("SELECT count(*) FROM channels WHERE secrets <> '{}'")[0][0] == 0
        assert d.stop() == 0
    finally:
        d.stop(signal.SIGKILL)
        d.drop_databases()


def test_channel_delete_leaves_no_dangling_rule_reference(dash, admin, proj):
    a, b = slack(admin, proj), slack(admin, proj)
    rule = ok(admin.post(f"{P}/{proj['id']}/alert-rules",
                         {"name": "r", "channel_ids": [a["id"], b["id"]]}), 201)
    ok(admin.delete(f"{P}/{proj['id']}/channels/{a['id']}"), 204)
    err(admin.get(f"{P}/{proj['id']}/channels/{a['id']}"), 404, "not_found")
    err(admin.delete(f"{P}/{proj['id']}/channels/{a['id']}"), 404, "not_found")
    got = ok(admin.get(f"{P}/{proj['id']}/alert-rules/{rule['id']}"))
    assert got["channel_ids"] == [b["id"]]
    assert [x[0] for x in audit(dash, a["id"])] == ["channel.create", "channel.delete"]
    assert json.loads(audit(dash, a["id"])[1][1])["kind"] == "slack"


# ---- alert rules ---------------------------------------------------------------------------------

def test_rule_defaults_and_crud(dash, admin, proj):
    base = f"{P}/{proj['id']}/alert-rules"
    r = ok(admin.post(base, {"name": "everything"}), 201)
    assert {k: r[k] for k in ("test_ids", "tags", "on_opened", "on_resolved", "failures_to_open",
                              "passes_to_resolve", "remind_every_s", "channel_ids", "enabled")} == {
        "test_ids": [], "tags": [], "on_opened": True, "on_resolved": True,
        "failures_to_open": 2, "passes_to_resolve": 1, "remind_every_s": None,
        "channel_ids": [], "enabled": True}
    t1, t2 = add_test(dash, proj), add_test(dash, proj)
    ch = slack(admin, proj)
    full = {"name": "checkout", "test_ids": [t1, t2], "tags": ["prod", "team:payments"],
            "on_opened": True, "on_resolved": False, "failures_to_open": 5,
            "passes_to_resolve": 3, "remind_every_s": 3600, "channel_ids": [ch["id"]],
            "enabled": False}
    r2 = ok(admin.post(base, full), 201)
    assert {k: r2[k] for k in full} == full
    assert ok(admin.get(f"{base}/{r2['id']}")) == r2
    assert [x["name"] for x in ok(admin.get(base))["items"]] == ["checkout", "everything"]
    # PATCH: given members replace, absent ones are kept, null clears the reminder
    r3 = ok(admin.patch(f"{base}/{r2['id']}", {"remind_every_s": None, "tags": [],
                                               "failures_to_open": 1}))
    assert r3["remind_every_s"] is None and r3["tags"] == [] and r3["failures_to_open"] == 1
    assert r3["test_ids"] == [t1, t2] and r3["passes_to_resolve"] == 3
    r4 = ok(admin.patch(f"{base}/{r2['id']}", {"remind_every_s": 60}))
    assert r4["remind_every_s"] == 60 and r4["tags"] == []
    err(admin.patch(f"{base}/{r2['id']}", {"name": "everything"}), 409, "conflict")
    err(admin.post(base, {"name": "checkout"}), 409, "conflict")
    ok(admin.delete(f"{base}/{r2['id']}"), 204)
    err(admin.get(f"{base}/{r2['id']}"), 404, "not_found")
    err(admin.patch(f"{base}/{r2['id']}", {"name": "x"}), 404, "not_found")
    err(admin.delete(f"{base}/{r2['id']}"), 404, "not_found")
    assert [x[0] for x in audit(dash, r2["id"])] == [
        "alert_rule.create", "alert_rule.update", "alert_rule.update", "alert_rule.delete"]


@pytest.mark.parametrize("body,field", [
    ({"failures_to_open": 0}, "failures_to_open"),
    ({"failures_to_open": 101}, "failures_to_open"),
    ({"failures_to_open": "2"}, "failures_to_open"),
    ({"failures_to_open": 2.5}, "failures_to_open"),
    ({"passes_to_resolve": 0}, "passes_to_resolve"),
    ({"passes_to_resolve": 101}, "passes_to_resolve"),
    ({"remind_every_s": 59}, "remind_every_s"),
    ({"remind_every_s": 2592001}, "remind_every_s"),
    ({"on_opened": 1}, "on_opened"),
    ({"on_resolved": None}, "on_resolved"),
    ({"enabled": "true"}, "enabled"),
    ({"tags": ["ok", "bad tag"]}, "tags[1]"),
    ({"tags": "prod"}, "tags"),
    ({"test_ids": ["not-a-uuid"]}, "test_ids[0]"),
    ({"channel_ids": [5]}, "channel_ids[0]"),
    ({"channel_ids": [str(uuid.uuid4()) for _ in range(51)]}, "channel_ids"),
    ({"name": "x" * 101}, "name"),
])
def test_rule_bad_values(admin, proj, body, field):
    e = err(admin.post(f"{P}/{proj['id']}/alert-rules", dict({"name": "r"}, **body)), 400,
            "invalid_field")
    assert e["field"] == field, e


def test_rule_references_stay_in_the_project(dash, admin, proj, make_project):
    other = make_project()
    mine, theirs = add_test(dash, proj), add_test(dash, other)
    my_ch, their_ch = slack(admin, proj), slack(admin, other)
    base = f"{P}/{proj['id']}/alert-rules"
    e = err(admin.post(base, {"name": "r", "test_ids": [mine, theirs]}), 400, "unknown_reference")
    assert e["field"] == "test_ids[1]"
    e = err(admin.post(base, {"name": "r", "test_ids": [NO_ID]}), 400, "unknown_reference")
    assert e["field"] == "test_ids[0]"
    e = err(admin.post(base, {"name": "r", "channel_ids": [my_ch["id"], their_ch["id"]]}), 400,
            "unknown_reference")
    assert e["field"] == "channel_ids[1]"
    e = err(admin.post(base, {"name": "r", "test_ids": [mine, mine.upper()]}), 400,
            "invalid_field")
    assert e["field"] == "test_ids[1]" and "repeats" in e["message"]
    r = ok(admin.post(base, {"name": "r", "test_ids": [mine], "channel_ids": [my_ch["id"]]}), 201)
    e = err(admin.patch(f"{base}/{r['id']}", {"channel_ids": [their_ch["id"]]}), 400,
            "unknown_reference")
    assert e["field"] == "channel_ids[0]"
    # a rule or channel of another project is not found through this one
    their_rule = ok(admin.post(f"{P}/{other['id']}/alert-rules", {"name": "theirs"}), 201)
    err(admin.get(f"{base}/{their_rule['id']}"), 404, "not_found")
    err(admin.patch(f"{base}/{their_rule['id']}", {"name": "stolen"}), 404, "not_found")
    err(admin.delete(f"{base}/{their_rule['id']}"), 404, "not_found")
    err(admin.get(f"{P}/{proj['id']}/channels/{their_ch['id']}"), 404, "not_found")
    err(admin.patch(f"{P}/{proj['id']}/channels/{their_ch['id']}", {"name": "x"}), 404)
    err(admin.delete(f"{P}/{proj['id']}/channels/{their_ch['id']}"), 404, "not_found")
    assert ok(admin.get(f"{P}/{other['id']}/alert-rules/{their_rule['id']}"))["name"] == "theirs"


# ---- maintenance windows -------------------------------------------------------------------------

def test_window_once_crud(dash, admin, proj):
    base = f"{P}/{proj['id']}/maintenance-windows"
    t = add_test(dash, proj)
    w = ok(admin.post(base, {"name": "upgrade", "kind": "once",
                             "starts_at": "2030-01-31T22:00:00Z",
                             "ends_at": "2030-02-01T01:30:00.5+01:00",
                             "test_ids": [t], "tags": ["db"]}), 201)
    assert w["kind"] == "once" and w["test_ids"] == [t] and w["tags"] == ["db"]
    assert w["active"] is False
    assert at(w["starts_at"]) == at("2030-01-31T22:00:00Z") and "days" not in w
    assert at(w["ends_at"]) == at("2030-02-01T00:30:00.5Z")
    assert ok(admin.get(f"{base}/{w['id']}")) == w
    assert dash.sql("SELECT ends_at = '2030-02-01T00:30:00.5Z' FROM maintenance_windows "
                    "WHERE id = %s", (w["id"],))[0][0] is True
    # PATCH keeps the order of the times, checked against the stored ones
    e = err(admin.patch(f"{base}/{w['id']}", {"ends_at": "2030-01-31T21:00:00Z"}), 400,
            "invalid_field")
    assert e["field"] == "ends_at"
    e = err(admin.patch(f"{base}/{w['id']}", {"starts_at": "2030-02-02T00:00:00Z"}), 400,
            "invalid_field")
    assert e["field"] == "starts_at"
    now = ok(admin.patch(f"{base}/{w['id']}", {"starts_at": "2000-01-01T00:00:00Z",
                                               "test_ids": [], "kind": "once"}))
    assert now["active"] is True and now["test_ids"] == [] and now["tags"] == ["db"]
    e = err(admin.patch(f"{base}/{w['id']}", {"days": ["mon"]}), 400, "invalid_field")
    assert e["field"] == "days"
    e = err(admin.patch(f"{base}/{w['id']}", {"kind": "weekly"}), 400, "invalid_field")
    assert e["field"] == "kind"
    err(admin.post(base, {"name": "upgrade", "kind": "once", "starts_at": "2030-01-01T00:00:00Z",
                          "ends_at": "2030-01-02T00:00:00Z"}), 409, "conflict")
    ok(admin.delete(f"{base}/{w['id']}"), 204)
    err(admin.get(f"{base}/{w['id']}"), 404, "not_found")
    assert [x[0] for x in audit(dash, w["id"])] == [
        "maintenance_window.create", "maintenance_window.update", "maintenance_window.delete"]


def test_window_weekly_crud(dash, admin, proj):
    base = f"{P}/{proj['id']}/maintenance-windows"
    w = ok(admin.post(base, {"name": "nightly", "kind": "weekly", "days": ["fri", "mon", "wed"],
                             "start": "22:30", "duration_minutes": 120,
                             "timezone": "Europe/Paris"}), 201)
    assert w["days"] == ["mon", "wed", "fri"] and w["start"] == "22:30"
    assert w["duration_minutes"] == 120 and w["timezone"] == "Europe/Paris"
    assert "starts_at" not in w and w["test_ids"] == [] and w["tags"] == []
    always = ok(admin.post(base, {"name": "always", "kind": "weekly",
                                  "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                                  "start": "00:00", "duration_minutes": 10080,
                                  "timezone": "America/New_York"}), 201)
    assert always["active"] is True
    for tz in ("Etc/GMT+5", "America/Argentina/Buenos_Aires", "EST5EDT", "UTC"):
        assert ok(admin.patch(f"{base}/{w['id']}", {"timezone": tz}))["timezone"] == tz
    w2 = ok(admin.patch(f"{base}/{w['id']}", {"timezone": "UTC", "days": ["sun"],
                                              "start": "03:05"}))
    assert w2["timezone"] == "UTC" and w2["days"] == ["sun"] and w2["start"] == "03:05"
    assert w2["duration_minutes"] == 120
    e = err(admin.patch(f"{base}/{w['id']}", {"ends_at": "2030-01-01T00:00:00Z"}), 400,
            "invalid_field")
    assert e["field"] == "ends_at"
    items = ok(admin.get(base))["items"]
    assert [i["name"] for i in items] == ["always", "nightly"]
    ok(admin.delete(f"{base}/{w['id']}"), 204)


def test_window_active_definition(dash, admin, proj):
    """maintenance_window_active(), the one definition the alert pipeline uses."""
    base = f"{P}/{proj['id']}/maintenance-windows"
    w = ok(admin.post(base, {"name": "paris", "kind": "weekly", "days": ["mon"],
                             "start": "22:30", "duration_minutes": 120,
                             "timezone": "Europe/Paris"}), 201)
    late = ok(admin.post(base, {"name": "sunday-night", "kind": "weekly", "days": ["sun"],
                                "start": "23:00", "duration_minutes": 120,
                                "timezone": "UTC"}), 201)

    def active(window, at):
        return dash.sql("SELECT maintenance_window_active(w, %s::timestamptz) "
                        "FROM maintenance_windows w WHERE id = %s", (at, window["id"]))[0][0]

    # 2024-01-01 is a Monday; Paris is UTC+1 in winter, UTC+2 in summer
    assert active(w, "2024-01-01T21:29:59Z") is False
    assert active(w, "2024-01-01T21:30:00Z") is True
    assert active(w, "2024-01-01T23:29:59Z") is True
    assert active(w, "2024-01-01T23:30:00Z") is False
    assert active(w, "2024-01-02T21:45:00Z") is False  # a Tuesday
    assert active(w, "2024-07-01T20:45:00Z") is True
    assert active(w, "2024-07-01T22:31:00Z") is False
    # past midnight into the next day
    assert active(late, "2024-01-08T00:30:00Z") is True
    assert active(late, "2024-01-08T01:00:00Z") is False
    assert active(late, "2024-01-07T22:59:00Z") is False


BAD_WINDOWS = [
    ({"kind": "daily"}, "invalid_field", "kind"),
    ({"kind": "once"}, "missing_field", "starts_at"),
    ({"kind": "once", "starts_at": "2030-01-01T00:00:00Z"}, "missing_field", "ends_at"),
    ({"kind": "once", "starts_at": "2030-01-01", "ends_at": "2030-01-02T00:00:00Z"},
     "invalid_field", "starts_at"),
    ({"kind": "once", "starts_at": "2030-13-01T00:00:00Z", "ends_at": "2031-01-02T00:00:00Z"},
     "invalid_field", "starts_at"),
    ({"kind": "once", "starts_at": "2030-02-29T00:00:00Z", "ends_at": "2031-01-02T00:00:00Z"},
     "invalid_field", "starts_at"),
    ({"kind": "once", "starts_at": "2030-01-01T00:00:00", "ends_at": "2031-01-02T00:00:00Z"},
     "invalid_field", "starts_at"),
    ({"kind": "once", "starts_at": "2030-01-01 00:00:00Z", "ends_at": "2031-01-02T00:00:00Z"},
     "invalid_field", "starts_at"),
    ({"kind": "once", "starts_at": "2030-01-01T24:00:00Z", "ends_at": "2031-01-02T00:00:00Z"},
     "invalid_field", "starts_at"),
    ({"kind": "once", "starts_at": "2030-01-01T00:00:00.Z", "ends_at": "2031-01-02T00:00:00Z"},
     "invalid_field", "starts_at"),
    ({"kind": "once", "starts_at": "2030-01-01T00:00:00+0100", "ends_at": "2031-01-02T00:00:00Z"},
     "invalid_field", "starts_at"),
    ({"kind": "once", "starts_at": "2030-01-02T00:00:00Z", "ends_at": "2030-01-02T00:00:00Z"},
     "invalid_field", "ends_at"),
    ({"kind": "once", "starts_at": "2030-01-02T00:00:00Z", "ends_at": "2030-01-02T01:00:00+02:00"},
     "invalid_field", "ends_at"),
    ({"kind": "once", "starts_at": 1893456000, "ends_at": "2030-01-02T00:00:00Z"},
     "invalid_field", "starts_at"),
    ({"kind": "once", "starts_at": "2030-01-01T00:00:00Z", "ends_at": "2030-01-02T00:00:00Z",
      "days": ["mon"]}, "invalid_field", "days"),
    ({"kind": "weekly", "days": ["mon"], "start": "01:00", "duration_minutes": 5,
      "timezone": "UTC", "starts_at": "2030-01-01T00:00:00Z"}, "invalid_field", "starts_at"),
    ({"kind": "weekly", "start": "01:00", "duration_minutes": 5, "timezone": "UTC"},
     "missing_field", "days"),
    ({"kind": "weekly", "days": [], "start": "01:00", "duration_minutes": 5, "timezone": "UTC"},
     "invalid_field", "days"),
    ({"kind": "weekly", "days": ["monday"], "start": "01:00", "duration_minutes": 5,
      "timezone": "UTC"}, "invalid_field", "days[0]"),
    ({"kind": "weekly", "days": ["mon", "tue", "mon"], "start": "01:00", "duration_minutes": 5,
      "timezone": "UTC"}, "invalid_field", "days[2]"),
    ({"kind": "weekly", "days": "mon", "start": "01:00", "duration_minutes": 5,
      "timezone": "UTC"}, "invalid_field", "days"),
    ({"kind": "weekly", "days": ["mon"], "duration_minutes": 5, "timezone": "UTC"},
     "missing_field", "start"),
    ({"kind": "weekly", "days": ["mon"], "start": "24:00", "duration_minutes": 5,
      "timezone": "UTC"}, "invalid_field", "start"),
    ({"kind": "weekly", "days": ["mon"], "start": "7:00", "duration_minutes": 5,
      "timezone": "UTC"}, "invalid_field", "start"),
    ({"kind": "weekly", "days": ["mon"], "start": "12:60", "duration_minutes": 5,
      "timezone": "UTC"}, "invalid_field", "start"),
    ({"kind": "weekly", "days": ["mon"], "start": "01:00", "duration_minutes": 0,
      "timezone": "UTC"}, "invalid_field", "duration_minutes"),
    ({"kind": "weekly", "days": ["mon"], "start": "01:00", "duration_minutes": 10081,
      "timezone": "UTC"}, "invalid_field", "duration_minutes"),
    ({"kind": "weekly", "days": ["mon"], "start": "01:00", "duration_minutes": 5},
     "missing_field", "timezone"),
] + [({"kind": "weekly", "days": ["mon"], "start": "01:00", "duration_minutes": 5,
       "timezone": tz}, "invalid_field", "timezone")
     for tz in ("Mars/Olympus_Mons", "../../../../etc/passwd", "Europe/../../../etc/passwd",
                "/etc/localtime", "zone.tab", "Europe", "Europe//Paris", "europe/paris",
                "right/UTC", "posixrules", "", "Europe/Paris\n", "x" * 65,
                "+01:00", "ABC5", "EST5EDT,M3.2.0,M11.1.0")] + [
    ({"kind": "once", "starts_at": "2030-01-01T00:00:00Z", "ends_at": "2030-01-02T00:00:00Z",
      "test_ids": ["nope"]}, "invalid_field", "test_ids[0]"),
    ({"kind": "once", "starts_at": "2030-01-01T00:00:00Z", "ends_at": "2030-01-02T00:00:00Z",
      "test_ids": [NO_ID]}, "unknown_reference", "test_ids[0]"),
    ({"kind": "once", "starts_at": "2030-01-01T00:00:00Z", "ends_at": "2030-01-02T00:00:00Z",
      "tags": ["a b"]}, "invalid_field", "tags[0]"),
    ({"kind": "once", "starts_at": "2030-01-01T00:00:00Z", "ends_at": "2030-01-02T00:00:00Z",
      "cron": "* * * * *"}, "unknown_field", "cron"),
]


@pytest.mark.parametrize("body,code,field", BAD_WINDOWS,
                         ids=[f"{b[2]}-{i}" for i, b in enumerate(BAD_WINDOWS)])
def test_window_bad_input(admin, proj, body, code, field):
    e = err(admin.post(f"{P}/{proj['id']}/maintenance-windows", dict({"name": "w"}, **body)),
            400, code)
    assert e["field"] == field, e


def test_window_scope_stays_in_the_project(dash, admin, proj, make_project):
    other = make_project()
    theirs = add_test(dash, other)
    base = f"{P}/{proj['id']}/maintenance-windows"
    e = err(admin.post(base, {"name": "w", "kind": "once", "starts_at": "2030-01-01T00:00:00Z",
                              "ends_at": "2030-01-02T00:00:00Z", "test_ids": [theirs]}),
            400, "unknown_reference")
    assert e["field"] == "test_ids[0]"
    w = ok(admin.post(f"{P}/{other['id']}/maintenance-windows",
                      {"name": "w", "kind": "once", "starts_at": "2030-01-01T00:00:00Z",
                       "ends_at": "2030-01-02T00:00:00Z", "test_ids": [theirs]}), 201)
    err(admin.get(f"{base}/{w['id']}"), 404, "not_found")
    err(admin.patch(f"{base}/{w['id']}", {"name": "x"}), 404, "not_found")
    err(admin.delete(f"{base}/{w['id']}"), 404, "not_found")


# ---- roles -------------------------------------------------------------------------------------

def _fixtures(dash, admin, proj):
    """One thing of each resource in `proj`, and a valid create/patch body for each."""
    ch = slack(admin, proj)
    rule = ok(admin.post(f"{P}/{proj['id']}/alert-rules", {"name": "rule"}), 201)
    win = ok(admin.post(f"{P}/{proj['id']}/maintenance-windows",
                        {"name": "win", "kind": "once", "starts_at": "2030-01-01T00:00:00Z",
                         "ends_at": "2030-01-02T00:00:00Z"}), 201)
    return [
        ("channels", ch["id"], lambda: {"name": "c-" + uuid.uuid4().hex[:6], "kind": "email",
                                        "config": {"to": ["a@example.com"]}},
         {"enabled": False}),
        ("alert-rules", rule["id"], lambda: {"name": "r-" + uuid.uuid4().hex[:6]},
         {"enabled": False}),
        ("maintenance-windows", win["id"],
         lambda: {"name": "w-" + uuid.uuid4().hex[:6], "kind": "weekly", "days": ["sat"],
                  "start": "02:00", "duration_minutes": 60, "timezone": "UTC"},
         {"tags": ["x"]}),
    ]


def test_role_matrix(dash, admin, proj, member, make_user):
    viewer, editor, outsider = member(proj, "viewer"), member(proj, "editor"), make_user()
    pid = proj["id"]
    for res, thing, new, patch in _fixtures(dash, admin, proj):
        base = f"{P}/{pid}/{res}"
        # viewers read
        assert thing in [i["id"] for i in ok(viewer.get(base))["items"]]
        ok(viewer.get(f"{base}/{thing}"))
        # ... and cannot write
        err(viewer.post(base, new()), 403, "forbidden")
        err(viewer.patch(f"{base}/{thing}", patch), 403, "forbidden")
        err(viewer.delete(f"{base}/{thing}"), 403, "forbidden")
        # outsiders do not even see the project
        for r in (outsider.get(base), outsider.get(f"{base}/{thing}"),
                  outsider.post(base, new()), outsider.patch(f"{base}/{thing}", patch),
                  outsider.delete(f"{base}/{thing}")):
            err(r, 404, "not_found")
        # editors write (and the audit row names them)
        created = ok(editor.post(base, new()), 201)
        ok(editor.patch(f"{base}/{created['id']}", patch))
        ok(editor.delete(f"{base}/{created['id']}"), 204)
        assert audit(dash, created["id"])[0][2] == "user:" + editor.user["email"]
        # a cookie write needs the CSRF token
        err(editor.post(base, new(), csrf=False), 403, "csrf_failed")
        assert ok(admin.get(f"{base}/{thing}"))["id"] == thing


def test_api_keys_are_scoped(dash, admin, proj, make_project):
    other = make_project()
    reader, writer = api_key(dash, proj, "viewer"), api_key(dash, proj, "editor")
    stranger = api_key(dash, other, "editor")
    for res, thing, new, patch in _fixtures(dash, admin, proj):
        base = f"{P}/{proj['id']}/{res}"
        ok(reader.get(base))
        ok(reader.get(f"{base}/{thing}"))
        err(reader.post(base, new()), 403, "forbidden")
        err(reader.patch(f"{base}/{thing}", patch), 403, "forbidden")
        err(reader.delete(f"{base}/{thing}"), 403, "forbidden")
        created = ok(writer.post(base, new()), 201)
        ok(writer.patch(f"{base}/{created['id']}", patch))
        ok(writer.delete(f"{base}/{created['id']}"), 204)
        assert audit(dash, created["id"])[0][2].startswith("api-key:")
        err(stranger.get(base), 404, "not_found")
        err(stranger.get(f"{base}/{thing}"), 404, "not_found")
        err(stranger.post(base, new()), 404, "not_found")
    err(Client(dash.url).get(f"{P}/{proj['id']}/channels"), 401, "unauthenticated")


# ---- bad requests on every route ---------------------------------------------------------------

@pytest.mark.parametrize("res", ["channels", "alert-rules", "maintenance-windows"])
def test_bad_requests(admin, proj, res):
    base = f"{P}/{proj['id']}/{res}"
    for path in (base,):
        err(admin.request("POST", path, data="{not json",
                          headers={"Content-Type": "application/json"}), 400, "invalid_json")
        err(admin.request("POST", path, data="[1]",
                          headers={"Content-Type": "application/json"}), 400, "invalid_json")
        err(admin.request("POST", path, data="name=x",
                          headers={"Content-Type": "application/x-www-form-urlencoded"}), 415)
        err(admin.post(path, {"name": "x", "surprise": 1}), 400, "unknown_field")
        err(admin.post(path, {"name": 5}), 400)
    for thing in ("not-a-uuid", NO_ID):
        err(admin.get(f"{base}/{thing}"), 404, "not_found")
        err(admin.patch(f"{base}/{thing}", {"name": "x"}), 404, "not_found")
        err(admin.delete(f"{base}/{thing}"), 404, "not_found")
    err(admin.get(f"{P}/{NO_ID}/{res}"), 404, "not_found")
    err(admin.post(f"{P}/not-a-project/{res}", {"name": "x"}), 404, "not_found")
    err(admin.request("PUT", f"{base}/{NO_ID}"), 405, "method_not_allowed")
    err(admin.request("DELETE", base), 405, "method_not_allowed")
    err(admin.request("PATCH", f"{base}/{NO_ID}", data="{",
                      headers={"Content-Type": "application/json"}), 400, "invalid_json")


# ---- the OpenAPI document ----------------------------------------------------------------------

def _validate(doc, schema, value, where="$"):
    """A small JSON Schema (OpenAPI 3.0 subset) check: $ref, allOf, type, nullable, enum,
    required, properties, additionalProperties, items."""
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].split("/")[-1]]
    for sub in schema.get("allOf", []):
        _validate(doc, sub, value, where)
    if value is None:
        assert schema.get("nullable") or not schema.get("type"), f"{where}: null"
        return
    t = schema.get("type")
    types = {"object": dict, "array": list, "string": str, "boolean": bool}
    if t == "integer":
        assert isinstance(value, int) and not isinstance(value, bool), f"{where}: {value!r}"
    elif t:
        assert isinstance(value, types[t]), f"{where}: {value!r} is not {t}"
    if "enum" in schema:
        assert value in schema["enum"], f"{where}: {value!r} not in {schema['enum']}"
    if isinstance(value, dict):
        for k in schema.get("required", []):
            assert k in value, f"{where}: {k} missing"
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for k, v in value.items():
            if k in props:
                _validate(doc, props[k], v, f"{where}.{k}")
            elif extra is False:
                raise AssertionError(f"{where}: undocumented member {k}")
            elif isinstance(extra, dict):
                _validate(doc, extra, v, f"{where}.{k}")
    if isinstance(value, list) and "items" in schema:
        for i, v in enumerate(value):
            _validate(doc, schema["items"], v, f"{where}[{i}]")


def test_zz_openapi_documents_every_answer(anon):
    """Every route is in the merged document, and every answer this file received has its
    status documented and matches the documented schema (run last: it checks what the tests
    above recorded)."""
    doc = ok(anon.get("/api/v1/openapi.json"))
    for method, template in OPERATIONS:
        op = doc["paths"][template][method]
        if method != "get":
            assert {"$ref": "#/components/parameters/csrf"} in op["parameters"], (method, template)
        if method in ("post", "patch"):
            body = op["requestBody"]["content"]["application/json"]["schema"]
            schema = doc["components"]["schemas"][body["$ref"].split("/")[-1]]
            for variant in schema.get("oneOf", [body]):
                variant = doc["components"]["schemas"][variant["$ref"].split("/")[-1]]
                assert variant["additionalProperties"] is False, (method, template)
    checked = set()
    for method, template, status, body in SEEN:
        if method not in doc["paths"][template]:
            assert status == 405, (method, template, status)
            continue
        responses = doc["paths"][template][method]["responses"]
        assert str(status) in responses, f"{method.upper()} {template}: {status} undocumented"
        resp = responses[str(status)]
        while "$ref" in resp:
            resp = doc["components"]["responses"][resp["$ref"].split("/")[-1]]
        schema = resp.get("content", {}).get("application/json", {}).get("schema")
        if body is not None:
            assert schema, f"{method.upper()} {template} {status}: body not documented"
            _validate(doc, schema, body)
        checked.add((method, template, status))
    assert len(checked) >= 10 or len(SEEN) < 50
