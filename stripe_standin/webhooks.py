"""Signing and delivering webhook events the way Stripe does.

Signature: ``Stripe-Signature: t=<unix ts>,v1=<hex HMAC-SHA256(secret, f"{t}.{payload}")>``
with the ``whsec_...`` string itself as the key. Timestamps are real wall-clock time (not the
stand-in's advanced clock) so ``stripe.Webhook.construct_event``'s 5-minute tolerance holds.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import requests

from .store import Store

log = logging.getLogger("stripe_standin.webhooks")

USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"


def sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """The ``Stripe-Signature`` header value for ``payload``."""
    t = int(time.time()) if timestamp is None else int(timestamp)
    signed = f"{t}.".encode() + payload
    mac = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


@dataclass(frozen=True)
class Delivery:
    """One webhook POST: the exact body and headers (signature included)."""

    event_id: str
    type: str
    payload: bytes
    headers: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "type": self.type,
            "payload": self.payload.decode("utf-8"),
            "headers": dict(self.headers),
        }


@dataclass
class Attempt:
    event_id: str
    attempt: int
    status: int | None
    error: str | None
    time: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "attempt": self.attempt,
            "status": self.status,
            "error": self.error,
            "time": self.time,
        }


@dataclass
class WebhookDispatcher:
    """Keeps every event's delivery in an outbox tests drain, and (if ``url`` is set) POSTs
    events in creation order from one background thread, retrying failures with backoff."""

    store: Store
    secret: str
    url: str | None = None
    max_attempts: int = 5
    backoff: float = 0.1
    timeout: float = 10.0
    outbox: list[Delivery] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    undelivered: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._queue: deque[tuple[str, str, bytes]] = deque()
        self._changed = threading.Condition(self.store.lock)
        self._busy = False
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.store.event_listeners.append(self._on_event)

    # -- producing ---------------------------------------------------------------------------
    def _payload(self, event: dict[str, Any]) -> bytes:
        return json.dumps(event, indent=2).encode("utf-8")

    def delivery(self, event_id: str, type: str, payload: bytes) -> Delivery:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Stripe-Signature": sign(payload, self.secret),
        }
        return Delivery(event_id, type, payload, headers)

    def _on_event(self, event: dict[str, Any]) -> None:
        with self._changed:
            if self.url:
                event["pending_webhooks"] = 1
            self._enqueue(event)

    def _enqueue(self, event: dict[str, Any]) -> Delivery:
        payload = self._payload(event)
        delivery = self.delivery(event["id"], event["type"], payload)
        self.outbox.append(delivery)
        if self.url:
            self._queue.append((event["id"], event["type"], payload))
            self._changed.notify_all()
        return delivery

    def redeliver(self, event_id: str) -> Delivery:
        """Queue an event again (outbox, and the webhook URL if one is set)."""
        with self._changed:
            event = self.store.require("event", event_id)
            return self._enqueue(event)

    def take(self) -> list[Delivery]:
        """Remove and return everything in the outbox, oldest first."""
        with self._changed:
            taken, self.outbox = self.outbox, []
            return taken

    def reset(self) -> None:
        with self._changed:
            self.outbox.clear()
            self._queue.clear()
            self.attempts.clear()
            self.undelivered.clear()

    # -- sending -----------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._stopping.clear()
            self._thread = threading.Thread(
                target=self._run, name="stripe-standin-webhooks", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        with self._changed:
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout + 1)
            self._thread = None

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until every queued event was delivered or given up on."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._queue and not self._busy, timeout)

    def _run(self) -> None:
        while not self._stopping.is_set():
            with self._changed:
                self._changed.wait_for(lambda: self._queue or self._stopping.is_set())
                if self._stopping.is_set():
                    return
                event_id, event_type, payload = self._queue.popleft()
                self._busy = True
                url = self.url
            try:
                delivered = self._send(url, event_id, payload) if url else False
            finally:
                with self._changed:
                    self._busy = False
                    event = self.store.get("event", event_id)
                    if delivered and event is not None:
                        event["pending_webhooks"] = 0
                    elif not delivered:
                        self.undelivered.append(event_id)
                        log.warning("giving up on %s (%s)", event_id, event_type)
                    self._changed.notify_all()

    def _send(self, url: str, event_id: str, payload: bytes) -> bool:
        for attempt in range(1, self.max_attempts + 1):
            headers = {
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                "Stripe-Signature": sign(payload, self.secret),
            }
            status, error = None, None
            try:
                response = requests.post(url, data=payload, headers=headers, timeout=self.timeout)
                status = response.status_code
            except requests.RequestException as exc:
                error = f"{type(exc).__name__}: {exc}"
            with self._changed:
                self.attempts.append(Attempt(event_id, attempt, status, error, time.time()))
            if status is not None and 200 <= status < 300:
                return True
            log.info("webhook %s attempt %d failed: %s", event_id, attempt, status or error)
            if attempt < self.max_attempts and self._stopping.wait(
                self.backoff * 2 ** (attempt - 1)
            ):
                return False
        return False
