"""Real loopback servers standing in for Slack (http.server) and a mail relay (aiosmtpd), for the alert tests and
benchmarks/bench_alerts.py. Both can be stopped and restarted on the same port, to play an outage."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SlackServer:
    """An incoming-webhook endpoint at /services/T000/B000/SECRET. `mode` is "ok", "500" or "stall"."""

    path = "/services/T000/B000/XXSECRETXX"

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.mode = "ok"
        self.script: list[str] = []  # modes for the next requests, one each, before `mode` applies again
        self.stall_seconds = 5.0
        self.posts: list[dict[str, Any]] = []  # accepted payloads (answered 200)
        self.hits = 0  # every request, answered or not
        self._server: ThreadingHTTPServer | None = None
        self._release = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    def start(self) -> SlackServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                owner.hits += 1
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path != owner.path or self.headers.get_content_type() != "application/json":
                    return self._answer(404, b"no_service")
                mode = owner.script.pop(0) if owner.script else owner.mode
                if mode == "500":
                    return self._answer(500, b"internal_error")
                if mode == "stall":
                    owner._release.wait(owner.stall_seconds)
                    return self._answer(200, b"ok")
                owner.posts.append(json.loads(body))
                self._answer(200, b"ok")

            def _answer(self, code: int, body: bytes) -> None:
                try:
                    self.send_response(code)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._release.set()
            self._server.shutdown()
            self._server.server_close()
            self._server = None
            self._release = threading.Event()


class MailServer:
    """An aiosmtpd relay on loopback; `messages` holds each accepted message, parsed, with its envelope."""

    def __init__(self, port: int | None = None, *, login: tuple[str, str] | None = None) -> None:
        self.port = port or free_port()
        self.login = login
        self.messages: list[dict[str, Any]] = []
        self.auths: list[str] = []
        self._controller: Any = None

    def start(self) -> MailServer:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        owner = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
                owner.messages.append(
                    {"mail_from": envelope.mail_from, "rcpt_tos": list(envelope.rcpt_tos), "message": msg}
                )
                return "250 Message accepted for delivery"

        def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
            ok = (data.login.decode(), data.password.decode()) == owner.login
            owner.auths.append(f"{mechanism}:{data.login.decode()}:{'ok' if ok else 'bad'}")
            return AuthResult(success=ok, handled=False)

        kwargs: dict[str, Any] = {}
        if self.login:
            kwargs = {"authenticator": authenticator, "auth_require_tls": False}
        self._controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, **kwargs)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


def wait_for(predicate: Any, timeout: float = 30.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
