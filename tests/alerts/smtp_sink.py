"""A real SMTP sink for the email channel's tests: Debian's aiosmtpd on a loopback port.

Writes one JSON line per accepted message (envelope, login, the message text) to --out, and
"READY" on stdout once it listens. Optional: --tls starttls|implicit with --cert/--key, and
--auth USER:PASSWORD (LOGIN/PLAIN over TLS; a wrong login gets 535).
"""
import argparse
import json
import ssl
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Sink:
    def __init__(self, out):
        self.out = out
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "login": login,
            "data": envelope.content.decode("utf-8", "replace"),
        }
        with self.lock, open(self.out, "a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\n")
        return "250 OK"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--tls", choices=["none", "starttls", "implicit"], default="none")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--auth")
    args = parser.parse_args()

    context = None
    if args.tls != "none":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)
    kwargs = {}
    if args.auth:
        user, password = args.auth.split(":", 1)

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = isinstance(auth_data, LoginPassword) and (
                auth_data.login.decode() == user and auth_data.password.decode() == password
            )
            # handled=False: aiosmtpd then answers 535 itself.
            return AuthResult(success=ok, handled=False, auth_data=auth_data)

        # With implicit TLS aiosmtpd does not know the socket is encrypted: allow AUTH anyway.
        kwargs.update(authenticator=authenticator, auth_required=True, auth_require_tls=args.tls == "starttls")
    if args.tls == "starttls":
        kwargs.update(tls_context=context, require_starttls=True)
        controller = Controller(Sink(args.out), hostname="127.0.0.1", port=args.port, server_kwargs=kwargs)
    elif args.tls == "implicit":
        controller = Controller(
            Sink(args.out), hostname="127.0.0.1", port=args.port, ssl_context=context, server_kwargs=kwargs
        )
    else:
        controller = Controller(Sink(args.out), hostname="127.0.0.1", port=args.port, server_kwargs=kwargs)
    controller.start()
    print("READY", flush=True)
    # Until the test kills it (or closes stdin).
    sys.stdin.read()
    controller.stop()


if __name__ == "__main__":
    main()
