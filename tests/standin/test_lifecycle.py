"""Time passing and dashboard actions: renewals, failed payments, SCA, refunds, disputes,
cancellation at period end, and the same through the SDK's subscription endpoints."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
import stripe

from stripe_standin import StandIn, StripeError

from .conftest import CONTROL, Catalog, Subscribed, event_types


def standin_post(standin: StandIn, path: str, body: dict[str, Any] | None = None) -> Any:
    response = requests.post(
        f"{standin.url}/_standin{path}", json=body or {}, timeout=5, headers=CONTROL
    )
    return response.status_code, response.json()


def period(sub: Any) -> tuple[int, int]:
    item = sub["items"]["data"][0]
    return item["current_period_start"], item["current_period_end"]


def test_renew_over_http(
    standin: StandIn, stripe_client: stripe.StripeClient, subscribed: Subscribed
) -> None:
    start, end = period(subscribed.subscription)
    status, body = standin_post(standin, f"/subscriptions/{subscribed.subscription.id}/renew")
    assert status == 200 and body["object"] == "subscription"
    assert period(body) == (end, end + 30 * 86400)
    assert body["status"] == "active"
    assert event_types(standin) == [
        "invoice.created",
        "invoice.finalized",
        "charge.succeeded",
        "invoice.paid",
        "invoice.payment_succeeded",
        "customer.subscription.updated",
    ]
    invoice = stripe_client.v1.invoices.retrieve(body["latest_invoice"])
    assert invoice.billing_reason == "subscription_cycle" and invoice.status == "paid"
    assert (invoice.period_start, invoice.period_end) == (start, end)
    assert invoice.lines.data[0].period.start == end
    invoices = stripe_client.v1.invoices.list(params={"subscription": body["id"]})
    assert len(invoices.data) == 2
    assert len(stripe_client.v1.charges.list(params={"customer": body["customer"]}).data) == 2


def test_failed_renewal_then_recovery(
    standin: StandIn, stripe_client: stripe.StripeClient, subscribed: Subscribed
) -> None:
    sub_id = subscribed.subscription.id
    status, body = standin_post(standin, f"/subscriptions/{sub_id}/fail_renewal")
    assert status == 200 and body["status"] == "past_due"
    assert event_types(standin) == [
        "invoice.created",
        "invoice.finalized",
        "charge.failed",
        "invoice.payment_failed",
        "customer.subscription.updated",
    ]
    invoice = stripe_client.v1.invoices.retrieve(body["latest_invoice"])
    assert invoice.status == "open" and invoice.attempt_count == 1
    assert invoice.next_payment_attempt is not None
    updated = standin.events[-1]
    assert updated["data"]["previous_attributes"]["status"] == "active"
    assert stripe_client.v1.subscriptions.list(params={"status": "past_due"}).data[0].id == sub_id

    standin.renew(sub_id)  # the retry succeeds: the open invoice is paid
    sub = stripe_client.v1.subscriptions.retrieve(sub_id)
    assert sub.status == "active"
    assert stripe_client.v1.invoices.retrieve(invoice.id).status == "paid"
    assert event_types(standin) == [
        "charge.succeeded",
        "invoice.paid",
        "invoice.payment_succeeded",
        "customer.subscription.updated",
    ]
    assert period(sub) == period(body)  # the period had already moved on


def test_require_action_and_paying_on_the_hosted_invoice_page(
    standin: StandIn, stripe_client: stripe.StripeClient, subscribed: Subscribed
) -> None:
    sub = standin.require_action(subscribed.subscription.id)
    assert sub["status"] == "past_due"
    assert event_types(standin) == [
        "invoice.created",
        "invoice.finalized",
        "invoice.payment_action_required",
        "customer.subscription.updated",
    ]
    invoice = stripe_client.v1.invoices.retrieve(sub["latest_invoice"])
    [payment] = stripe_client.v1.invoice_payments.list(params={"invoice": invoice.id}).data
    intent = stripe_client.v1.payment_intents.retrieve(payment.payment.payment_intent)
    assert intent.status == "requires_action" and intent.next_action.type == "use_stripe_sdk"

    page = requests.post(
        invoice.hosted_invoice_url, data={"card_number": "4242424242424242"}, timeout=5
    )
    assert page.status_code == 200 and "Payment succeeded" in page.text
    assert stripe_client.v1.subscriptions.retrieve(sub["id"]).status == "active"
    assert "invoice.paid" in event_types(standin)


def test_unpaid_pause_and_resume(
    standin: StandIn, stripe_client: stripe.StripeClient, subscribed: Subscribed
) -> None:
    sub_id = subscribed.subscription.id
    assert standin_post(standin, f"/subscriptions/{sub_id}/pause")[1]["status"] == "paused"
    assert event_types(standin) == ["customer.subscription.paused", "customer.subscription.updated"]
    with pytest.raises(StripeError, match="paused"):
        standin.renew(sub_id)
    resumed = stripe_client.v1.subscriptions.resume(sub_id)
    assert resumed.status == "active"
    assert abs(period(resumed)[0] - standin.now()) <= 2
    assert event_types(standin) == [
        "customer.subscription.resumed",
        "invoice.created",
        "invoice.finalized",
        "charge.succeeded",
        "invoice.paid",
        "invoice.payment_succeeded",
        "customer.subscription.updated",
    ]

    assert standin_post(standin, f"/subscriptions/{sub_id}/unpaid")[1]["status"] == "unpaid"
    status, body = standin_post(standin, f"/subscriptions/{sub_id}/resume")
    assert status == 400 and body["error"]["type"] == "invalid_request_error"


def test_refund_partial_then_full(
    standin: StandIn, stripe_client: stripe.StripeClient, subscribed: Subscribed
) -> None:
    [charge] = stripe_client.v1.charges.list(params={"customer": subscribed.customer.id}).data
    refund = stripe_client.v1.refunds.create(
        params={"charge": charge.id, "amount": 300, "reason": "requested_by_customer"}
    )
    assert refund.id.startswith("re_") and refund.status == "succeeded"
    assert refund.amount == 300 and refund.payment_intent == charge.payment_intent
    charge = stripe_client.v1.charges.retrieve(charge.id)
    assert (charge.amount_refunded, charge.refunded) == (300, False)
    assert [r.id for r in charge.refunds.data] == [refund.id]
    assert event_types(standin) == ["charge.refunded", "refund.created"]
    refunded_event = next(e for e in standin.events if e["type"] == "charge.refunded")
    assert refunded_event["data"]["previous_attributes"]["amount_refunded"] == 0

    with pytest.raises(stripe.InvalidRequestError) as too_much:
        stripe_client.v1.refunds.create(params={"charge": charge.id, "amount": 10_000})
    assert too_much.value.param == "amount"

    rest = stripe_client.v1.refunds.create(params={"payment_intent": charge.payment_intent})
    assert rest.amount == 699
    charge = stripe_client.v1.charges.retrieve(charge.id)
    assert (charge.amount_refunded, charge.refunded) == (999, True)
    assert stripe_client.v1.refunds.retrieve(rest.id).charge == charge.id
    with pytest.raises(stripe.InvalidRequestError) as again:
        stripe_client.v1.refunds.create(params={"charge": charge.id})
    assert again.value.code == "charge_already_refunded"


def test_dispute(
    standin: StandIn, stripe_client: stripe.StripeClient, subscribed: Subscribed
) -> None:
    [charge] = stripe_client.v1.charges.list(params={"customer": subscribed.customer.id}).data
    status, dispute = standin_post(
        standin, f"/charges/{charge.id}/dispute", {"reason": "fraudulent"}
    )
    assert status == 200
    assert dispute["id"].startswith("dp_") and dispute["charge"] == charge.id
    assert dispute["amount"] == 999 and dispute["status"] == "needs_response"
    assert stripe_client.v1.charges.retrieve(charge.id).disputed is True
    [delivery] = standin.take_deliveries()
    assert delivery.type == "charge.dispute.created"
    assert json.loads(delivery.payload)["data"]["object"]["id"] == dispute["id"]
    assert stripe_client.v1.disputes.retrieve(dispute["id"]).reason == "fraudulent"
    with pytest.raises(stripe.InvalidRequestError) as caught:
        stripe_client.v1.refunds.create(params={"charge": charge.id})
    assert caught.value.code == "charge_disputed"


def test_clock_cancels_at_period_end(
    standin: StandIn, stripe_client: stripe.StripeClient, subscribed: Subscribed
) -> None:
    sub_id = subscribed.subscription.id
    stripe_client.v1.subscriptions.update(sub_id, params={"cancel_at_period_end": True})
    assert event_types(standin) == ["customer.subscription.updated"]
    _, end = period(subscribed.subscription)

    status, clock = standin_post(standin, "/clock/advance", {"seconds": 10 * 86400})
    assert status == 200
    assert stripe_client.v1.subscriptions.retrieve(sub_id).status == "active"
    assert (
        requests.get(f"{standin.url}/_standin/clock", timeout=5, headers=CONTROL).json()["now"]
        == clock["now"]
    )

    standin.advance_clock(end - clock["now"])
    sub = stripe_client.v1.subscriptions.retrieve(sub_id)
    assert sub.status == "canceled" and sub.ended_at == end
    deleted = standin.take_deliveries()
    assert [d.type for d in deleted] == ["customer.subscription.deleted"]
    assert json.loads(deleted[0].payload)["created"] >= end
    # Default listing hides canceled subscriptions, like Stripe; status=all shows them.
    assert stripe_client.v1.subscriptions.list(params={"customer": sub.customer}).data == []
    assert len(stripe_client.v1.subscriptions.list(params={"status": "all"}).data) == 1
    assert len(stripe_client.v1.subscriptions.list(params={"status": "canceled"}).data) == 1


def test_clock_can_renew_what_falls_due(standin: StandIn, subscribed: Subscribed) -> None:
    standin.advance_clock(65 * 86400, renew=True)
    sub = standin.get(subscribed.subscription.id)
    assert sub is not None and sub["status"] == "active"
    assert period(sub)[1] > standin.now()
    assert event_types(standin).count("invoice.paid") == 2


def test_update_subscription_through_the_sdk(
    standin: StandIn,
    stripe_client: stripe.StripeClient,
    catalog: Catalog,
    subscribed: Subscribed,
) -> None:
    sub = subscribed.subscription
    item_id = sub["items"].data[0].id
    updated = stripe_client.v1.subscriptions.update(
        sub.id,
        params={
            "items": [{"id": item_id, "price": catalog.premium.id}],
            "proration_behavior": "none",
            "metadata": {"note": "upgraded"},
        },
    )
    assert updated["items"].data[0].price.id == catalog.premium.id
    assert len(updated["items"].data) == 1
    assert updated.metadata["note"] == "upgraded"
    assert updated.metadata["paywall_account_id"] == "acct_1"
    assert event_types(standin) == ["customer.subscription.updated"]
    by_price = stripe_client.v1.subscriptions.list(params={"price": catalog.premium.id})
    assert [s.id for s in by_price.data] == [sub.id]

    with pytest.raises(stripe.InvalidRequestError) as caught:
        stripe_client.v1.subscriptions.update(
            sub.id, params={"items": [{"id": "si_nope", "price": catalog.monthly.id}]}
        )
    assert caught.value.param == "items[0][id]"

    paused = stripe_client.v1.subscriptions.update(
        sub.id, params={"pause_collection": {"behavior": "void"}}
    )
    assert paused.pause_collection.behavior == "void" and paused.status == "active"
    cleared = stripe_client.v1.subscriptions.update(sub.id, params={"pause_collection": ""})
    assert cleared.pause_collection is None

    canceled = stripe_client.v1.subscriptions.cancel(
        sub.id, params={"cancellation_details": {"feedback": "too_expensive"}}
    )
    assert canceled.status == "canceled" and canceled.ended_at is not None
    assert canceled.cancellation_details.feedback == "too_expensive"
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.subscriptions.update(sub.id, params={"cancel_at_period_end": True})
    stripe_client.v1.subscriptions.update(sub.id, params={"metadata": {"after": "cancel"}})


def test_test_endpoints_report_missing_objects(standin: StandIn) -> None:
    status, body = standin_post(standin, "/subscriptions/sub_nope/renew")
    assert status == 404 and body["error"]["code"] == "resource_missing"
    status, body = standin_post(standin, "/charges/ch_nope/dispute")
    assert status == 404
