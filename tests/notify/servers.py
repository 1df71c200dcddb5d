"""Real receivers for notification tests: an SMTP server (aiosmtpd) that can go down and come back on the
same port, and an HTTP server (stdlib, in a thread) that records webhook POSTs and answers as told."""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from collections import deque
from dataclasses import dataclass
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])

    @property
    def text(self) -> str:
        return cast(str, self.message.get_content())


class SmtpSink:
    """Accepts every message and keeps it in `received`; refuses the recipients in `refuse`, and answers
    DATA with the next of `data_answers` while there are any."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.received: list[Received] = []
        self.refuse: set[str] = set()
        self.data_answers: deque[str] = deque()  # e.g. "451 4.3.0 Try again later", once each
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    # aiosmtpd handler hooks
    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address in self.refuse:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._lock:
            if self.data_answers:
                return self.data_answers.popleft()
            self.received.append(
                Received(envelope.mail_from, tuple(envelope.rcpt_tos), cast(EmailMessage, msg))
            )
        return "250 Message accepted for delivery"

    def start(self) -> SmtpSink:
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def up(self) -> bool:
        return self._controller is not None

    def messages(self) -> list[Received]:
        with self._lock:
            return list(self.received)


@dataclass(frozen=True)
class Post:
    path: str
    headers: dict[str, str]
    body: bytes


class HookSink:
    """Records each POST; answers with the next status in `answers` (then 200)."""

    def __init__(self) -> None:
        self.posts: list[Post] = []
        self.answers: deque[int] = deque()
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                if len(body) < length:
                    # The sender died mid-request (a SIGKILL in a test): a real receiver never sees
                    # a truncated POST as a delivery, so neither does the sink.
                    return
                with sink._lock:
                    sink.posts.append(Post(self.path, dict(self.headers.items()), body))
                    status = sink.answers.popleft() if sink.answers else 200
                reply = b"ok" if status < 300 else b"try again later"
                self.send_response(status)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/kvmaint"

    def start(self) -> HookSink:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def received(self) -> list[Post]:
        with self._lock:
            return list(self.posts)
