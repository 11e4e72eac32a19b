"""Every object the stand-in returns has the shape of Stripe's own example of that object
(``stripe_standin/fixtures.json``, copied from stripe/openapi's ``fixtures3.json``): all of the
fixture's keys, and values of the same JSON type wherever both are non-null."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests
import stripe

import stripe_standin
from stripe_standin import StandIn

from .conftest import Catalog, Subscribed

FIXTURES: dict[str, Any] = json.loads(
    (Path(stripe_standin.__file__).parent / "fixtures.json").read_text(encoding="utf-8")
)["resources"]


def json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    raise TypeError(type(value))


def shape_problems(actual: Any, fixture: Any, path: str = "") -> list[str]:
    if actual is None or fixture is None:
        return []
    if json_type(actual) != json_type(fixture):
        return [f"{path or '.'}: {json_type(actual)} where Stripe has {json_type(fixture)}"]
    problems: list[str] = []
    if isinstance(fixture, dict):
        missing = sorted(set(fixture) - set(actual))
        problems += [f"{path}.{key}: missing" for key in missing]
        for key, value in fixture.items():
            if key in actual:
                problems += shape_problems(actual[key], value, f"{path}.{key}")
    elif isinstance(fixture, list) and fixture:
        for index, element in enumerate(actual):
            problems += shape_problems(element, fixture[0], f"{path}[{index}]")
    return problems


#: Fields fixtures3.json still shows that the pinned API version removed (the SDK's types
#: for that version, checked in test_sdk_types.py, have no such field).
REMOVED = {"invoice": {"subscription"}}


def fixture_for(obj: dict[str, Any]) -> dict[str, Any]:
    if obj.get("deleted"):
        return FIXTURES["deleted_customer"]
    fixture = FIXTURES[obj["object"]]
    return {k: v for k, v in fixture.items() if k not in REMOVED.get(obj["object"], ())}


def assert_stripe_shape(obj: dict[str, Any]) -> None:
    fixture = fixture_for(obj)
    if obj["object"] == "event":
        # The example event carries a plan; data.object is checked against its own type below.
        fixture = {**fixture, "data": {**fixture["data"], "object": None}}
    assert obj["object"] == fixture["object"]
    assert set(obj) >= set(fixture), sorted(set(fixture) - set(obj))
    problems = shape_problems(obj, fixture)
    assert not problems, f"{obj['object']} {obj['id']}: " + "; ".join(problems)
    if obj["object"] == "event":
        assert set(obj["data"]) >= {"object"}
        assert_stripe_shape(obj["data"]["object"])


@pytest.fixture
def everything(
    standin: StandIn,
    stripe_client: stripe.StripeClient,
    catalog: Catalog,
    subscribed: Subscribed,
) -> list[dict[str, Any]]:
    """One of each object the stand-in returns, after exercising every flow."""
    sub_id = subscribed.subscription.id
    standin.renew(sub_id)
    standin.fail_renewal(sub_id)
    standin.require_action(sub_id)
    standin.renew(sub_id)
    charge = stripe_client.v1.charges.list(params={"limit": 1}).data[0]
    refund = stripe_client.v1.refunds.create(params={"charge": charge.id, "amount": 100})
    older_charge = stripe_client.v1.charges.list().data[-1]
    standin.dispute(older_charge.id)
    portal = stripe_client.v1.billing_portal.sessions.create(
        params={"customer": subscribed.customer.id, "return_url": "https://paywall.test/"}
    )
    requests.post(
        portal.url,
        data={"action": "cancel", "subscription": sub_id},
        timeout=5,
    )
    doomed = stripe_client.v1.customers.create(params={"email": "gone@example.com"})
    deleted = stripe_client.v1.customers.delete(doomed.id)

    c = stripe_client.v1
    session = c.checkout.sessions.retrieve(subscribed.session.id)
    invoice = c.invoices.retrieve(session.invoice)
    objects = [
        catalog.product,
        catalog.monthly,
        subscribed.customer,
        deleted,
        session,
        portal,
        c.subscriptions.retrieve(sub_id),
        c.subscription_items.list(params={"subscription": sub_id}).data[0],
        invoice,
        c.invoices.line_items.list(invoice.id).data[0],
        c.invoice_payments.list(params={"invoice": invoice.id}).data[0],
        c.payment_intents.retrieve(charge.payment_intent),
        c.charges.retrieve(charge.id),
        c.refunds.retrieve(refund.id),
        c.disputes.list().data[0],
        c.checkout.sessions.line_items.list(session.id).data[0],
        *c.events.list(params={"limit": 100}).auto_paging_iter(),
    ]
    # The JSON as sent (the SDK turns decimal strings into Decimal when hydrating).
    return [json.loads(str(obj)) for obj in objects]


def test_every_object_has_stripe_shape(everything: list[dict[str, Any]]) -> None:
    kinds = set()
    for obj in everything:
        assert_stripe_shape(obj)
        kinds.add("deleted_customer" if obj.get("deleted") else obj["object"])
        if obj["object"] == "event":
            kinds.add(obj["data"]["object"]["object"])
    assert kinds >= {
        "product",
        "price",
        "customer",
        "deleted_customer",
        "checkout.session",
        "billing_portal.session",
        "subscription",
        "subscription_item",
        "invoice",
        "line_item",
        "invoice_payment",
        "payment_intent",
        "charge",
        "refund",
        "dispute",
        "item",
        "event",
    }


def test_event_types_cover_the_list(everything: list[dict[str, Any]]) -> None:
    types = {obj["type"] for obj in everything if obj["object"] == "event"}
    assert types >= {
        "product.created",
        "price.created",
        "customer.created",
        "customer.deleted",
        "checkout.session.completed",
        "customer.subscription.created",
        "customer.subscription.updated",
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_succeeded",
        "invoice.payment_failed",
        "invoice.payment_action_required",
        "charge.succeeded",
        "charge.refunded",
        "refund.created",
        "charge.dispute.created",
    }


def test_ids_and_livemode(everything: list[dict[str, Any]]) -> None:
    prefixes = {
        "product": "prod_",
        "price": "price_",
        "customer": "cus_",
        "subscription": "sub_",
        "subscription_item": "si_",
        "invoice": "in_",
        "charge": "ch_",
        "payment_intent": "pi_",
        "refund": "re_",
        "dispute": "dp_",
        "event": "evt_",
        "invoice_payment": "inpay_",
        "checkout.session": "cs_test_",
        "billing_portal.session": "bps_",
    }
    for obj in everything:
        if obj["object"] in prefixes:
            assert obj["id"].startswith(prefixes[obj["object"]]), obj["id"]
        if "livemode" in obj:
            assert obj["livemode"] is False


def test_embedded_plan_and_price_shapes(everything: list[dict[str, Any]]) -> None:
    sub = next(obj for obj in everything if obj["object"] == "subscription")
    item = sub["items"]["data"][0]
    assert not shape_problems(item["price"], FIXTURES["price"])
    assert not shape_problems(item["plan"], FIXTURES["plan"])
    assert item["plan"]["id"] == item["price"]["id"]


def test_the_checker_notices_missing_keys_and_wrong_types() -> None:
    product = {**FIXTURES["product"], "id": "prod_x"}
    assert shape_problems(product, FIXTURES["product"]) == []
    del product["url"]
    product["active"] = "yes"
    product["package_dimensions"] = {"height": 1}
    assert shape_problems(product, FIXTURES["product"]) == [
        ".url: missing",
        ".active: string where Stripe has boolean",
        ".package_dimensions.length: missing",
        ".package_dimensions.weight: missing",
        ".package_dimensions.width: missing",
    ]
