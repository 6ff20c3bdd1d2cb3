"""A local SMTP server (aiosmtpd), a local webhook receiver, and the runs' town and model."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from stratum_ml.config import Settings
from stratum_ml.notify import DeliveryConfig, SmtpConfig
from tests.runs.conftest import mlflow_settings, run_model, runs_town

__all__ = ["mlflow_settings", "run_model", "runs_town"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Mailbox:
    """What the local SMTP server received: (envelope recipients, parsed message)."""

    host: str
    port: int
    received: list[tuple[list[str], Message]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 OK"


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    """An SMTP server on 127.0.0.1 that keeps what it gets."""
    box = Mailbox("127.0.0.1", free_port())
    controller = Controller(box, hostname=box.host, port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1: start, stop, and what it got (headers, body)."""

    port: int
    status: int = 200
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers.items()), body))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver, not started yet (``receiver.start()``)."""
    hook = Receiver(free_port())
    try:
        yield hook
    finally:
        hook.stop()


@pytest.fixture
def delivery(mailbox: Mailbox) -> DeliveryConfig:
    """Delivery to the local SMTP server; 3 attempts, one minute's back-off doubling."""
    return DeliveryConfig(
        smtp=SmtpConfig(mailbox.host, mailbox.port, "stratum@example.org"),
        max_attempts=3,
        backoff_s=60.0,
    )


@pytest.fixture
def notify_settings(mlflow_settings: Settings) -> Settings:
    """The runs' MLflow home with a public URL for the links."""
    return mlflow_settings.model_copy(update={"public_url": "https://stratum.example.org/"})
