"""Text messages to patients (verification codes, waitlist promotions) through a pluggable gateway.

`YILIAN_SMS_GATEWAY` names the gateway: `console` (default; the demo and tests) writes the message to the server log
and keeps the last ones in memory so that a demo page can show the code it "sent"; a deployment registers its
provider's gateway with `register_gateway("aliyun", factory)` and sets the variable. Nothing else knows which is used.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from yilian.db import utcnow

log = logging.getLogger("yilian.sms")


@dataclass(frozen=True)
class Message:
    phone: str
    text: str
    at: datetime


class Gateway(Protocol):
    name: str
    # True only for gateways that send nothing for real: the public page may then show the code (demo mode).
    shows_codes: bool

    def send(self, phone: str, text: str) -> None: ...


class ConsoleGateway:
    """Prints instead of sending. Keeps the last 200 messages for the demo page and the tests."""

    name = "console"
    shows_codes = True

    def __init__(self) -> None:
        self.sent: deque[Message] = deque(maxlen=200)
        self._lock = threading.Lock()

    def send(self, phone: str, text: str) -> None:
        with self._lock:
            self.sent.append(Message(phone, text, utcnow()))
        log.warning("SMS to %s: %s", phone, text)

    def last_to(self, phone: str) -> Message | None:
        with self._lock:
            for m in reversed(self.sent):
                if m.phone == phone:
                    return m
        return None


_factories: dict[str, Callable[[], Gateway]] = {"console": ConsoleGateway}
_current: dict[str, Gateway] = {}


def register_gateway(name: str, factory: Callable[[], Gateway]) -> None:
    _factories[name] = factory
    _current.pop(name, None)


def gateway() -> Gateway:
    name = os.environ.get("YILIAN_SMS_GATEWAY", "console")
    if name not in _factories:
        raise RuntimeError(f"YILIAN_SMS_GATEWAY={name!r} is not a registered gateway ({', '.join(_factories)})")
    if name not in _current:
        _current[name] = _factories[name]()
    return _current[name]
