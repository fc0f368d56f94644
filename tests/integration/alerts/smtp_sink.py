#!/usr/bin/python3
"""A real SMTP server for the alert tests (Debian's python3-aiosmtpd): accepts every message
and appends it to a file as one JSON line {"mail_from", "rcpt_tos", "data", "received_at"}.

Usage: /usr/bin/python3 smtp_sink.py --port 0 --out FILE [--auth USER:PASS] [--fail-first N]
                                     [--tls-cert CERT --tls-key KEY]

Prints "listening on PORT" on stdout once it accepts connections (port 0 picks a free one).
--auth requires AUTH PLAIN or LOGIN with USER:PASS before MAIL (no TLS needed: loopback only);
--fail-first N answers the first N DATA commands with "451 4.3.0 try again later" (for retry
tests); --tls-cert/--tls-key offer STARTTLS with that certificate (each line then also says
"tls": whether the message came over TLS). Exits cleanly (status 0) on SIGTERM or SIGINT.
"""
import argparse
import asyncio
import datetime
import json
import logging
import signal
import ssl
import sys
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Sink:
    def __init__(self, out, fail_first, tls):
        self.out = out
        self.fail_left = fail_first
        self.tls = tls

    async def handle_DATA(self, server, session, envelope):
        if self.fail_left > 0:
            self.fail_left -= 1
            return "451 4.3.0 try again later"
        data = envelope.content
        if isinstance(data, bytes):
            data = data.decode("utf-8", errors="replace")
        rec = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "data": data,
            "received_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        }
        if self.tls:
            rec["tls"] = session.ssl is not None
        line = json.dumps(rec)
        # written (and closed) before the 250 reply: a client that saw 250 finds the line
        with open(self.out, "a", encoding="utf-8") as f:
            f.write(line + "\n")
        return "250 2.0.0 OK: queued"


class QuietTLSFailures(logging.Filter):
    """Drops aiosmtpd's traceback for a STARTTLS handshake the client abandoned (a test that
    checks certificate verification does that on purpose); other errors still print."""

    def filter(self, record):
        exc = record.exc_info[1] if record.exc_info else None
        return not (exc is not None and type(exc).__name__ == "TLSSetupException")


def authenticator(user, password):
    want = LoginPassword(user.encode(), password.encode())

    def check(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data == want
        return AuthResult(success=ok, handled=False)

    return check


async def serve(args):
    sink = Sink(args.out, args.fail_first, bool(args.tls_cert))
    kwargs = {"hostname": "rampart-smtp-sink"}
    if args.tls_cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        kwargs["tls_context"] = ctx
    if args.auth:
        user, sep, password = args.auth.partition(":")
        if not sep:
            sys.exit("--auth takes USER:PASS")
        kwargs.update(auth_required=True, auth_require_tls=False,
                      authenticator=authenticator(user, password))
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(sink, loop=loop, **kwargs),
                                      host=args.host, port=args.port)
    port = server.sockets[0].getsockname()[1]
    print(f"listening on {port}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()
    await server.wait_closed()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--out", required=True, help="file that receives one JSON line per message")
    p.add_argument("--auth", help="USER:PASS required through AUTH PLAIN/LOGIN")
    p.add_argument("--fail-first", type=int, default=0, metavar="N",
                   help="answer the first N DATA commands with 451")
    p.add_argument("--tls-cert", help="PEM certificate: offer STARTTLS")
    p.add_argument("--tls-key", help="PEM private key of --tls-cert")
    args = p.parse_args()
    if bool(args.tls_cert) != bool(args.tls_key):
        p.error("--tls-cert and --tls-key go together")
    # aiosmtpd warns that AUTH without TLS is unsafe; on loopback in a test that is the point
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    logging.getLogger("mail.log").addFilter(QuietTLSFailures())
    warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
