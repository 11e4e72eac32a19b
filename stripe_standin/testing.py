"""Test-only endpoints under ``/_standin/``: time passing, dashboard actions, faults, logs.

JSON in and out. They list every customer and move money: each needs the stand-in's API key
(``Authorization: Bearer sk_test_...``, as the API itself). Errors use Stripe's error shape.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, jsonify, request

from . import billing
from .errors import StripeError, invalid
from .render import present
from .store import Fault, Store
from .webhooks import WebhookDispatcher

FAULT_MODES = ("error", "lose_response", "down", "crash")


def _body() -> dict[str, Any]:
    data = request.get_json(silent=True, force=True)
    return data if isinstance(data, dict) else {}


def _fail(error: StripeError) -> Response:
    response = jsonify(error.to_dict())
    response.status_code = error.status
    return response


def parse_fault(data: dict[str, Any]) -> Fault:
    """A ``Fault`` from the JSON body of ``POST /_standin/faults``."""
    mode = data.get("mode", "error")
    if mode not in FAULT_MODES:
        raise invalid(f"mode must be one of {', '.join(FAULT_MODES)}", "mode")
    if not data.get("path"):
        raise invalid("path is required (e.g. /v1/customers or /v1/customers/*)", "path")
    times = data.get("times", 1)
    return Fault(
        method=str(data.get("method", "*")).upper(),
        path=str(data["path"]),
        mode=mode,
        status=int(data.get("status", 503 if mode == "down" else 500)),
        times=None if times is None else int(times),
        delay=float(data.get("delay", 5.0)),
    )


def create_testing_blueprint(
    store: Store, dispatcher: WebhookDispatcher, reset: Callable[[], None], api_key: str
) -> Blueprint:
    bp = Blueprint("stripe_standin_testing", __name__, url_prefix="/_standin")

    @bp.before_request
    def authorized() -> Response | None:
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            key.strip().encode(), api_key.encode()
        ):
            return None
        return _fail(
            StripeError(
                "The /_standin/ endpoints need the stand-in's API key "
                "(Authorization: Bearer sk_test_...).",
                status=401,
            )
        )

    @bp.errorhandler(StripeError)
    def stripe_error(error: StripeError) -> Response:
        return _fail(error)

    def operate(action: Callable[[], dict[str, Any]]) -> Response:
        with store.transaction():
            result = action()
        return jsonify(present(store, result))

    # -- subscriptions -----------------------------------------------------------------------
    @bp.post("/subscriptions/<sub_id>/renew")
    def renew(sub_id: str) -> Response:
        return operate(lambda: billing.renew(store, sub_id))

    @bp.post("/subscriptions/<sub_id>/fail_renewal")
    def fail_renewal(sub_id: str) -> Response:
        return operate(lambda: billing.fail_renewal(store, sub_id))

    @bp.post("/subscriptions/<sub_id>/require_action")
    def require_action(sub_id: str) -> Response:
        return operate(lambda: billing.require_action(store, sub_id))

    @bp.post("/subscriptions/<sub_id>/unpaid")
    def unpaid(sub_id: str) -> Response:
        return operate(lambda: billing.mark_unpaid(store, sub_id))

    @bp.post("/subscriptions/<sub_id>/pause")
    def pause(sub_id: str) -> Response:
        return operate(lambda: billing.pause(store, sub_id))

    @bp.post("/subscriptions/<sub_id>/resume")
    def resume(sub_id: str) -> Response:
        anchor = _body().get("billing_cycle_anchor", "now")
        return operate(lambda: billing.resume(store, sub_id, anchor))

    # -- checkout, charges -------------------------------------------------------------------
    @bp.post("/checkout/sessions/<session_id>/complete")
    def complete_checkout(session_id: str) -> Response:
        data = _body()
        return operate(
            lambda: billing.complete_checkout(
                store,
                session_id,
                str(data.get("card_number", billing.SUCCESS_CARD)),
                email=data.get("email"),
                name=data.get("name"),
                promotion_code=data.get("promotion_code"),
            )
        )

    @bp.post("/charges/<charge_id>/dispute")
    def dispute(charge_id: str) -> Response:
        data = _body()
        return operate(
            lambda: billing.dispute_charge(
                store,
                store.require("charge", charge_id),
                reason=str(data.get("reason", "fraudulent")),
                amount=int(data["amount"]) if data.get("amount") is not None else None,
            )
        )

    @bp.post("/disputes/<dispute_id>/close")
    def close_dispute(dispute_id: str) -> Response:
        status = str(_body().get("status", "won"))
        return operate(
            lambda: billing.close_dispute(store, store.require("dispute", dispute_id), status)
        )

    @bp.post("/refunds/<refund_id>/fail")
    def fail_refund(refund_id: str) -> Response:
        status = str(_body().get("status", "failed"))
        return operate(
            lambda: billing.fail_refund(store, store.require("refund", refund_id), status)
        )

    # -- clock -------------------------------------------------------------------------------
    @bp.get("/clock")
    def clock() -> Response:
        return jsonify({"now": store.now(), "offset": store.clock_offset})

    @bp.post("/clock/advance")
    def advance() -> Response:
        data = _body()
        if "seconds" not in data:
            raise invalid("seconds is required", "seconds")
        with store.transaction():
            now = billing.advance_clock(store, int(data["seconds"]), bool(data.get("renew")))
        return jsonify({"now": now, "offset": store.clock_offset})

    # -- faults ------------------------------------------------------------------------------
    @bp.post("/faults")
    def add_fault() -> Response:
        fault = parse_fault(_body())
        with store.lock:
            store.faults.append(fault)
        return jsonify(fault.to_dict())

    @bp.get("/faults")
    def list_faults() -> Response:
        with store.lock:
            return jsonify({"faults": [fault.to_dict() for fault in store.faults]})

    @bp.delete("/faults")
    def clear_faults() -> Response:
        with store.lock:
            store.faults.clear()
        return jsonify({"faults": []})

    # -- logs, deliveries, state -------------------------------------------------------------
    @bp.get("/requests")
    def requests_log() -> Response:
        with store.lock:
            return jsonify({"requests": [record.to_dict() for record in store.requests]})

    @bp.delete("/requests")
    def clear_requests() -> Response:
        with store.lock:
            store.requests.clear()
        return jsonify({"requests": []})

    @bp.post("/deliveries/take")
    def take_deliveries() -> Response:
        return jsonify({"deliveries": [d.to_dict() for d in dispatcher.take()]})

    @bp.get("/webhook_attempts")
    def webhook_attempts() -> Response:
        with store.lock:
            return jsonify(
                {
                    "attempts": [attempt.to_dict() for attempt in dispatcher.attempts],
                    "undelivered": list(dispatcher.undelivered),
                }
            )

    @bp.post("/events/<event_id>/redeliver")
    def redeliver(event_id: str) -> Response:
        return jsonify(dispatcher.redeliver(event_id).to_dict())

    @bp.get("/objects/<kind>")
    def list_objects(kind: str) -> Response:
        return jsonify({"data": [present(store, obj) for obj in store.all(kind)]})

    @bp.post("/reset")
    def reset_all() -> Response:
        reset()
        return jsonify({"reset": True, "now": store.now()})

    return bp
