"""The hosted Checkout page: paying creates subscription, invoice, payment; declines don't."""

from __future__ import annotations

import json
import re

import pytest
import requests
import stripe

from stripe_standin import StandIn
from stripe_standin.store import API_VERSION

from .conftest import (
    DECLINE_CARD,
    WEBHOOK_SECRET,
    Catalog,
    event_types,
    pay,
    start_checkout,
)

PAID_EVENTS = [
    "customer.subscription.created",
    "invoice.created",
    "invoice.finalized",
    "charge.succeeded",
    "invoice.paid",
    "invoice.payment_succeeded",
    "checkout.session.completed",
]


def test_checkout_success_creates_subscription_invoice_and_payment(
    standin: StandIn, stripe_client: stripe.StripeClient, catalog: Catalog
) -> None:
    customer = stripe_client.v1.customers.create(params={"email": "reader@example.com"})
    session = start_checkout(
        stripe_client,
        catalog.monthly.id,
        customer=customer.id,
        client_reference_id="acct_1",
        metadata={"paywall_account_id": "acct_1"},
        subscription_data={"metadata": {"paywall_account_id": "acct_1"}},
    )
    assert session.status == "open" and session.payment_status == "unpaid"
    assert session.url == f"{standin.url}/checkout/{session.id}"
    assert session.id.startswith("cs_test_")
    assert session.expires_at == session.created + 24 * 3600
    standin.take_deliveries()

    page = requests.get(session.url, timeout=5)
    assert page.status_code == 200
    assert "Digital access" in page.text and "€9.99" in page.text
    assert 'id="card-number"' in page.text and 'name="card_number"' in page.text
    assert 'id="pay"' in page.text and "Subscribe" in page.text
    assert 'href="https://news.test/?checkout=canceled"' in page.text

    answer = pay(session.url)
    assert answer.status_code == 303
    assert answer.headers["Location"] == (
        f"https://paywall.test/billing/return?session_id={session.id}"
    )

    session = stripe_client.v1.checkout.sessions.retrieve(
        session.id, params={"expand": ["subscription", "invoice", "line_items"]}
    )
    assert (session.status, session.payment_status) == ("complete", "paid")
    assert session.customer == customer.id
    assert session.line_items.data[0].price.id == catalog.monthly.id
    sub = session.subscription
    assert sub.status == "active"
    assert sub.customer == customer.id
    assert sub.metadata.to_dict() == {"paywall_account_id": "acct_1"}
    item = sub["items"].data[0]
    assert item.price.id == catalog.monthly.id  # price embedded, as Stripe does
    assert item.price.lookup_key == "digital_monthly"
    assert item.current_period_end - item.current_period_start == 30 * 86400
    assert sub.latest_invoice == session.invoice.id

    invoice = session.invoice
    assert (invoice.status, invoice.billing_reason) == ("paid", "subscription_create")
    assert invoice.amount_paid == 999 and invoice.amount_remaining == 0
    assert invoice.parent.subscription_details.subscription == sub.id
    assert invoice.parent.subscription_details.metadata["paywall_account_id"] == "acct_1"
    assert "subscription" not in invoice  # removed in 2025-03-31.basil
    assert invoice.lines.data[0].pricing.price_details.price == catalog.monthly.id

    payments = stripe_client.v1.invoice_payments.list(
        params={"invoice": invoice.id, "expand": ["data.payment.payment_intent"]}
    )
    [payment] = payments.data
    assert payment.id.startswith("inpay_") and payment.status == "paid"
    assert payment.payment.type == "payment_intent"
    intent = payment.payment.payment_intent
    assert intent.status == "succeeded" and intent.amount_received == 999
    charge = stripe_client.v1.charges.retrieve(intent.latest_charge)
    assert charge.status == "succeeded" and charge.paid and charge.payment_intent == intent.id
    assert charge.customer == customer.id
    assert charge.payment_method_details.card.last4 == "4242"
    assert [c.id for c in stripe_client.v1.charges.list(params={"customer": customer.id})] == [
        charge.id
    ]

    deliveries = standin.take_deliveries()
    assert [d.type for d in deliveries] == PAID_EVENTS
    for delivery in deliveries:
        event = stripe.Webhook.construct_event(
            delivery.payload, delivery.headers["Stripe-Signature"], WEBHOOK_SECRET
        )
        assert event.id == delivery.event_id
        assert event.api_version == API_VERSION
        assert event.livemode is False
    completed = json.loads(deliveries[-1].payload)
    assert completed["data"]["object"]["subscription"] == sub.id
    assert completed["data"]["object"]["client_reference_id"] == "acct_1"
    created = json.loads(deliveries[0].payload)["data"]["object"]
    assert created["status"] == "active" and created["latest_invoice"] == invoice.id

    events = stripe_client.v1.events.list(params={"type": "invoice.*", "limit": 100})
    assert [e.type for e in reversed(events.data)] == [
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_succeeded",
    ]


def test_checkout_without_customer_creates_one(
    standin: StandIn, stripe_client: stripe.StripeClient, catalog: Catalog
) -> None:
    session = start_checkout(stripe_client, catalog.yearly.id, customer_email="new@example.com")
    standin.take_deliveries()
    assert 'value="new@example.com"' in requests.get(session.url, timeout=5).text
    assert pay(session.url, name="New Reader").status_code == 303
    session = stripe_client.v1.checkout.sessions.retrieve(
        session.id, params={"expand": ["customer"]}
    )
    assert session.customer.email == "new@example.com"
    assert session.customer_details.email == "new@example.com"
    assert event_types(standin)[0] == "customer.created"
    sub = stripe_client.v1.subscriptions.retrieve(session.subscription)
    assert sub["items"].data[0].price.recurring.interval == "year"


def test_declined_card_creates_nothing(
    standin: StandIn, stripe_client: stripe.StripeClient, catalog: Catalog
) -> None:
    session = start_checkout(stripe_client, catalog.monthly.id, customer_email="d@example.com")
    standin.take_deliveries()
    answer = pay(session.url, card=DECLINE_CARD)
    assert answer.status_code == 402
    assert re.search(r'id="error"[^>]*>Your card was declined\.<', answer.text)
    assert 'id="card-number"' in answer.text  # the form is shown again

    invalid = pay(session.url, card="1234 5678")
    assert invalid.status_code == 402
    assert "Your card number is invalid." in invalid.text

    assert stripe_client.v1.checkout.sessions.retrieve(session.id).status == "open"
    assert stripe_client.v1.subscriptions.list(params={"status": "all"}).data == []
    assert stripe_client.v1.invoices.list().data == []
    assert stripe_client.v1.charges.list().data == []
    assert stripe_client.v1.customers.list().data == []
    assert standin.take_deliveries() == []

    assert pay(session.url).status_code == 303  # a good card still works afterwards


def test_completing_twice_shows_an_error(
    stripe_client: stripe.StripeClient, catalog: Catalog
) -> None:
    session = start_checkout(stripe_client, catalog.monthly.id)
    assert pay(session.url).status_code == 303
    again = requests.post(session.url, data={"card_number": "4242424242424242"}, timeout=5)
    assert again.status_code == 409
    assert "already complete" in again.text
    assert len(stripe_client.v1.subscriptions.list().data) == 1
    assert "already complete" in requests.get(session.url, timeout=5).text


def test_sessions_expire_after_24_hours(
    standin: StandIn, stripe_client: stripe.StripeClient, catalog: Catalog
) -> None:
    session = start_checkout(stripe_client, catalog.monthly.id)
    standin.advance_clock(24 * 3600)
    assert stripe_client.v1.checkout.sessions.retrieve(session.id).status == "expired"
    assert event_types(standin)[-1] == "checkout.session.expired"
    page = requests.get(session.url, timeout=5)
    assert page.status_code == 410 and "expired" in page.text

    other = start_checkout(stripe_client, catalog.monthly.id)
    expired = stripe_client.v1.checkout.sessions.expire(other.id)
    assert expired.status == "expired"
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.checkout.sessions.expire(other.id)


def test_checkout_session_validation(stripe_client: stripe.StripeClient, catalog: Catalog) -> None:
    with pytest.raises(stripe.InvalidRequestError) as no_quantity:
        stripe_client.v1.checkout.sessions.create(
            params={"mode": "subscription", "line_items": [{"price": catalog.monthly.id}]}
        )
    assert no_quantity.value.param == "line_items[0][quantity]"
    with pytest.raises(stripe.InvalidRequestError) as no_price:
        start_checkout(stripe_client, "price_nope")
    assert no_price.value.code == "resource_missing"
    with pytest.raises(stripe.InvalidRequestError) as no_mode:
        stripe_client.v1.checkout.sessions.create(
            params={"line_items": [{"price": catalog.monthly.id, "quantity": 1}]}
        )
    assert (no_mode.value.code, no_mode.value.param) == ("parameter_missing", "mode")
    customer = stripe_client.v1.customers.create()
    with pytest.raises(stripe.InvalidRequestError):
        start_checkout(
            stripe_client, catalog.monthly.id, customer=customer.id, customer_email="x@y.z"
        )
    listed = stripe_client.v1.checkout.sessions.list(params={"customer": customer.id})
    assert listed.data == []


def test_card_error_through_the_sdk(
    standin: StandIn, stripe_client: stripe.StripeClient, subscribed: object
) -> None:
    """A declined attempt to pay an open invoice is a 402 ``CardError`` in the SDK."""
    sub_id = subscribed.subscription.id  # type: ignore[attr-defined]
    standin.fail_renewal(sub_id)
    invoice_id = stripe_client.v1.subscriptions.retrieve(sub_id).latest_invoice
    with pytest.raises(stripe.CardError) as caught:
        stripe_client.v1.invoices.pay(
            invoice_id, params={"payment_method": "pm_card_chargeDeclined"}
        )
    assert caught.value.http_status == 402
    assert caught.value.code == "card_declined"
    invoice = stripe_client.v1.invoices.pay(invoice_id)
    assert invoice.status == "paid"
    assert stripe_client.v1.subscriptions.retrieve(sub_id).status == "active"
