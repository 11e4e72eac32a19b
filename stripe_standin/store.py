"""In-memory state of the stand-in: objects, events, clock, idempotency keys, faults, request log.

Everything is guarded by ``Store.lock`` (one re-entrant lock; the HTTP server is threaded).
"""

from __future__ import annotations

import copy
import fnmatch
import secrets
import string
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from .errors import StripeError, no_such

_ALPHABET = string.ascii_letters + string.digits

#: id prefix -> Stripe object type, longest prefixes first.
PREFIXES: dict[str, str] = {
    "cs_test_": "checkout.session",
    "inpay_": "invoice_payment",
    "price_": "price",
    "prod_": "product",
    "cus_": "customer",
    "bps_": "billing_portal.session",
    "sub_": "subscription",
    "evt_": "event",
    "in_": "invoice",
    "ch_": "charge",
    "pi_": "payment_intent",
    "pm_": "payment_method",
    "re_": "refund",
    "dp_": "dispute",
    "promo_": "promotion_code",
    "di_": "discount",
}

#: Human labels Stripe uses in "No such ..." messages.
LABELS: dict[str, str] = {
    "checkout.session": "checkout.session",
    "billing_portal.session": "billing_portal.session",
    "invoice_payment": "invoice payment",
    "payment_intent": "payment_intent",
    "payment_method": "PaymentMethod",
    "promotion_code": "promotion code",
}

#: (request id, idempotency key) of the API request being handled on this thread, if any;
#: copied into the ``request`` field of events that request causes.
current_request: ContextVar[tuple[str | None, str | None]] = ContextVar(
    "stripe_standin_request", default=(None, None)
)

IDEMPOTENCY_TTL = 24 * 3600

#: The one API version whose shapes the stand-in returns (the paywall pins the same one).
#: Requests naming another release of the same major (``*.dahlia``) get these shapes, as
#: Stripe's monthly releases within a major are additive; any other major is refused.
API_VERSION = "2026-03-25.dahlia"


def new_id(prefix: str, length: int = 24) -> str:
    """A Stripe-looking id: prefix plus a random alphanumeric suffix."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def kind_of(object_id: str) -> str | None:
    for prefix, kind in PREFIXES.items():
        if object_id.startswith(prefix):
            return kind
    return None


@dataclass
class Fault:
    """An injected failure for API requests matching ``method`` and ``path`` (glob allowed)."""

    method: str
    path: str
    # "error": a 5xx before any work; "crash": a 500 after the work began (undone, and what
    # the idempotency key answers from then on); "lose_response"; "down": 503 to everything.
    mode: str = "error"
    status: int = 500
    times: int | None = 1  # None = until cleared
    delay: float = 5.0

    def matches(self, method: str, path: str) -> bool:
        method_ok = self.method in ("*", method.upper())
        return method_ok and fnmatch.fnmatchcase(path, self.path)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "mode": self.mode,
            "status": self.status,
            "times": self.times,
            "delay": self.delay,
        }


@dataclass
class StoredResponse:
    """The answer recorded for an idempotency key."""

    fingerprint: tuple[Any, ...]
    status: int
    body: bytes
    created: int


@dataclass
class RequestRecord:
    method: str
    path: str
    query: str
    idempotency_key: str | None
    request_id: str
    time: float
    status: int = 0
    replayed: bool = False
    fault: str | None = None
    stripe_version: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "idempotency_key": self.idempotency_key,
            "request_id": self.request_id,
            "time": self.time,
            "status": self.status,
            "replayed": self.replayed,
            "fault": self.fault,
            "stripe_version": self.stripe_version,
        }


@dataclass
class Store:
    """All mutable state. Callers hold ``lock`` while reading or changing it."""

    api_version: str
    public_url: str = ""
    lock: threading.RLock = field(default_factory=threading.RLock)
    event_listeners: list[Callable[[dict[str, Any]], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.clock_offset = 0
        self.objects: dict[str, dict[str, dict[str, Any]]] = {}
        self.sequence: dict[str, int] = {}
        self.deleted: set[str] = set()
        #: per checkout session: {"line_items": [...], "subscription_data": {...}}
        self.checkout_data: dict[str, dict[str, Any]] = {}
        self.idempotency: dict[str, StoredResponse] = {}
        self.faults: list[Fault] = []
        self.requests: list[RequestRecord] = []
        self.portal_configuration = new_id("bpc_")
        self._counter = 0
        self._tx_depth = 0
        self._pending_events: list[dict[str, Any]] = []

    # -- lifecycle -------------------------------------------------------------------------
    def reset(self) -> None:
        with self.lock:
            self.__post_init__()

    # -- clock -----------------------------------------------------------------------------
    def now(self) -> int:
        """The stand-in's clock (unix seconds); real time plus whatever tests advanced."""
        return int(time.time()) + self.clock_offset

    # -- objects ---------------------------------------------------------------------------
    def add(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self._counter += 1
            self.objects.setdefault(kind, {})[obj["id"]] = obj
            self.sequence[obj["id"]] = self._counter
            return obj

    def get(self, kind: str, object_id: str) -> dict[str, Any] | None:
        with self.lock:
            return self.objects.get(kind, {}).get(object_id)

    def require(self, kind: str, object_id: Any, param: str | None = "id") -> dict[str, Any]:
        """The live object, or Stripe's 404 ``resource_missing``."""
        obj = self.get(kind, object_id) if isinstance(object_id, str) else None
        if obj is None or (kind == "customer" and object_id in self.deleted):
            raise no_such(LABELS.get(kind, kind), str(object_id), param)
        return obj

    def all(self, kind: str) -> list[dict[str, Any]]:
        """Objects of one kind, newest first (Stripe's list order)."""
        with self.lock:
            items = list(self.objects.get(kind, {}).values())
        return sorted(items, key=lambda obj: self.sequence[obj["id"]], reverse=True)

    def find(self, object_id: str) -> tuple[str, dict[str, Any]] | None:
        kind = kind_of(object_id)
        if kind is None:
            # Coupons keep the id they were given ("SPRING25"): no prefix to go by.
            coupon = self.get("coupon", object_id)
            return ("coupon", coupon) if coupon is not None else None
        obj = self.get(kind, object_id)
        return (kind, obj) if obj is not None else None

    def order_key(self, object_id: str) -> int | None:
        return self.sequence.get(object_id)

    # -- transactions ----------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Run an operation atomically, as Stripe does: if it raises (other than a card
        decline, which Stripe records), every change and event it made is undone. Events are
        handed to listeners (webhook delivery) only when the outermost transaction commits."""
        with self.lock:
            if self._tx_depth:
                self._tx_depth += 1
                try:
                    yield
                finally:
                    self._tx_depth -= 1
                return
            saved = self._snapshot()
            self._tx_depth = 1
            committed = False
            try:
                yield
                committed = True
            except StripeError as error:
                committed = error.status == 402
                raise
            finally:
                self._tx_depth = 0
                pending, self._pending_events = self._pending_events, []
                if committed:
                    for event in pending:
                        self._notify(event)
                else:
                    self._restore(saved)

    def _snapshot(self) -> dict[str, Any]:
        return {
            "objects": {
                kind: copy.deepcopy(items)
                for kind, items in self.objects.items()
                if kind != "event"
            },
            "events": len(self.objects.get("event", {})),
            "sequence": dict(self.sequence),
            "deleted": set(self.deleted),
            "checkout_data": copy.deepcopy(self.checkout_data),
            "counter": self._counter,
        }

    def _restore(self, saved: dict[str, Any]) -> None:
        events = self.objects.get("event", {})
        kept = dict(list(events.items())[: saved["events"]])
        self.objects = {**saved["objects"], "event": kept}
        self.sequence = saved["sequence"]
        self.deleted = saved["deleted"]
        self.checkout_data = saved["checkout_data"]
        self._counter = saved["counter"]

    # -- events ----------------------------------------------------------------------------
    def record_event(self, event: dict[str, Any]) -> None:
        with self.lock:
            self.add("event", event)
            if self._tx_depth:
                self._pending_events.append(event)
            else:
                self._notify(event)

    def _notify(self, event: dict[str, Any]) -> None:
        for listener in list(self.event_listeners):
            listener(event)

    # -- idempotency -----------------------------------------------------------------------
    def stored_response(self, key: str) -> StoredResponse | None:
        with self.lock:
            stored = self.idempotency.get(key)
            if stored is not None and self.now() - stored.created >= IDEMPOTENCY_TTL:
                del self.idempotency[key]
                return None
            return stored

    # -- faults ----------------------------------------------------------------------------
    def take_fault(self, method: str, path: str) -> Fault | None:
        """The first fault matching this request, consuming one of its ``times``."""
        with self.lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self.faults.remove(fault)
                    return fault
        return None
