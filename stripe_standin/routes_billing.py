"""REST endpoints for subscriptions, subscription items, invoices and invoice payments."""

from __future__ import annotations

from typing import Any

from . import billing, objects
from .errors import card_declined, invalid, missing_param, no_such
from .params import (
    apply_metadata,
    as_bool,
    as_dict,
    as_int,
    as_list,
    as_str,
    check_known,
    choice,
)
from .render import LIST_PARAMS, filter_created, paginate, positional_order, present
from .routing import Routes
from .store import Store, new_id

routes = Routes()

STATUSES = (
    "active",
    "all",
    "canceled",
    "ended",
    "incomplete",
    "incomplete_expired",
    "past_due",
    "paused",
    "trialing",
    "unpaid",
)
UPDATE_PARAMS = (
    "cancel_at_period_end",
    "cancel_at",
    "items",
    "metadata",
    "proration_behavior",
    "proration_date",
    "pause_collection",
    "description",
    "cancellation_details",
    "payment_behavior",
    "default_payment_method",
)
PAUSE_BEHAVIORS = ("keep_as_draft", "mark_uncollectible", "void")
FEEDBACK = (
    "customer_service",
    "low_quality",
    "missing_features",
    "other",
    "switched_service",
    "too_complex",
    "too_expensive",
    "unused",
)


# -- subscriptions ---------------------------------------------------------------------------


@routes.add("/subscriptions/<sub_id>", "GET")
def get_subscription(store: Store, params: dict[str, Any], sub_id: str) -> dict[str, Any]:
    return present(store, store.require("subscription", sub_id))


@routes.add("/subscriptions", "GET")
def list_subscriptions(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    check_known(params, (*LIST_PARAMS, "customer", "price", "status", "collection_method"))
    items = filter_created(store.all("subscription"), params.get("created"))
    status = choice(params.get("status", "default"), "status", (*STATUSES, "default"))
    if status == "default":
        items = [s for s in items if s["status"] not in billing.ENDED]
    elif status == "ended":
        items = [s for s in items if s["status"] in billing.ENDED]
    elif status != "all":
        items = [s for s in items if s["status"] == status]
    if "customer" in params:
        items = [s for s in items if s["customer"] == params["customer"]]
    if "price" in params:
        items = [s for s in items if any(i["price"] == params["price"] for i in s["items"]["data"])]
    return paginate(store, items, params, "/v1/subscriptions")


def _cancellation_details(sub: dict[str, Any], value: Any) -> None:
    details = as_dict(value, "cancellation_details")
    check_known(details, ("comment", "feedback"), "cancellation_details")
    if "comment" in details:
        sub["cancellation_details"]["comment"] = details["comment"] or None
    if "feedback" in details:
        feedback = details["feedback"]
        if feedback:
            choice(feedback, "cancellation_details[feedback]", FEEDBACK)
        sub["cancellation_details"]["feedback"] = feedback or None


def _update_items(store: Store, sub: dict[str, Any], value: Any) -> bool:
    """Apply ``items[i][id|price|quantity|deleted|metadata]``; True if the period restarted."""
    restarted = False
    for index, raw in enumerate(as_list(value, "items")):
        param = f"items[{index}]"
        change = as_dict(raw, param)
        check_known(change, ("id", "price", "quantity", "deleted", "metadata"), param)
        price = None
        if change.get("price"):
            price = store.require("price", change["price"], f"{param}[price]")
            if price["type"] != "recurring" or not price["active"]:
                raise invalid("The price must be an active recurring price.", f"{param}[price]")
            if price["currency"] != sub["currency"]:
                raise invalid(
                    "The price's currency must match the subscription's currency.",
                    f"{param}[price]",
                )
        items = sub["items"]["data"]
        if change.get("id"):
            item = next((i for i in items if i["id"] == change["id"]), None)
            if item is None:
                raise no_such("subscription_item", change["id"], f"{param}[id]")
            if as_bool(change.get("deleted", False), f"{param}[deleted]"):
                if len(items) == 1:
                    raise invalid(
                        "A subscription must have at least one active plan.", f"{param}[deleted]"
                    )
                items.remove(item)
                continue
        else:
            if price is None:
                raise missing_param(f"{param}[price]")
            period = (billing.period_start(sub), billing.period_end(sub))
            item = {
                **items[0],
                "id": new_id("si_", 14),
                "created": store.now(),
                "price": price["id"],
                "quantity": 1,
                "metadata": {},
                "current_period_start": period[0],
                "current_period_end": period[1],
            }
            items.append(item)
        if price is not None and price["id"] != item["price"]:
            if any(i["price"] == price["id"] for i in items if i is not item):
                raise invalid(
                    f"Cannot add multiple subscription items with the same plan: {price['id']}",
                    f"{param}[price]",
                )
            restarted = billing.swap_price(store, sub, item, price) or restarted
        if "quantity" in change:
            quantity = as_int(change["quantity"], f"{param}[quantity]")
            if quantity < 1:
                raise invalid("Quantity must be at least 1.", f"{param}[quantity]")
            item["quantity"] = quantity
        if "metadata" in change:
            item["metadata"] = apply_metadata(item["metadata"], change["metadata"])
    return restarted


def _pause_collection(value: Any) -> dict[str, Any] | None:
    if value == "":
        return None
    pause = as_dict(value, "pause_collection")
    check_known(pause, ("behavior", "resumes_at"), "pause_collection")
    if not pause.get("behavior"):
        raise missing_param("pause_collection[behavior]")
    resumes_at = pause.get("resumes_at")
    return {
        "behavior": choice(pause["behavior"], "pause_collection[behavior]", PAUSE_BEHAVIORS),
        "resumes_at": as_int(resumes_at, "pause_collection[resumes_at]") if resumes_at else None,
    }


@routes.add("/subscriptions/<sub_id>", "POST")
def update_subscription(store: Store, params: dict[str, Any], sub_id: str) -> dict[str, Any]:
    check_known(params, UPDATE_PARAMS)
    sub = store.require("subscription", sub_id)
    if sub["status"] in billing.ENDED and set(params) - {
        "metadata",
        "cancellation_details",
        "expand",
    }:
        raise invalid(
            "A canceled subscription can only update its cancellation_details and metadata.",
            code="subscription_canceled",
        )
    if "cancel_at" in params and "cancel_at_period_end" in params:
        raise invalid(
            "You may only specify one of these parameters: cancel_at, cancel_at_period_end.",
            "cancel_at",
        )
    with billing.updating(store, sub):
        if "metadata" in params:
            sub["metadata"] = apply_metadata(sub["metadata"], params["metadata"])
        if "description" in params:
            sub["description"] = params["description"] or None
        restarted = _update_items(store, sub, params["items"]) if "items" in params else False
        if "cancel_at_period_end" in params:
            flag = as_bool(params["cancel_at_period_end"], "cancel_at_period_end")
            billing.set_cancel_at_period_end(store, sub, flag)
        if "cancel_at" in params:
            _set_cancel_at(store, sub, params["cancel_at"])
        if "pause_collection" in params:
            sub["pause_collection"] = _pause_collection(params["pause_collection"])
        if "cancellation_details" in params:
            _cancellation_details(sub, params["cancellation_details"])
        if restarted:
            now = store.now()
            billing.bill(
                store,
                sub,
                billing_reason="subscription_update",
                outcome="succeeded",
                period=(now, now),
            )
    return present(store, sub)


def _set_cancel_at(store: Store, sub: dict[str, Any], value: Any) -> None:
    if value == "":
        sub.update(cancel_at=None, canceled_at=None, cancel_at_period_end=False)
        sub["cancellation_details"]["reason"] = None
        return
    if value in ("min_period_end", "max_period_end"):
        at = billing.period_end(sub)
    else:
        at = as_int(value, "cancel_at")
        if at <= store.now():
            raise invalid("cancel_at must be in the future.", "cancel_at")
    sub.update(cancel_at=at, canceled_at=store.now(), cancel_at_period_end=False)
    sub["cancellation_details"]["reason"] = "cancellation_requested"


@routes.add("/subscriptions/<sub_id>", "DELETE")
def cancel_subscription(store: Store, params: dict[str, Any], sub_id: str) -> dict[str, Any]:
    check_known(params, ("invoice_now", "prorate", "cancellation_details"))
    sub = store.require("subscription", sub_id)
    if sub["status"] not in billing.ENDED and "cancellation_details" in params:
        _cancellation_details(sub, params["cancellation_details"])
    return present(store, billing.cancel_subscription(store, sub))


@routes.add("/subscriptions/<sub_id>/resume", "POST")
def resume_subscription(store: Store, params: dict[str, Any], sub_id: str) -> dict[str, Any]:
    check_known(params, ("billing_cycle_anchor", "proration_behavior", "proration_date"))
    anchor = choice(
        params.get("billing_cycle_anchor", "now"), "billing_cycle_anchor", ("now", "unchanged")
    )
    return present(store, billing.resume(store, sub_id, anchor))


@routes.add("/subscription_items", "GET")
def list_subscription_items(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    check_known(params, ("limit", "starting_after", "ending_before", "subscription"))
    if not params.get("subscription"):
        raise missing_param("subscription")
    sub = present(store, store.require("subscription", params["subscription"], "subscription"))
    items = list(reversed(sub["items"]["data"]))
    url = f"/v1/subscription_items?subscription={sub['id']}"
    page = paginate(store, items, params, url, positional_order(items))
    by_id = {item["id"]: item for item in items}
    page["data"] = [by_id[item["id"]] for item in page["data"]]
    return page


@routes.add("/subscription_items/<item_id>", "GET")
def get_subscription_item(store: Store, params: dict[str, Any], item_id: str) -> dict[str, Any]:
    for sub in store.all("subscription"):
        for item in present(store, sub)["items"]["data"]:
            if item["id"] == item_id:
                return dict(item)
    raise no_such("subscription_item", item_id)


# -- invoices --------------------------------------------------------------------------------


@routes.add("/invoices/<invoice_id>", "GET")
def get_invoice(store: Store, params: dict[str, Any], invoice_id: str) -> dict[str, Any]:
    return present(store, store.require("invoice", invoice_id))


@routes.add("/invoices", "GET")
def list_invoices(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    check_known(params, (*LIST_PARAMS, "customer", "subscription", "status", "collection_method"))
    items = filter_created(store.all("invoice"), params.get("created"))
    for name in ("customer", "status", "collection_method"):
        if name in params:
            items = [i for i in items if i[name] == params[name]]
    if "subscription" in params:
        items = [i for i in items if objects.invoice_subscription(i) == params["subscription"]]
    return paginate(store, items, params, "/v1/invoices")


@routes.add("/invoices/<invoice_id>/lines", "GET")
def list_invoice_lines(store: Store, params: dict[str, Any], invoice_id: str) -> dict[str, Any]:
    check_known(params, ("limit", "starting_after", "ending_before"))
    lines = store.require("invoice", invoice_id)["lines"]["data"]
    url = f"/v1/invoices/{invoice_id}/lines"
    return paginate(store, lines, params, url, positional_order(lines))


@routes.add("/invoices/<invoice_id>/pay", "POST")
def pay_invoice(store: Store, params: dict[str, Any], invoice_id: str) -> dict[str, Any]:
    """Pay an open invoice. ``payment_method=pm_card_chargeDeclined`` makes the attempt fail
    (402 ``card_declined``, like Stripe's test payment method); anything else succeeds."""
    check_known(params, ("payment_method", "off_session", "paid_out_of_band", "forgive"))
    invoice = store.require("invoice", invoice_id)
    if invoice["status"] == "paid":
        raise invalid("Invoice is already paid.", code="invoice_already_paid")
    if invoice["status"] != "open":
        raise invalid(f"You can only pay an open invoice. This one is {invoice['status']}.")
    declined = params.get("payment_method") == "pm_card_chargeDeclined"
    billing.pay_invoice(store, invoice, "failed" if declined else "succeeded")
    if declined:
        raise card_declined()
    return present(store, invoice)


@routes.add("/invoice_payments", "GET")
def list_invoice_payments(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    check_known(params, (*LIST_PARAMS, "invoice", "payment", "status"))
    items = filter_created(store.all("invoice_payment"), params.get("created"))
    if "invoice" in params:
        items = [p for p in items if p["invoice"] == params["invoice"]]
    if "status" in params:
        items = [p for p in items if p["status"] == params["status"]]
    if "payment" in params:
        payment = as_dict(params["payment"], "payment")
        check_known(payment, ("type", "payment_intent", "payment_record"), "payment")
        for key, value in payment.items():
            items = [p for p in items if p["payment"].get(key) == as_str(value, f"payment[{key}]")]
    return paginate(store, items, params, "/v1/invoice_payments")


@routes.add("/invoice_payments/<payment_id>", "GET")
def get_invoice_payment(store: Store, params: dict[str, Any], payment_id: str) -> dict[str, Any]:
    return present(store, store.require("invoice_payment", payment_id))
