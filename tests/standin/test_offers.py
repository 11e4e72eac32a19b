"""Coupons, promotion codes and trials in the stand-in, through the real SDK: a code typed on
the hosted Checkout page when the session allows codes, a Price's trial through
``subscription_data.trial_period_days``, and what Stripe does with both on invoices."""

from __future__ import annotations

from typing import Any

import pytest
import requests
import stripe

from stripe_standin import StandIn
from tests.standin.conftest import Catalog, event_types, pay, start_checkout

DAY = 86400


def promo(client: stripe.StripeClient, code: str = "SPRING25", **coupon: Any) -> Any:
    params = {"percent_off": 25, "duration": "once", **coupon}
    made = client.v1.coupons.create(params=params)
    return client.v1.promotion_codes.create(
        params={"promotion": {"type": "coupon", "coupon": made.id}, "code": code}
    )


def subscription_of(client: stripe.StripeClient, session_id: str) -> Any:
    session = client.v1.checkout.sessions.retrieve(session_id)
    return session, client.v1.subscriptions.retrieve(session.subscription)


def test_a_promotion_code_on_checkout_discounts_the_first_invoice(
    standin: StandIn, stripe_client: stripe.StripeClient, catalog: Catalog
) -> None:
    code = promo(stripe_client)
    session = start_checkout(stripe_client, catalog.monthly.id, allow_promotion_codes=True)
    page = stripe_client.v1.checkout.sessions.retrieve(session.id)
    assert page.allow_promotion_codes is True
    assert 'id="promotion-code"' in requests.get(session.url, timeout=10).text
    assert pay(session.url, promotion_code="spring25").status_code == 303  # any case
    session, sub = subscription_of(stripe_client, session.id)
    assert session.total_details.amount_discount == 250  # 25 % of 9.99, rounded
    assert session.amount_total == 749
    assert session.discounts[0].promotion_code == code.id
    invoice = stripe_client.v1.invoices.retrieve(sub.latest_invoice)
    assert invoice.subtotal == 999 and invoice.amount_due == 749 and invoice.amount_paid == 749
    assert invoice.total_discount_amounts[0].amount == 250
    charge = [c for c in standin.objects("charge") if c["status"] == "succeeded"][0]
    assert charge["amount"] == 749
    assert stripe_client.v1.promotion_codes.retrieve(code.id).times_redeemed == 1
    # "once": the renewal is charged in full.
    standin.renew(sub.id)
    renewal = stripe_client.v1.invoices.retrieve(
        stripe_client.v1.subscriptions.retrieve(sub.id).latest_invoice
    )
    assert renewal.amount_due == 999 and renewal.total_discount_amounts == []


def test_a_repeating_coupon_keeps_discounting_until_its_end(
    standin: StandIn, stripe_client: stripe.StripeClient, catalog: Catalog
) -> None:
    promo(stripe_client, "HALF", percent_off=50, duration="repeating", duration_in_months=2)
    session = start_checkout(stripe_client, catalog.monthly.id, allow_promotion_codes=True)
    assert pay(session.url, promotion_code="HALF").status_code == 303
    _session, sub = subscription_of(stripe_client, session.id)
    amounts = [stripe_client.v1.invoices.retrieve(sub.latest_invoice).amount_due]
    for _ in range(3):
        standin.renew(sub.id)
        latest = stripe_client.v1.subscriptions.retrieve(sub.id).latest_invoice
        amounts.append(stripe_client.v1.invoices.retrieve(latest).amount_due)
    assert amounts == [499, 499, 999, 999]  # two 30-day months, then the full price


def test_codes_are_refused_when_not_allowed_unknown_inactive_or_used_up(
    standin: StandIn, stripe_client: stripe.StripeClient, catalog: Catalog
) -> None:
    code = promo(stripe_client)
    closed = start_checkout(stripe_client, catalog.monthly.id)
    refused = pay(closed.url, promotion_code="SPRING25")
    assert refused.status_code == 400 and "does not accept promotion codes" in refused.text
    assert 'id="promotion-code"' not in requests.get(closed.url, timeout=10).text
    session = start_checkout(stripe_client, catalog.monthly.id, allow_promotion_codes=True)
    unknown = pay(session.url, promotion_code="NOPE")
    assert unknown.status_code == 400 and "This code is invalid." in unknown.text
    stripe_client.v1.promotion_codes.update(code.id, params={"active": False})
    assert "This code is invalid." in pay(session.url, promotion_code="SPRING25").text
    limited = stripe_client.v1.promotion_codes.create(
        params={
            "promotion": {"type": "coupon", "coupon": code.promotion.coupon},
            "code": "ONCEONLY",
            "max_redemptions": 1,
        }
    )
    assert pay(session.url, promotion_code="ONCEONLY").status_code == 303
    again = start_checkout(stripe_client, catalog.monthly.id, allow_promotion_codes=True)
    assert "This code is invalid." in pay(again.url, promotion_code="ONCEONLY").text
    assert stripe_client.v1.promotion_codes.retrieve(limited.id).times_redeemed == 1
    # No code at all is fine, at the full price.
    assert pay(again.url).status_code == 303


@pytest.mark.parametrize(
    "params",
    [
        {"duration": "once"},
        {"percent_off": 10, "amount_off": 100, "currency": "eur"},
        {"percent_off": 150},
        {"amount_off": 100},
        {"percent_off": 10, "duration": "repeating"},
    ],
)
def test_bad_coupons_are_refused(stripe_client: stripe.StripeClient, params: Any) -> None:
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.coupons.create(params=params)


def test_a_trial_from_checkout_is_trialing_then_bills_at_its_end(
    standin: StandIn, stripe_client: stripe.StripeClient, catalog: Catalog
) -> None:
    session = start_checkout(
        stripe_client, catalog.monthly.id, subscription_data={"trial_period_days": 14}
    )
    page = requests.get(session.url, timeout=10).text
    assert "14-day free trial" in page and "€0.00" in page
    standin.take_deliveries()
    assert pay(session.url).status_code == 303
    session, sub = subscription_of(stripe_client, session.id)
    assert sub.status == "trialing"
    assert sub.trial_end - sub.trial_start == 14 * DAY
    assert sub["items"].data[0].current_period_end == sub.trial_end
    assert session.payment_status == "no_payment_required" and session.amount_total == 0
    first = stripe_client.v1.invoices.retrieve(sub.latest_invoice)
    assert first.amount_due == 0 and first.status == "paid"
    assert first.lines.data[0].description.startswith("Trial period for")
    assert standin.objects("charge") == []
    assert "customer.subscription.created" in event_types(standin)
    # The trial ends: the first real invoice is charged, the subscription is active.
    standin.advance_clock(14 * DAY + 60, renew=True)
    sub = stripe_client.v1.subscriptions.retrieve(sub.id)
    assert sub.status == "active"
    paid = stripe_client.v1.invoices.retrieve(sub.latest_invoice)
    assert paid.amount_paid == 999 and paid.billing_reason == "subscription_cycle"
    assert [c["amount"] for c in standin.objects("charge")] == [999]


def test_a_trial_whose_first_charge_fails_goes_past_due(
    standin: StandIn, stripe_client: stripe.StripeClient, catalog: Catalog
) -> None:
    session = start_checkout(
        stripe_client, catalog.monthly.id, subscription_data={"trial_period_days": 7}
    )
    pay(session.url)
    _session, sub = subscription_of(stripe_client, session.id)
    standin.fail_renewal(sub.id)
    assert stripe_client.v1.subscriptions.retrieve(sub.id).status == "past_due"


@pytest.mark.parametrize("days", [0, 731, "x"])
def test_bad_trial_lengths_are_refused(
    stripe_client: stripe.StripeClient, catalog: Catalog, days: Any
) -> None:
    with pytest.raises(stripe.InvalidRequestError):
        start_checkout(
            stripe_client, catalog.monthly.id, subscription_data={"trial_period_days": days}
        )
