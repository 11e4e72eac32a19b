"""REST endpoints for charges, payment intents, refunds, disputes and events."""

from __future__ import annotations

import fnmatch
from typing import Any

from . import billing
from .errors import invalid, missing_param
from .params import apply_metadata, as_int, as_str, as_str_list, check_known, choice
from .render import LIST_PARAMS, filter_created, paginate, positional_order, present
from .routing import Routes
from .store import Store

routes = Routes()

REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")


def _filtered(
    store: Store, kind: str, params: dict[str, Any], filters: tuple[str, ...]
) -> list[dict[str, Any]]:
    check_known(params, (*LIST_PARAMS, *filters))
    items = filter_created(store.all(kind), params.get("created"))
    for name in filters:
        if name in params:
            items = [obj for obj in items if obj.get(name) == params[name]]
    return items


# -- charges and payment intents -------------------------------------------------------------


@routes.add("/charges/<charge_id>", "GET")
def get_charge(store: Store, params: dict[str, Any], charge_id: str) -> dict[str, Any]:
    return present(store, store.require("charge", charge_id))


@routes.add("/charges", "GET")
def list_charges(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    items = _filtered(store, "charge", params, ("customer", "payment_intent"))
    return paginate(store, items, params, "/v1/charges")


@routes.add("/charges/<charge_id>/refunds", "GET")
def list_charge_refunds(store: Store, params: dict[str, Any], charge_id: str) -> dict[str, Any]:
    check_known(params, ("limit", "starting_after", "ending_before"))
    refunds = store.require("charge", charge_id)["refunds"]["data"]
    url = f"/v1/charges/{charge_id}/refunds"
    return paginate(store, refunds, params, url, positional_order(refunds))


@routes.add("/payment_intents/<intent_id>", "GET")
def get_payment_intent(store: Store, params: dict[str, Any], intent_id: str) -> dict[str, Any]:
    return present(store, store.require("payment_intent", intent_id))


@routes.add("/payment_intents", "GET")
def list_payment_intents(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    items = _filtered(store, "payment_intent", params, ("customer",))
    return paginate(store, items, params, "/v1/payment_intents")


# -- refunds ---------------------------------------------------------------------------------


@routes.add("/refunds", "POST")
def create_refund(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    check_known(
        params,
        (
            "charge",
            "payment_intent",
            "amount",
            "reason",
            "metadata",
            "refund_application_fee",
            "reverse_transfer",
            "instructions_email",
        ),
    )
    if params.get("charge"):
        charge = store.require("charge", params["charge"], "charge")
    elif params.get("payment_intent"):
        intent = store.require("payment_intent", params["payment_intent"], "payment_intent")
        if intent["status"] != "succeeded" or not intent["latest_charge"]:
            raise invalid(
                f"This PaymentIntent ({intent['id']}) does not have a successful charge to refund.",
                "payment_intent",
            )
        charge = store.require("charge", intent["latest_charge"])
    else:
        raise missing_param("charge")
    intent_id = params.get("payment_intent")
    if params.get("charge") and intent_id and charge["payment_intent"] != intent_id:
        raise invalid("The charge does not belong to that payment_intent.", "charge")
    amount = as_int(params["amount"], "amount") if "amount" in params else None
    reason = choice(params["reason"], "reason", REFUND_REASONS) if params.get("reason") else None
    metadata = apply_metadata({}, params.get("metadata", {}))
    return present(store, billing.refund_charge(store, charge, amount, reason, metadata))


@routes.add("/refunds/<refund_id>", "GET")
def get_refund(store: Store, params: dict[str, Any], refund_id: str) -> dict[str, Any]:
    return present(store, store.require("refund", refund_id))


@routes.add("/refunds", "GET")
def list_refunds(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    items = _filtered(store, "refund", params, ("charge", "payment_intent"))
    return paginate(store, items, params, "/v1/refunds")


# -- disputes --------------------------------------------------------------------------------


@routes.add("/disputes/<dispute_id>", "GET")
def get_dispute(store: Store, params: dict[str, Any], dispute_id: str) -> dict[str, Any]:
    return present(store, store.require("dispute", dispute_id))


@routes.add("/disputes", "GET")
def list_disputes(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    items = _filtered(store, "dispute", params, ("charge", "payment_intent"))
    return paginate(store, items, params, "/v1/disputes")


# -- events ----------------------------------------------------------------------------------


@routes.add("/events/<event_id>", "GET")
def get_event(store: Store, params: dict[str, Any], event_id: str) -> dict[str, Any]:
    return present(store, store.require("event", event_id))


@routes.add("/events", "GET")
def list_events(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    """Filters: ``type`` (``*`` wildcards, e.g. ``customer.subscription.*``), ``types[]``."""
    check_known(params, (*LIST_PARAMS, "type", "types", "delivery_success"))
    items = filter_created(store.all("event"), params.get("created"))
    if params.get("type") and params.get("types"):
        raise invalid("You may only specify one of these parameters: type, types.", "types")
    if params.get("type"):
        pattern = as_str(params["type"], "type")
        items = [e for e in items if fnmatch.fnmatchcase(e["type"], pattern)]
    if params.get("types"):
        types = as_str_list(params["types"], "types")
        items = [e for e in items if e["type"] in types]
    return paginate(store, items, params, "/v1/events")
