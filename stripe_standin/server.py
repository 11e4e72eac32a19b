"""The stand-in as a Flask app and as ``StandIn``, a server tests start in a thread."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, g, request
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from . import billing
from .api import Gateway
from .pages import create_pages_blueprint
from .render import present
from .store import API_VERSION, Fault, RequestRecord, Store
from .testing import create_testing_blueprint, parse_fault
from .webhooks import Delivery, WebhookDispatcher, sign

log = logging.getLogger("stripe_standin")


class _QuietHandler(WSGIRequestHandler):
    """werkzeug's handler without its own access log (the app logs one line per request)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


class StandIn:
    """A local stand-in for the part of Stripe's API the paywall uses.

    >>> with StandIn("sk_test_standin_x", "whsec_x") as standin:
    ...     client = stripe.StripeClient(
    ...         "sk_test_standin_x", base_addresses={"api": standin.url})
    """

    def __init__(
        self,
        api_key: str,
        webhook_secret: str,
        webhook_url: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        public_url: str | None = None,
        *,
        webhook_attempts: int = 5,
        webhook_backoff: float = 0.1,
    ) -> None:
        self.api_key = api_key
        self.webhook_secret = webhook_secret
        self.host = host
        self.port = port
        self._public_url = public_url
        self.state = Store(api_version=API_VERSION)
        self.dispatcher = WebhookDispatcher(
            self.state,
            webhook_secret,
            webhook_url,
            max_attempts=webhook_attempts,
            backoff=webhook_backoff,
        )
        self._stopping = threading.Event()
        self.app = self._create_app()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.state.public_url = public_url or f"http://{host}:{port}"

    # -- app ---------------------------------------------------------------------------------
    def _create_app(self) -> Flask:
        app = Flask("stripe_standin")
        app.register_blueprint(Gateway(self.state, self.api_key, self._stopping).blueprint())
        app.register_blueprint(create_pages_blueprint(self.state))
        app.register_blueprint(
            create_testing_blueprint(self.state, self.dispatcher, self.reset, self.api_key)
        )

        @app.before_request
        def started() -> None:
            g.started = time.monotonic()

        @app.after_request
        def access_log(response: Response) -> Response:
            elapsed = (time.monotonic() - g.get("started", time.monotonic())) * 1000
            log.info(
                "%s %s %s %.0fms%s",
                request.method,
                request.full_path.rstrip("?"),
                response.status_code,
                elapsed,
                " (replayed)" if response.headers.get("Idempotent-Replayed") else "",
            )
            return response

        @app.get("/")
        def index() -> dict[str, Any]:
            return {"service": "stripe-standin", "api_version": self.state.api_version}

        return app

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> StandIn:
        """Serve in a daemon thread (``port=0`` picks a free port)."""
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = make_server(
            self.host, self.port, self.app, threaded=True, request_handler=_QuietHandler
        )
        self.port = self._server.server_port
        if self._public_url is None:
            self.state.public_url = self.url
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="stripe-standin", daemon=True
        )
        self._thread.start()
        self.dispatcher.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the current thread until interrupted (used by ``python -m``)."""
        self.start()
        try:
            while self._thread is not None and self._thread.is_alive():
                self._thread.join(0.5)
        finally:
            self.stop()

    def stop(self) -> None:
        self._stopping.set()
        self.dispatcher.stop()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> StandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL of the API, e.g. ``http://127.0.0.1:12111`` (pass as ``base_addresses``)."""
        return f"http://{self.host}:{self.port}"

    @property
    def public_url(self) -> str:
        """Base URL used in Checkout/portal/invoice links handed to browsers."""
        return self.state.public_url

    @property
    def webhook_url(self) -> str | None:
        return self.dispatcher.url

    @webhook_url.setter
    def webhook_url(self, value: str | None) -> None:
        with self.state.lock:
            self.dispatcher.url = value

    # -- state -------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget every object, event, key, fault, log entry and clock offset."""
        with self.state.lock:
            self.state.reset()
            self.dispatcher.reset()
            self.state.public_url = self._public_url or self.url

    def now(self) -> int:
        return self.state.now()

    def get(self, object_id: str) -> dict[str, Any] | None:
        """Any stored object by id, rendered as the API would return it."""
        found = self.state.find(object_id)
        return present(self.state, found[1]) if found else None

    def objects(self, kind: str) -> list[dict[str, Any]]:
        """All objects of a kind (``"subscription"``, ``"checkout.session"`` ...), newest first."""
        return [present(self.state, obj) for obj in self.state.all(kind)]

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every event, oldest first."""
        return list(reversed(self.objects("event")))

    @property
    def requests(self) -> list[RequestRecord]:
        """Log of every ``/v1`` request (method, path, idempotency_key, replayed, status)."""
        with self.state.lock:
            return list(self.state.requests)

    # -- webhooks ----------------------------------------------------------------------------
    def take_deliveries(self) -> list[Delivery]:
        """Remove and return queued webhook deliveries, oldest first."""
        return self.dispatcher.take()

    def sign(self, payload: bytes, timestamp: int | None = None, secret: str | None = None) -> str:
        """A ``Stripe-Signature`` header for ``payload`` (to forge or replay deliveries)."""
        return sign(payload, secret if secret is not None else self.webhook_secret, timestamp)

    def redeliver(self, event_id: str) -> Delivery:
        return self.dispatcher.redeliver(event_id)

    def wait_for_webhooks(self, timeout: float = 10.0) -> bool:
        """Wait until the background sender has nothing left to send."""
        return self.dispatcher.wait_idle(timeout)

    # -- time and faults ---------------------------------------------------------------------
    def advance_clock(self, seconds: int, renew: bool = False) -> int:
        """Move the clock forward; cancellations (and, with ``renew``, renewals) fall due."""
        with self.state.transaction():
            return billing.advance_clock(self.state, seconds, renew)

    def add_fault(
        self,
        method: str,
        path: str,
        mode: str = "error",
        status: int | None = None,
        times: int | None = 1,
        delay: float = 5.0,
    ) -> Fault:
        fault = parse_fault(
            {"method": method, "path": path, "mode": mode, "times": times, "delay": delay}
            | ({"status": status} if status is not None else {})
        )
        with self.state.lock:
            self.state.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self.state.lock:
            self.state.faults.clear()

    # -- dashboard-style actions -------------------------------------------------------------
    def _operate(self, action: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """Run a state change atomically; return the object as the API would show it."""
        with self.state.transaction():
            result = action()
        return present(self.state, result)

    def complete_checkout(
        self,
        session_id: str,
        card_number: str = billing.SUCCESS_CARD,
        email: str | None = None,
        name: str | None = None,
        promotion_code: str | None = None,
    ) -> dict[str, Any]:
        return self._operate(
            lambda: billing.complete_checkout(
                self.state, session_id, card_number, email, name, promotion_code
            )
        )

    def renew(self, subscription_id: str) -> dict[str, Any]:
        return self._operate(lambda: billing.renew(self.state, subscription_id))

    def announce_renewal(self, subscription_id: str) -> dict[str, Any]:
        """Send ``invoice.upcoming`` for the subscription's next renewal."""
        return self._operate(lambda: billing.announce_renewal(self.state, subscription_id))

    def announce_trial_end(self, subscription_id: str) -> dict[str, Any]:
        """Send ``customer.subscription.trial_will_end``."""
        return self._operate(lambda: billing.announce_trial_end(self.state, subscription_id))

    def fail_renewal(self, subscription_id: str) -> dict[str, Any]:
        return self._operate(lambda: billing.fail_renewal(self.state, subscription_id))

    def require_action(self, subscription_id: str) -> dict[str, Any]:
        return self._operate(lambda: billing.require_action(self.state, subscription_id))

    def mark_unpaid(self, subscription_id: str) -> dict[str, Any]:
        return self._operate(lambda: billing.mark_unpaid(self.state, subscription_id))

    def pause(self, subscription_id: str) -> dict[str, Any]:
        return self._operate(lambda: billing.pause(self.state, subscription_id))

    def resume(self, subscription_id: str, billing_cycle_anchor: str = "now") -> dict[str, Any]:
        return self._operate(
            lambda: billing.resume(self.state, subscription_id, billing_cycle_anchor)
        )

    def dispute(
        self, charge_id: str, reason: str = "fraudulent", amount: int | None = None
    ) -> dict[str, Any]:
        return self._operate(
            lambda: billing.dispute_charge(
                self.state, self.state.require("charge", charge_id), reason, amount
            )
        )

    def close_dispute(self, dispute_id: str, status: str = "won") -> dict[str, Any]:
        return self._operate(
            lambda: billing.close_dispute(
                self.state, self.state.require("dispute", dispute_id), status
            )
        )

    def fail_refund(self, refund_id: str, status: str = "failed") -> dict[str, Any]:
        return self._operate(
            lambda: billing.fail_refund(self.state, self.state.require("refund", refund_id), status)
        )
