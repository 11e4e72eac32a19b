"""Checkout from several pages, revocations that only a paid invoice lifts, handlers that
re-fetch instead of trusting the payload, and what Stripe does later (permanent refusals,
orphaned events, won disputes, failed refunds)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from paywall.accounts.models import Account
from paywall.billing.models import StripeEvent
from paywall.billing.services import billing_service
from paywall.extensions import db
from tests.conftest import AuthActions, Stripe


@pytest.fixture
def reader_browser(billing_auth: AuthActions) -> FlaskClient:
    billing_auth.sign_up()
    return billing_auth.browser()


def entitlements(browser: FlaskClient) -> dict[str, Any]:
    return browser.get("/api/v1/account").get_json()["entitlements"]  # type: ignore[no-any-return]


def subscribed(stripe_actions: Stripe, browser: FlaskClient) -> dict[str, Any]:
    stripe_actions.deliver()
    sub = stripe_actions.subscribe(browser)
    stripe_actions.deliver()
    assert "premium_content" in entitlements(browser)["features"]
    return sub


def post_event(app: Flask, standin: Any, event: dict[str, Any], **sign: Any) -> Any:
    payload = json.dumps(event).encode()
    return app.test_client().post(
        "/api/v1/stripe/webhook",
        data=payload,
        headers={
            "Stripe-Signature": standin.sign(payload, **sign),
            "Content-Type": "application/json",
        },
    )


def event_of(event_type: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"evt_test_{time.time_ns()}",
        "object": "event",
        "type": event_type,
        "created": int(time.time()),
        "data": {"object": obj},
    }


def stored(app: Flask, event_id: str) -> StripeEvent:
    with app.app_context():
        row = db.session.get(StripeEvent, event_id)
        assert row is not None
        db.session.expunge(row)
        return row


# -- checkout ------------------------------------------------------------------------------
def test_checkouts_from_two_pages_both_get_a_url(
    billing_app: Flask, reader_browser: FlaskClient, standin: Any
) -> None:
    urls = []
    for page in ("https://news.test/a/first-article", "https://news.test/b/second-article"):
        reader_browser.get("/", query_string={"next": page})  # the page the reader came from
        response = reader_browser.post("/billing/subscribe", data={"plan": "premium_monthly"})
        assert response.status_code == 303, response.data
        urls.append(response.headers["Location"])
    assert all("/checkout/cs_test_" in url for url in urls) and urls[0] != urls[1]
    cancel_urls = [standin.get(url.rsplit("/", 1)[1])["cancel_url"] for url in urls]
    assert cancel_urls == [
        "https://news.test/a/first-article",
        "https://news.test/b/second-article",
    ]
    # The same page again (a double click) still gets the same session back.
    again = reader_browser.post("/billing/subscribe", data={"plan": "premium_monthly"})
    assert again.headers["Location"] == urls[1]
    assert len(standin.objects("checkout.session")) == 2


def test_checkout_service_with_two_return_pages(
    billing_app: Flask, reader_browser: FlaskClient
) -> None:
    with billing_app.test_request_context():
        account = db.session.scalars(select(Account)).one()
        billing = billing_service()
        first = billing.checkout(account, "premium_monthly", return_to="https://news.test/a")
        second = billing.checkout(account, "premium_monthly", return_to="https://news.test/b")
        db.session.commit()
    assert first != second


def test_stripes_own_message_never_reaches_the_reader(
    billing_app: Flask, reader_browser: FlaskClient, standin: Any
) -> None:
    standin.add_fault("POST", "/v1/checkout/sessions", mode="error", status=400, times=None)
    refused = reader_browser.post("/api/v1/billing/checkout", json={"plan": "premium_monthly"})
    assert refused.status_code == 502
    error = refused.get_json()["error"]
    assert error["code"] == "payment_provider_error"
    assert "injected" not in error["message"] and "Stripe refused" not in error["message"]
    page = reader_browser.post("/billing/subscribe", data={"plan": "premium_monthly"})
    assert page.status_code == 302
    home = reader_browser.get("/")
    assert b"injected" not in home.data


# -- issue 11: a revocation is lifted only by a paid newer invoice --------------------------
def test_refunded_reader_gets_nothing_back_through_a_declined_renewal(
    billing_app: Flask, reader_browser: FlaskClient, stripe_actions: Stripe, standin: Any
) -> None:
    sub = subscribed(stripe_actions, reader_browser)
    charge = standin.objects("charge")[0]
    stripe_actions.client.v1.refunds.create(params={"charge": charge["id"]})
    stripe_actions.deliver()
    assert entitlements(reader_browser)["reason"] == "refunded"
    standin.fail_renewal(sub["id"])  # a newer invoice, open: past_due would grant grace
    stripe_actions.deliver()
    assert entitlements(reader_browser) == {
        "plan": None,
        "features": [],
        "max_devices": 5,
        "reason": "refunded",
    }
    standin.renew(sub["id"])  # the newer invoice is paid: access is back
    stripe_actions.deliver()
    assert entitlements(reader_browser)["reason"] == "active"


def test_disputed_reader_gets_nothing_back_through_a_declined_renewal(
    billing_app: Flask, reader_browser: FlaskClient, stripe_actions: Stripe, standin: Any
) -> None:
    sub = subscribed(stripe_actions, reader_browser)
    standin.dispute(standin.objects("charge")[0]["id"])
    stripe_actions.deliver()
    standin.fail_renewal(sub["id"])
    stripe_actions.deliver()
    assert entitlements(reader_browser)["reason"] == "disputed"


# -- issue 11: handlers re-fetch instead of trusting the payload -----------------------------
def test_charge_refunded_payload_is_not_trusted(
    billing_app: Flask, reader_browser: FlaskClient, stripe_actions: Stripe, standin: Any
) -> None:
    subscribed(stripe_actions, reader_browser)
    charge = dict(standin.objects("charge")[0])
    assert charge["refunded"] is False
    forged = {**charge, "refunded": True, "amount_refunded": charge["amount"]}
    response = post_event(billing_app, standin, event_of("charge.refunded", forged))
    assert response.status_code == 200
    assert "premium_content" in entitlements(reader_browser)["features"]


def test_customer_deleted_payload_is_not_trusted(
    billing_app: Flask, reader_browser: FlaskClient, stripe_actions: Stripe, standin: Any
) -> None:
    sub = subscribed(stripe_actions, reader_browser)
    forged = {"id": sub["customer"], "object": "customer", "deleted": True}
    response = post_event(billing_app, standin, event_of("customer.deleted", forged))
    assert response.status_code == 200
    assert "premium_content" in entitlements(reader_browser)["features"]
    stripe_actions.client.v1.customers.delete(sub["customer"])  # really deleted: access ends
    stripe_actions.deliver()
    assert entitlements(reader_browser)["features"] == []


@pytest.mark.parametrize("ahead", [301, 10 * 365 * 24 * 3600])
def test_signatures_from_the_future_are_refused(
    billing_app: Flask, standin: Any, ahead: int
) -> None:
    event = event_of("customer.subscription.updated", {"id": "sub_x", "object": "subscription"})
    response = post_event(billing_app, standin, event, timestamp=int(time.time()) + ahead)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_signature"
    with billing_app.app_context():
        assert db.session.get(StripeEvent, event["id"]) is None
    # Within the tolerance (clocks a little apart) it is accepted.
    near = event_of("something.new", {"id": "x", "object": "thing"})
    ok = post_event(billing_app, standin, near, timestamp=int(time.time()) + 60)
    assert ok.status_code == 200
