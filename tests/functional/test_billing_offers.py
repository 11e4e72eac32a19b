"""Offers through Stripe (issue 14): promotion codes on Checkout when
PAYWALL_CHECKOUT_PROMOTION_CODES is on, and a free trial per plan from the Price's metadata
``trial_period_days``, through the Stripe stand-in; access during and after the trial."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import AuthActions, Stripe

DAY = 86400


@pytest.fixture
def reader_browser(billing_auth: AuthActions) -> FlaskClient:
    billing_auth.sign_up()
    return billing_auth.browser()


def entitlements(browser: FlaskClient) -> dict[str, Any]:
    return browser.get("/api/v1/account").get_json()["entitlements"]  # type: ignore[no-any-return]


def plans(browser: FlaskClient) -> dict[str, Any]:
    return {p["lookup_key"]: p for p in browser.get("/api/v1/plans").get_json()["plans"]}


def checkout(browser: FlaskClient, plan: str = "premium_monthly") -> str:
    response = browser.post("/api/v1/billing/checkout", json={"plan": plan})
    assert response.status_code == 201, response.get_json()
    return str(response.get_json()["url"].rstrip("/").rsplit("/", 1)[1])


def set_trial(app: Flask, stripe_actions: Stripe, days: str, key: str = "premium_monthly") -> None:
    """Finance sets the Price's metadata in the dashboard; the price.updated webhook follows."""
    price = stripe_actions.client.v1.prices.list(params={"lookup_keys": [key]}).data[0]
    stripe_actions.client.v1.prices.update(
        price.id, params={"metadata": {"trial_period_days": days}}
    )
    stripe_actions.deliver()


def promotion_code(stripe_actions: Stripe, code: str = "WELCOME", percent: int = 50) -> Any:
    coupon = stripe_actions.client.v1.coupons.create(
        params={"percent_off": percent, "duration": "once", "name": "Welcome"}
    )
    return stripe_actions.client.v1.promotion_codes.create(
        params={"promotion": {"type": "coupon", "coupon": coupon.id}, "code": code}
    )


def test_promotion_codes_are_off_by_default(
    reader_browser: FlaskClient, stripe_actions: Stripe, standin: Any
) -> None:
    promotion_code(stripe_actions)
    assert not any(p["promotion_codes"] for p in plans(reader_browser).values())
    session_id = checkout(reader_browser)
    assert standin.get(session_id)["allow_promotion_codes"] is None
    with pytest.raises(Exception, match="does not accept promotion codes"):
        standin.complete_checkout(session_id, promotion_code="WELCOME")
    assert "promotion-codes" not in reader_browser.get("/plans").get_data(as_text=True)


@pytest.mark.parametrize("app_config", [{"CHECKOUT_PROMOTION_CODES": True}])
def test_a_promotion_code_through_checkout(
    billing_app: Flask, reader_browser: FlaskClient, stripe_actions: Stripe, standin: Any
) -> None:
    code = promotion_code(stripe_actions)
    assert all(p["promotion_codes"] for p in plans(reader_browser).values())
    page = reader_browser.get("/plans").get_data(as_text=True)
    assert "Have a promotion code? Enter it on the payment page." in page
    session_id = checkout(reader_browser)
    assert standin.get(session_id)["allow_promotion_codes"] is True
    completed = standin.complete_checkout(session_id, promotion_code="welcome")
    assert completed["total_details"]["amount_discount"] > 0
    stripe_actions.deliver()
    sub = standin.get(completed["subscription"])
    assert sub["status"] == "active"
    assert standin.get(sub["latest_invoice"])["total_discount_amounts"][0]["amount"] > 0
    assert "premium_content" in entitlements(reader_browser)["features"]
    invoices = reader_browser.get("/api/v1/billing/invoices").get_json()["invoices"]
    full = plans(reader_browser)["premium_monthly"]["amount"]
    assert invoices[0]["amount"] == full - completed["total_details"]["amount_discount"]
    assert stripe_actions.client.v1.promotion_codes.retrieve(code.id).times_redeemed == 1


def test_a_trial_from_the_prices_metadata_through_checkout(
    billing_app: Flask, reader_browser: FlaskClient, stripe_actions: Stripe, standin: Any
) -> None:
    set_trial(billing_app, stripe_actions, "14")
    offer = plans(reader_browser)["premium_monthly"]
    assert offer["trial_period_days"] == 14 and offer["trial_text"] == "14-day free trial"
    assert plans(reader_browser)["premium_yearly"]["trial_period_days"] is None
    page = reader_browser.get("/plans").get_data(as_text=True)
    assert 'id="trial-premium_monthly"' in page and "14-day free trial" in page
    session_id = checkout(reader_browser)
    assert standin.state.checkout_data[session_id]["subscription_data"]["trial_period_days"] == 14
    completed = standin.complete_checkout(session_id)
    stripe_actions.deliver()
    sub = standin.get(completed["subscription"])
    assert sub["status"] == "trialing"
    # Access during the trial is the plan's (the access table: trialing grants).
    during = entitlements(reader_browser)
    assert "premium_content" in during["features"] and during["reason"] == "trialing"
    account = reader_browser.get("/api/v1/account").get_json()
    assert account["subscription"]["status"] == "trialing"
    assert "Free trial" in reader_browser.get("/").get_data(as_text=True)
    assert standin.objects("charge") == []
    # The trial ends and the first charge succeeds: active, access unchanged.
    standin.advance_clock(14 * DAY + 60, renew=True)
    stripe_actions.deliver()
    assert reader_browser.get("/api/v1/account").get_json()["subscription"]["status"] == "active"
    assert entitlements(reader_browser) == {**during, "reason": "active"}
    assert [c["status"] for c in standin.objects("charge")] == ["succeeded"]


def test_a_trial_whose_first_charge_fails_is_past_due_with_the_grace_period(
    reader_browser: FlaskClient, billing_app: Flask, stripe_actions: Stripe, standin: Any
) -> None:
    set_trial(billing_app, stripe_actions, "7")
    completed = standin.complete_checkout(checkout(reader_browser))
    stripe_actions.deliver()
    standin.fail_renewal(completed["subscription"])
    stripe_actions.deliver()
    account = reader_browser.get("/api/v1/account").get_json()
    assert account["subscription"]["status"] == "past_due"
    assert "premium_content" in account["entitlements"]["features"]  # PAST_DUE_GRACE_DAYS


def test_one_trial_per_reader(
    reader_browser: FlaskClient, billing_app: Flask, stripe_actions: Stripe, standin: Any
) -> None:
    set_trial(billing_app, stripe_actions, "14")
    completed = standin.complete_checkout(checkout(reader_browser))
    stripe_actions.deliver()
    stripe_actions.client.v1.subscriptions.cancel(completed["subscription"])
    stripe_actions.deliver()
    assert entitlements(reader_browser)["features"] == []
    assert plans(reader_browser)["premium_monthly"]["trial_period_days"] is None
    assert "14-day free trial" not in reader_browser.get("/plans").get_data(as_text=True)
    session_id = checkout(reader_browser)
    assert "trial_period_days" not in standin.state.checkout_data[session_id]["subscription_data"]
    completed = standin.complete_checkout(session_id)
    assert standin.get(completed["subscription"])["status"] == "active"


@pytest.mark.parametrize("value", ["0", "-3", "soon", "731", ""])
def test_a_trial_metadata_stripe_would_refuse_means_no_trial(
    reader_browser: FlaskClient,
    billing_app: Flask,
    stripe_actions: Stripe,
    standin: Any,
    value: str,
) -> None:
    set_trial(billing_app, stripe_actions, value)
    assert plans(reader_browser)["premium_monthly"]["trial_period_days"] is None
    session_id = checkout(reader_browser)
    assert "trial_period_days" not in standin.state.checkout_data[session_id]["subscription_data"]
