"""Checkout from several pages, revocations that only a paid invoice lifts, handlers that
re-fetch instead of trusting the payload, and what Stripe does later (permanent refusals,
orphaned events, won disputes, failed refunds)."""

from __future__ import annotations

import json
import time
from datetime import timedelta
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
    pages = ("https://news.test/a/first-article", "https://news.test/b/second-article")
    for page in pages:
        # The page the reader came from rides in the subscribe form.
        form = reader_browser.get("/", query_string={"next": page}).get_data(as_text=True)
        assert f'name="next" value="{page}"' in form
        response = reader_browser.post(
            "/billing/subscribe", data={"plan": "premium_monthly", "next": page}
        )
        assert response.status_code == 303, response.data
        urls.append(response.headers["Location"])
    assert all("/checkout/cs_test_" in url for url in urls) and urls[0] != urls[1]
    cancel_urls = [standin.get(url.rsplit("/", 1)[1])["cancel_url"] for url in urls]
    assert cancel_urls == [
        "https://news.test/a/first-article",
        "https://news.test/b/second-article",
    ]
    # The same page again (a double click) still gets the same session back.
    again = reader_browser.post(
        "/billing/subscribe", data={"plan": "premium_monthly", "next": pages[1]}
    )
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


# -- a permanent refusal on a re-fetch ----------------------------------------------------------
def test_a_permanent_404_on_a_refetch_is_rejected_for_good_not_retried(
    billing_app: Flask, reader_browser: FlaskClient, stripe_actions: Stripe, standin: Any
) -> None:
    event = event_of("customer.subscription.updated", {"id": "sub_gone", "object": "subscription"})
    response = post_event(billing_app, standin, event)
    assert response.status_code == 200  # Stripe stops retrying
    assert response.get_json()["outcome"] == "rejected"
    row = stored(billing_app, event["id"])
    assert row.status == "rejected" and "404" in (row.error or "")
    again = post_event(billing_app, standin, event)
    assert again.get_json()["outcome"] == "duplicate"
    standin_requests = len(standin.requests)
    runner = billing_app.test_cli_runner()
    replayed = runner.invoke(args=["billing", "replay-events"])
    assert replayed.exit_code == 0 and "0 event(s) replayed" in replayed.output
    reconciled = runner.invoke(args=["billing", "reconcile"])
    assert reconciled.exit_code == 0, reconciled.output
    assert not [r for r in standin.requests[standin_requests:] if "sub_gone" in r.path]
    listing = runner.invoke(args=["billing", "events"])
    assert listing.exit_code == 0
    assert event["id"] in listing.output and "customer.subscription.updated" in listing.output
    assert "1 event(s)" in listing.output


def test_a_transient_stripe_error_still_answers_500(
    billing_app: Flask, reader_browser: FlaskClient, stripe_actions: Stripe, standin: Any
) -> None:
    sub = subscribed(stripe_actions, reader_browser)
    standin.add_fault("GET", "/v1/subscriptions/*", mode="error", status=500, times=None)
    event = event_of("customer.subscription.updated", {"id": sub["id"], "object": "subscription"})
    assert post_event(billing_app, standin, event).status_code == 500
    assert stored(billing_app, event["id"]).status == "failed"


# -- orphaned events -----------------------------------------------------------------------------
def test_orphaned_events_cost_one_lookup_per_customer_per_run_and_expire(
    billing_app: Flask, reader_browser: FlaskClient, stripe_actions: Stripe, standin: Any
) -> None:
    stripe_actions.deliver()
    customer = stripe_actions.client.v1.customers.create(params={"email": "nobody@example.com"})
    standin.take_deliveries()
    events = [
        event_of("customer.subscription.updated", {"id": "sub_x", "customer": customer.id})
        for _ in range(5)
    ]
    # Stripe has the subscription: a hand-made one for that customer.
    monthly = next(p for p in standin.objects("price") if p.get("lookup_key") == "premium_monthly")
    session = stripe_actions.client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "customer": customer.id,
            "success_url": "https://x.test/ok",
            "line_items": [{"price": monthly["id"], "quantity": 1}],
        }
    )
    sub_id = standin.complete_checkout(session.id)["subscription"]
    standin.take_deliveries()
    for event in events:
        event["data"]["object"]["id"] = sub_id
        assert post_event(billing_app, standin, event).get_json()["outcome"] == "orphaned"

    before = len(standin.requests)
    result = billing_app.test_cli_runner().invoke(args=["billing", "reconcile"])
    assert result.exit_code == 0, result.output
    lookups = [r for r in standin.requests[before:] if customer.id in r.path]
    assert len(lookups) == 1  # one lookup for the customer, none per event
    assert not [r for r in standin.requests[before:] if sub_id in r.path]
    assert {stored(billing_app, e["id"]).status for e in events} == {"orphaned"}

    with billing_app.app_context():  # 31 days later the owner has still not appeared
        for event in events[:3]:
            row = db.session.get(StripeEvent, event["id"])
            row.received_at = row.received_at - timedelta(days=31)
        db.session.commit()
    result = billing_app.test_cli_runner().invoke(args=["billing", "reconcile"])
    assert "3 orphaned event(s) expired" in result.output
    assert [stored(billing_app, e["id"]).status for e in events] == ["expired"] * 3 + [
        "orphaned"
    ] * 2

    account_id = reader_browser.get("/api/v1/account").get_json()["id"]
    stripe_actions.client.v1.customers.update(
        customer.id, params={"metadata": {"paywall_account_id": account_id}}
    )
    standin.take_deliveries()
    result = billing_app.test_cli_runner().invoke(args=["billing", "reconcile"])
    assert [stored(billing_app, e["id"]).status for e in events][3:] == ["processed"] * 2
    assert "premium_content" in entitlements(reader_browser)["features"]


@pytest.mark.parametrize("app_config", [{"ORPHAN_EVENT_TTL_DAYS": 0}])
def test_orphan_ttl_is_a_setting(billing_app: Flask, standin: Any, stripe_actions: Stripe) -> None:
    event = event_of("charge.dispute.created", {"id": "dp_x", "charge": "ch_x"})
    standin.add_fault("GET", "/v1/charges/*", mode="error", status=500, times=None)
    assert post_event(billing_app, standin, event).status_code == 500
    standin.clear_faults()
    with billing_app.app_context():
        row = db.session.get(StripeEvent, event["id"])
        row.status, row.stripe_customer_id = "orphaned", "cus_nobody"
        db.session.commit()
    result = billing_app.test_cli_runner().invoke(args=["billing", "reconcile"])
    assert "1 orphaned event(s) expired" in result.output


# -- disputes and refunds, every outcome -----------------------------------------------------------
def disputed(stripe_actions: Stripe, browser: FlaskClient, standin: Any) -> dict[str, Any]:
    subscribed(stripe_actions, browser)
    dispute = standin.dispute(standin.objects("charge")[0]["id"])
    stripe_actions.deliver()
    assert entitlements(browser)["reason"] == "disputed"
    return dispute


def test_a_won_dispute_gives_access_back(
    billing_app: Flask, reader_browser: FlaskClient, stripe_actions: Stripe, standin: Any
) -> None:
    dispute = disputed(stripe_actions, reader_browser, standin)
    standin.close_dispute(dispute["id"], "won")
    stripe_actions.deliver()
    assert entitlements(reader_browser)["reason"] == "active"
    assert "premium_content" in entitlements(reader_browser)["features"]


@pytest.mark.parametrize("event_type", ["charge.dispute.closed", "charge.dispute.funds_reinstated"])
def test_each_won_dispute_event_alone_gives_access_back(
    billing_app: Flask,
    reader_browser: FlaskClient,
    stripe_actions: Stripe,
    standin: Any,
    event_type: str,
) -> None:
    dispute = disputed(stripe_actions, reader_browser, standin)
    standin.close_dispute(dispute["id"], "won")
    only = [d for d in standin.take_deliveries() if d.type == event_type]
    assert len(only) == 1
    stripe_actions.deliver(only)
    assert entitlements(reader_browser)["reason"] == "active"


def test_a_lost_dispute_keeps_access_ended(
    billing_app: Flask, reader_browser: FlaskClient, stripe_actions: Stripe, standin: Any
) -> None:
    dispute = disputed(stripe_actions, reader_browser, standin)
    standin.close_dispute(dispute["id"], "lost")
    stripe_actions.deliver()
    assert entitlements(reader_browser)["reason"] == "disputed"


def test_a_closed_event_whose_payload_says_won_is_checked_with_stripe(
    billing_app: Flask, reader_browser: FlaskClient, stripe_actions: Stripe, standin: Any
) -> None:
    dispute = disputed(stripe_actions, reader_browser, standin)
    forged = {**dispute, "status": "won"}  # Stripe still has it open
    response = post_event(billing_app, standin, event_of("charge.dispute.closed", forged))
    assert response.status_code == 200
    assert entitlements(reader_browser)["reason"] == "disputed"


def refunded(stripe_actions: Stripe, browser: FlaskClient, standin: Any) -> dict[str, Any]:
    subscribed(stripe_actions, browser)
    charge = standin.objects("charge")[0]
    refund = stripe_actions.client.v1.refunds.create(params={"charge": charge["id"]})
    stripe_actions.deliver()
    assert entitlements(browser)["reason"] == "refunded"
    return refund.to_dict()


@pytest.mark.parametrize(
    ("status", "event_type"),
    [
        ("failed", "refund.failed"),
        ("failed", "refund.updated"),
        ("failed", "charge.refund.updated"),
        ("canceled", "refund.updated"),
        ("canceled", "charge.refund.updated"),
    ],
)
def test_a_failed_or_cancelled_refund_gives_access_back(
    billing_app: Flask,
    reader_browser: FlaskClient,
    stripe_actions: Stripe,
    standin: Any,
    status: str,
    event_type: str,
) -> None:
    refund = refunded(stripe_actions, reader_browser, standin)
    standin.fail_refund(refund["id"], status)
    only = [d for d in standin.take_deliveries() if d.type == event_type]
    assert len(only) == 1
    stripe_actions.deliver(only)
    assert entitlements(reader_browser)["reason"] == "active"
    assert "premium_content" in entitlements(reader_browser)["features"]


def test_a_refund_update_that_still_refunds_everything_keeps_access_ended(
    billing_app: Flask, reader_browser: FlaskClient, stripe_actions: Stripe, standin: Any
) -> None:
    refund = refunded(stripe_actions, reader_browser, standin)
    forged = {**refund, "status": "failed"}  # the payload says failed; Stripe says succeeded
    for event_type in ("refund.failed", "refund.updated", "charge.refund.updated"):
        response = post_event(billing_app, standin, event_of(event_type, forged))
        assert response.status_code == 200
    assert entitlements(reader_browser)["reason"] == "refunded"


def test_a_failed_part_of_a_full_refund_gives_access_back(
    billing_app: Flask, reader_browser: FlaskClient, stripe_actions: Stripe, standin: Any
) -> None:
    subscribed(stripe_actions, reader_browser)
    charge = standin.objects("charge")[0]
    part = stripe_actions.client.v1.refunds.create(params={"charge": charge["id"], "amount": 100})
    stripe_actions.client.v1.refunds.create(params={"charge": charge["id"]})
    stripe_actions.deliver()
    assert entitlements(reader_browser)["reason"] == "refunded"
    standin.fail_refund(part.id, "failed")  # 100 of 900 back with the merchant: 800 refunded
    stripe_actions.deliver()
    assert entitlements(reader_browser)["reason"] == "active"
