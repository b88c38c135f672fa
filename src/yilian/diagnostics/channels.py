"""Channels that carry a finished report or a critical value to the ordering site, besides the in-app inbox.

- `webhook`: POST a small JSON notice to the site's hospital system (it then reads the DiagnosticReport over FHIR with
  its own credentials, so the notice itself carries no patient data). A non-2xx answer raises: the outbox retries.
- `sms`: a text to the site's duty phone through an SMS gateway. `YILIAN_DIAGNOSTICS_SMS_GATEWAY` names it: `console`
  (default; the demo and tests) writes the message to the server log and keeps the last ones in memory; a deployment
  registers its provider with `register_sms_gateway("aliyun", factory)` and sets the variable.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import httpx

from yilian.db import utcnow

log = logging.getLogger("yilian.diagnostics.notify")
WEBHOOK_TIMEOUT_S = 10.0


def send_webhook(url: str, notice: Mapping[str, Any]) -> None:
    response = httpx.post(
        url, json=dict(notice), headers={"User-Agent": "Yilian diagnostics"}, timeout=WEBHOOK_TIMEOUT_S
    )
    if response.status_code >= 300:
        raise RuntimeError(f"{url} answered {response.status_code}")


@dataclass(frozen=True)
class Sms:
    phone: str
    text: str
    at: datetime


class SmsGateway(Protocol):
    name: str

    def send(self, phone: str, text: str) -> None: ...


class ConsoleSms:
    """Prints instead of sending; keeps the last 200 messages for the demo and the tests."""

    name = "console"

    def __init__(self) -> None:
        self.sent: deque[Sms] = deque(maxlen=200)
        self._lock = threading.Lock()

    def send(self, phone: str, text: str) -> None:
        with self._lock:
            self.sent.append(Sms(phone, text, utcnow()))
        log.warning("SMS to %s: %s", phone, text)

    def to(self, phone: str) -> list[Sms]:
        with self._lock:
            return [m for m in self.sent if m.phone == phone]


_factories: dict[str, Callable[[], SmsGateway]] = {"console": ConsoleSms}
_gateways: dict[str, SmsGateway] = {}


def register_sms_gateway(name: str, factory: Callable[[], SmsGateway]) -> None:
    _factories[name] = factory
    _gateways.pop(name, None)


def sms_gateway() -> SmsGateway:
    name = os.environ.get("YILIAN_DIAGNOSTICS_SMS_GATEWAY", "console")
    if name not in _factories:
        raise RuntimeError(
            f"YILIAN_DIAGNOSTICS_SMS_GATEWAY={name!r} is not a registered gateway ({', '.join(_factories)})"
        )
    if name not in _gateways:
        _gateways[name] = _factories[name]()
    return _gateways[name]
