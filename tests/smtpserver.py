"""A real SMTP server for the tests: aiosmtpd on 127.0.0.1, with a handler the test can steer.

The handler records every delivered message, and can be told to answer the
next DATA commands with scripted replies (`"451 ..."`, `"550 ..."`) or to hold
DATA unanswered until released (a server that hangs after the final dot).
Stopping the controller makes the port refuse connections; `start()` again
listens on the same port.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller


@dataclass(frozen=True)
class Delivered:
    sender: str
    recipients: tuple[str, ...]
    data: bytes
    peer: tuple[str, int]

    @property
    def message(self) -> EmailMessage:
        # Line ends as a mail client shows them (SMTP carries CRLF).
        text = self.data.replace(b"\r\n", b"\n")
        return message_from_bytes(text, policy=policy.default)  # type: ignore[return-value]

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"]).strip()


@dataclass
class Recorder:
    """The aiosmtpd handler: records deliveries; scripted answers; optional hold on DATA."""

    delivered: list[Delivered] = field(default_factory=list)
    # Message-IDs of every DATA the server saw, whatever it answered.
    attempts: list[str] = field(default_factory=list)
    script: deque[str] = field(default_factory=deque)
    hold: threading.Event = field(default_factory=threading.Event)
    holding: threading.Event = field(default_factory=threading.Event)
    on_delivery: Callable[[Delivered], None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        data: bytes = envelope.original_content or envelope.content
        parsed = message_from_bytes(data, policy=policy.default)
        with self.lock:
            self.attempts.append(str(parsed["Message-ID"]).strip())
        if self.hold.is_set():
            self.holding.set()
            while self.hold.is_set():
                await asyncio.sleep(0.02)
            return "451 4.3.0 held and abandoned"
        with self.lock:
            if self.script:
                return self.script.popleft()
        item = Delivered(envelope.mail_from, tuple(envelope.rcpt_tos), data, tuple(session.peer[:2]))
        with self.lock:
            self.delivered.append(item)
        if self.on_delivery is not None:
            self.on_delivery(item)
        return "250 2.0.0 OK"

    def to(self, address: str) -> list[Delivered]:
        return [item for item in list(self.delivered) if address in item.recipients]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class SmtpServer:
    def __init__(self, recorder: Recorder | None = None, **options: Any) -> None:
        self.recorder = recorder or Recorder()
        self.port = free_port()
        self.options = options  # passed to aiosmtpd's Controller (e.g. authenticator)
        self.controller: Controller | None = None

    def start(self) -> None:
        deadline = time.monotonic() + 30
        while True:
            controller = Controller(self.recorder, hostname="127.0.0.1", port=self.port, **self.options)
            try:
                controller.start()
            except (OSError, RuntimeError):
                # The port can take a moment to be free again after a stop on a loaded machine.
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
                continue
            self.controller = controller
            return

    def stop(self) -> None:
        controller, self.controller = self.controller, None
        if controller is not None:
            controller.stop()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.recorder.hold.clear()
    server.stop()


async def wait_for(condition: Callable[[], bool], *, timeout: float = 60.0, what: str = "the condition") -> None:
    """Poll until `condition()` holds; generous deadline, never a fixed sleep-then-assert."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
