"""Plans, checkout, portal and webhooks against the Stripe stand-in, through the real SDK."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from itertools import permutations
from threading import Barrier
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from paywall.billing.models import Customer, StripeEvent, Subscription
from paywall.clock import utcnow
from paywall.extensions import db
from tests.conftest import PASSWORD, AuthActions, Mailbox, Stripe


@pytest.fixture
def reader_browser(billing_auth: AuthActions) -> FlaskClient:
    billing_auth.sign_up()
    return billing_auth.browser()


def entitlements(browser: FlaskClient) -> dict[str, Any]:
    return browser.get("/api/v1/account").get_json()["entitlements"]  # type: ignore[no-any-return]


def count(app: Flask, model: Any) -> int:
    with app.app_context():
        return int(db.session.scalar(select(func.count()).select_from(model)) or 0)


def local_subscription(app: Flask) -> Subscription:
    with app.app_context():
        sub = db.session.scalars(select(Subscription)).one()
        db.session.expunge(sub)
        return sub


# -- plans -------------------------------------------------------------------------------
def test_plans_come_from_stripe_prices_and_product_metadata(billing_app: Flask) -> None:
    plans = billing_app.test_client().get("/api/v1/plans").get_json()["plans"]
    by_key = {p["lookup_key"]: p for p in plans}
    assert set(by_key) == {"premium_monthly", "premium_yearly", "solo_monthly"}
    monthly = by_key["premium_monthly"]
    original = ("lookup_key", "name", "amount", "currency", "interval", "interval_count")
    assert {k: monthly[k] for k in (*original, "entitlements", "max_devices")} == {
        "lookup_key": "premium_monthly",
        "name": "Premium",
        "amount": 900,
        "currency": "usd",
        "interval": "month",
        "interval_count": 1,
        "entitlements": ["premium_content", "notifications"],
        "max_devices": 5,
    }
    assert by_key["solo_monthly"]["max_devices"] == 2


def test_demo_catalogue_command_is_safe_to_run_twice(billing_app: Flask, standin: Any) -> None:
    before = len(standin.objects("price")), len(standin.objects("product"))
    result = billing_app.test_cli_runner().invoke(args=["billing", "create-demo-catalogue"])
    assert result.exit_code == 0 and "exists" in result.output
    assert (len(standin.objects("price")), len(standin.objects("product"))) == before


def test_plan_cache_refreshes_on_product_webhooks(
    billing_app: Flask, stripe_actions: Stripe, standin: Any
) -> None:
    stripe_actions.deliver()  # the catalogue's own creation events
    product = next(p for p in standin.objects("product") if p["name"] == "Premium")
    stripe_actions.client.v1.products.update(
        product["id"], params={"metadata": {"max_devices": "3", "entitlements": "premium_content"}}
    )
    stripe_actions.deliver()
    plans = billing_app.test_client().get("/api/v1/plans").get_json()["plans"]
    monthly = next(p for p in plans if p["lookup_key"] == "premium_monthly")
    assert monthly["max_devices"] == 3 and monthly["entitlements"] == ["premium_content"]


# -- checkout ----------------------------------------------------------------------------
def test_subscribe_end_to_end_grants_entitlements_through_webhooks(
    billing_app: Flask, reader_browser: FlaskClient, stripe_actions: Stripe, standin: Any
) -> None:
    response = reader_browser.post("/api/v1/billing/checkout", json={"plan": "premium_monthly"})
    assert response.status_code == 201
    url = response.get_json()["url"]
    assert url.startswith(standin.url + "/checkout/cs_test_")
    session = standin.get(url.rsplit("/", 1)[1])
    assert session["mode"] == "subscription"
    customer = standin.get(session["customer"])
    account_id = reader_browser.get("/api/v1/account").get_json()["id"]
    assert session["client_reference_id"] == account_id
    assert customer["metadata"]["paywall_account_id"] == account_id

    standin.complete_checkout(session["id"])
    assert entitlements(reader_browser)["features"] == []  # nothing until Stripe tells us
    stripe_actions.deliver()
    account = reader_browser.get("/api/v1/account").get_json()
    assert account["entitlements"] == {
        "plan": "premium_monthly",
        "features": ["premium_content", "notifications"],
        "max_devices": 5,
        "reason": "active",
    }
    assert account["subscription"]["status"] == "active"
    assert account["subscription"]["cancel_at_period_end"] is False
    assert account["subscription"]["current_period_end"]


def test_success_redirect_grants_nothing_by_itself(
    billing_app: Flask, reader_browser: FlaskClient, standin: Any
) -> None:
    url = reader_browser.post(
        "/api/v1/billing/checkout", json={"plan": "premium_monthly"}
    ).get_json()["url"]
    session_id = url.rsplit("/", 1)[1]
    back = reader_browser.get(f"/billing/return?session_id={session_id}")
    assert back.status_code == 302
    assert entitlements(reader_browser)["features"] == []
    forged = reader_browser.get("/billing/return?session_id=cs_test_forged")
    assert forged.status_code == 302 and entitlements(reader_browser)["features"] == []
    # Once Stripe says the session is paid, the return visit asks Stripe and syncs at once.
    standin.complete_checkout(session_id)
    reader_browser.get(f"/billing/return?session_id={session_id}")
    assert "premium_content" in entitlements(reader_browser)["features"]


def test_double_clicked_checkout_creates_one_customer_and_one_session(
    billing_app: Flask, reader_browser: FlaskClient, standin: Any
) -> None:
    urls = {
        reader_browser.post(
            "/api/v1/billing/checkout", json={"plan": "premium_monthly"}
        ).get_json()["url"]
        for _ in range(3)
    }
    assert len(urls) == 1
    assert len(standin.objects("customer")) == 1
    assert len(standin.objects("checkout.session")) == 1
    assert count(billing_app, Customer) == 1


def test_checkout_refused_with_a_live_subscription(
    billing_app: Flask, reader_browser: FlaskClient, stripe_actions: Stripe
) -> None:
    stripe_actions.subscribe(reader_browser)
    stripe_actions.deliver()
    again = reader_browser.post("/api/v1/billing/checkout", json={"plan": "premium_yearly"})
    assert again.status_code == 409
    assert again.get_json()["error"]["code"] == "subscription_exists"


def test_checkout_bad_input(billing_app: Flask, reader_browser: FlaskClient) -> None:
    unknown = reader_browser.post("/api/v1/billing/checkout", json={"plan": "gold"})
    assert unknown.status_code == 404 and unknown.get_json()["error"]["code"] == "unknown_plan"
    assert reader_browser.post("/api/v1/billing/checkout", json={}).status_code == 422
    anonymous = billing_app.test_client().post(
        "/api/v1/billing/checkout", json={"plan": "premium_monthly"}
    )
    assert anonymous.status_code == 401


def test_stripe_down_during_checkout_is_503_writes_nothing_and_a_retry_works(
    billing_app: Flask, reader_browser: FlaskClient, standin: Any
) -> None:
    standin.add_fault("POST", "/v1/customers", mode="down", times=None)
    down = reader_browser.post("/api/v1/billing/checkout", json={"plan": "premium_monthly"})
    assert down.status_code == 503
    assert down.get_json()["error"]["code"] == "payment_provider_unavailable"
    assert count(billing_app, Customer) == 0
    standin.clear_faults()
    standin.add_fault("POST", "/v1/checkout/sessions", mode="error", status=500, times=None)
    failed = reader_browser.post("/api/v1/billing/checkout", json={"plan": "premium_monthly"})
    assert failed.status_code == 503
    assert count(billing_app, Customer) == 0  # the customer row rolled back with the request
    standin.clear_faults()
    ok = reader_browser.post("/api/v1/billing/checkout", json={"plan": "premium_monthly"})
    assert ok.status_code == 201
    assert len(standin.objects("customer")) == 1  # the retry reused the idempotent customer


def test_stripe_refusal_is_502(
    billing_app: Flask, reader_browser: FlaskClient, standin: Any
) -> None:
    with billing_app.app_context():
        from paywall.billing.models import Plan

        plan = db.session.scalars(select(Plan).where(Plan.lookup_key == "premium_monthly")).one()
        plan.price_id = "price_does_not_exist"
        db.session.commit()
    refused = reader_browser.post("/api/v1/billing/checkout", json={"plan": "premium_monthly"})
    assert refused.status_code == 502
    assert refused.get_json()["error"]["code"] == "payment_provider_error"


def test_portal_session(
    billing_app: Flask, reader_browser: FlaskClient, stripe_actions: Stripe, standin: Any
) -> None:
    none_yet = reader_browser.post("/api/v1/billing/portal", json={})
    assert none_yet.status_code == 404
    assert none_yet.get_json()["error"]["code"] == "no_billing_account"
    stripe_actions.subscribe(reader_browser)
    portal = reader_browser.post("/api/v1/billing/portal", json={})
    assert portal.status_code == 201
    assert portal.get_json()["url"].startswith(standin.url + "/portal/")
    evil = reader_browser.post(
        "/api/v1/billing/portal", json={"return_url": "https://evil.example/"}
    )
    assert evil.status_code == 422


# -- webhooks: signatures ------------------------------------------------------------------
def signed_event(standin: Any, event_type: str = "invoice.paid") -> bytes:
    return json.dumps(
        {
            "id": f"evt_test_{time.time_ns()}",
            "object": "event",
            "type": event_type,
            "created": int(time.time()),
            "data": {"object": {"id": "in_x", "object": "invoice"}},
        }
    ).encode()


@pytest.mark.parametrize(
    "forgery", ["stale", "tampered", "wrong_secret", "no_header", "garbage_header"]
)
def test_forged_tampered_and_stale_webhooks_are_refused_with_nothing_written(
    billing_app: Flask, standin: Any, forgery: str
) -> None:
    payload = signed_event(standin, "customer.subscription.updated")
    headers = {"Content-Type": "application/json"}
    if forgery == "stale":
        headers["Stripe-Signature"] = standin.sign(payload, timestamp=int(time.time()) - 301)
    elif forgery == "tampered":
        headers["Stripe-Signature"] = standin.sign(payload)
        payload = payload.replace(b"updated", b"deleted")
    elif forgery == "wrong_secret":
        headers["Stripe-Signature"] = standin.sign(payload, secret="whsec_wrong")
    elif forgery == "garbage_header":
        headers["Stripe-Signature"] = "t=abc,v1=zzz"
    response = billing_app.test_client().post(
        "/api/v1/stripe/webhook", data=payload, headers=headers
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_signature"
    assert count(billing_app, StripeEvent) == 0


def test_a_signature_inside_the_300_s_tolerance_is_accepted(
    billing_app: Flask, standin: Any
) -> None:
    """The other side of the stale case above (301 s old: refused)."""
    payload = signed_event(standin, "something.new")
    response = billing_app.test_client().post(
        "/api/v1/stripe/webhook",
        data=payload,
        headers={
            "Stripe-Signature": standin.sign(payload, timestamp=int(time.time()) - 280),
            "Content-Type": "application/json",
        },
    )
    assert response.status_code == 200, response.get_json()


def test_two_signatures_one_valid_and_secret_rotation(billing_app: Flask, standin: Any) -> None:
    payload = signed_event(standin, "something.new")
    good = standin.sign(payload)
    bad = standin.sign(payload, secret="whsec_old_rotated_out")
    t = good.split(",")[0]
    header = f"{t},{bad.split(',')[1]},{good.split(',')[1]}"
    ok = billing_app.test_client().post(
        "/api/v1/stripe/webhook",
        data=payload,
        headers={"Stripe-Signature": header, "Content-Type": "application/json"},
    )
    assert ok.status_code == 200 and ok.get_json()["outcome"] == "ignored"
    billing_app.config["STRIPE_WEBHOOK_SECRET"] = ["whsec_new_one", standin.webhook_secret]
    second = signed_event(standin, "something.else")
    ok2 = billing_app.test_client().post(
        "/api/v1/stripe/webhook",
        data=second,
        headers={"Stripe-Signature": standin.sign(second), "Content-Type": "application/json"},
    )
    assert ok2.status_code == 200


def test_unknown_event_types_are_recorded_and_ignored(billing_app: Flask, standin: Any) -> None:
    payload = signed_event(standin, "issuing_card.created")
    response = billing_app.test_client().post(
        "/api/v1/stripe/webhook",
        data=payload,
        headers={"Stripe-Signature": standin.sign(payload), "Content-Type": "application/json"},
    )
    assert response.get_json() == {"received": True, "outcome": "ignored"}
    with billing_app.app_context():
        assert db.session.scalars(select(StripeEvent.status)).all() == ["ignored"]


# -- webhooks: once, in any order ----------------------------------------------------------
def test_duplicate_delivery_applies_once_and_sends_one_email(
    billing_app: Flask,
    reader_browser: FlaskClient,
    stripe_actions: Stripe,
    standin: Any,
    mailbox: Mailbox,
) -> None:
    mailbox.wait_for(1)  # the verification email
    stripe_actions.subscribe(reader_browser)
    deliveries = standin.take_deliveries()
    paid = [d for d in deliveries if d.type == "invoice.paid"]
    stripe_actions.deliver(deliveries)
    outcomes = [r.get_json()["outcome"] for r in stripe_actions.deliver(paid * 3)]
    assert outcomes == ["duplicate"] * 3
    mailbox.wait_for(2)
    time.sleep(0.2)
    receipts = [m for m in mailbox.messages if m["Subject"] == "Thank you: payment received"]
    assert len(receipts) == 1
    with billing_app.app_context():
        assert (
            db.session.scalar(
                select(func.count())
                .select_from(StripeEvent)
                .where(StripeEvent.id == paid[0].event_id)
            )
            == 1
        )


def test_concurrent_duplicate_delivery_applies_once(
    billing_app: Flask,
    reader_browser: FlaskClient,
    stripe_actions: Stripe,
    standin: Any,
    mailbox: Mailbox,
) -> None:
    stripe_actions.subscribe(reader_browser)
    deliveries = standin.take_deliveries()
    paid = next(d for d in deliveries if d.type == "invoice.paid")
    stripe_actions.deliver([d for d in deliveries if d.type != "invoice.paid"])
    barrier = Barrier(4)

    def post(_: int) -> int:
        client = billing_app.test_client()
        barrier.wait()
        return client.post(
            "/api/v1/stripe/webhook",
            data=paid.payload,
            headers={
                "Stripe-Signature": paid.headers["Stripe-Signature"],
                "Content-Type": "application/json",
            },
        ).status_code

    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(post, range(4)))
    assert statuses == [200] * 4
    time.sleep(0.3)
    receipts = [m for m in mailbox.messages if m["Subject"] == "Thank you: payment received"]
    assert len(receipts) == 1


def collect_lifecycle(
    stripe_actions: Stripe, browser: FlaskClient, standin: Any, cancel: bool
) -> list[Any]:
    """The five events of a subscription's life, in Stripe's order, undelivered."""
    stripe_actions.deliver()  # catalogue events
    sub = stripe_actions.subscribe(browser)
    stripe_actions.client.v1.subscriptions.update(sub["id"], params={"cancel_at_period_end": True})
    if cancel:
        stripe_actions.client.v1.subscriptions.cancel(sub["id"])
    wanted = [
        "checkout.session.completed",
        "customer.subscription.created",
        "customer.subscription.updated",
        "invoice.paid",
    ]
    if cancel:
        wanted.append("customer.subscription.deleted")
    deliveries = standin.take_deliveries()
    return [next(d for d in deliveries if d.type == t) for t in wanted]


@pytest.mark.parametrize("cancel", [False, True], ids=["cancel_at_period_end", "deleted"])
def test_every_ordering_converges_to_stripes_state(
    billing_app: Flask,
    reader_browser: FlaskClient,
    stripe_actions: Stripe,
    standin: Any,
    cancel: bool,
) -> None:
    events = collect_lifecycle(stripe_actions, reader_browser, standin, cancel)
    truth = standin.objects("subscription")[0]
    for order in permutations(events):
        with billing_app.app_context():
            db.session.execute(Subscription.__table__.delete())
            db.session.execute(StripeEvent.__table__.delete())
            db.session.commit()
        stripe_actions.deliver(list(order))
        sub = local_subscription(billing_app)
        assert (sub.status, sub.cancel_at_period_end) == (
            truth["status"],
            truth["cancel_at_period_end"],
        ), [d.type for d in order]
        features = entitlements(reader_browser)["features"]
        assert bool(features) == (not cancel), [d.type for d in order]


# -- access rules through Stripe -------------------------------------------------------------
def subscribed(
    stripe_actions: Stripe, browser: FlaskClient, plan: str = "premium_monthly"
) -> dict[str, Any]:
    stripe_actions.deliver()
    sub = stripe_actions.subscribe(browser, plan)
    stripe_actions.deliver()
    assert "premium_content" in entitlements(browser)["features"]
    return sub


def test_past_due_keeps_access_for_the_grace_period_then_stops(
    billing_app: Flask, reader_browser: FlaskClient, stripe_actions: Stripe, standin: Any
) -> None:
    sub = subscribed(stripe_actions, reader_browser)
    standin.fail_renewal(sub["id"])
    stripe_actions.deliver()
    within = entitlements(reader_browser)
    assert within["reason"] == "past_due_grace" and "premium_content" in within["features"]
    with billing_app.app_context():
        row = db.session.get(Subscription, sub["id"])
        row.past_due_since = utcnow() - timedelta(days=7, seconds=1)
        db.session.commit()
    after = entitlements(reader_browser)
    assert after == {"plan": None, "features": [], "max_devices": 5, "reason": "past_due"}
    standin.renew(sub["id"])  # the card works again
    stripe_actions.deliver()
    assert entitlements(reader_browser)["reason"] == "active"


def test_cancel_at_period_end_keeps_access_until_the_period_ends(
    billing_app: Flask, reader_browser: FlaskClient, stripe_actions: Stripe, standin: Any
) -> None:
    sub = subscribed(stripe_actions, reader_browser)
    stripe_actions.client.v1.subscriptions.update(sub["id"], params={"cancel_at_period_end": True})
    stripe_actions.deliver()
    account = reader_browser.get("/api/v1/account").get_json()
    assert account["subscription"]["cancel_at_period_end"] is True
    assert account["entitlements"]["reason"] == "cancel_at_period_end"
    assert "premium_content" in account["entitlements"]["features"]
    standin.advance_clock(40 * 24 * 3600)
    stripe_actions.deliver()
    account = reader_browser.get("/api/v1/account").get_json()
    assert account["subscription"]["status"] == "canceled"
    assert account["entitlements"]["features"] == []


def test_full_refund_ends_access_partial_does_not(
    billing_app: Flask, reader_browser: FlaskClient, stripe_actions: Stripe, standin: Any
) -> None:
    subscribed(stripe_actions, reader_browser)
    charge = standin.objects("charge")[0]
    stripe_actions.client.v1.refunds.create(params={"charge": charge["id"], "amount": 100})
    stripe_actions.deliver()
    assert "premium_content" in entitlements(reader_browser)["features"]
    stripe_actions.client.v1.refunds.create(params={"charge": charge["id"]})
    stripe_actions.deliver()
    assert entitlements(reader_browser) == {
        "plan": None,
        "features": [],
        "max_devices": 5,
        "reason": "refunded",
    }


@pytest.mark.parametrize("app_config", [{"REFUND_ENDS_ACCESS": False}])
def test_refund_rule_is_configurable(
    billing_app: Flask, reader_browser: FlaskClient, stripe_actions: Stripe, standin: Any
) -> None:
    subscribed(stripe_actions, reader_browser)
    charge = standin.objects("charge")[0]
    stripe_actions.client.v1.refunds.create(params={"charge": charge["id"]})
    stripe_actions.deliver()
    assert "premium_content" in entitlements(reader_browser)["features"]


def test_dispute_ends_access(
    billing_app: Flask, reader_browser: FlaskClient, stripe_actions: Stripe, standin: Any
) -> None:
    subscribed(stripe_actions, reader_browser)
    standin.dispute(standin.objects("charge")[0]["id"])
    stripe_actions.deliver()
    assert entitlements(reader_browser)["reason"] == "disputed"
    assert entitlements(reader_browser)["features"] == []


def test_plan_change_lowering_max_devices_evicts_least_recently_used(
    billing_app: Flask, billing_auth: AuthActions, stripe_actions: Stripe, standin: Any
) -> None:
    billing_auth.sign_up()
    browsers = [billing_auth.browser(name=f"Device {i}") for i in range(5)]
    sub = subscribed(stripe_actions, browsers[4])
    from paywall.devices.models import DeviceSession

    with billing_app.app_context():  # Device 0 is the most recently used, then 1, 2, ...
        for i, row in enumerate(
            sorted(db.session.scalars(select(DeviceSession)), key=lambda s: s.device_name)
        ):
            row.last_seen_at = utcnow() - timedelta(hours=i)
        db.session.commit()
    solo = next(p for p in standin.objects("price") if p.get("lookup_key") == "solo_monthly")
    item = sub["items"]["data"][0]["id"]
    stripe_actions.client.v1.subscriptions.update(
        sub["id"], params={"items": [{"id": item, "price": solo["id"]}]}
    )
    stripe_actions.deliver()
    codes = [b.get("/api/v1/account").status_code for b in browsers]
    assert codes == [200, 200, 401, 401, 401]
    body = browsers[3].get("/api/v1/account").get_json()
    assert body["error"]["code"] == "session_evicted"
    # The device is told the plan changed, not that another device signed in.
    assert body["reason"] == "cap_lowered"
    assert "plan now allows fewer devices" in body["error"]["message"]
    assert entitlements(browsers[0])["max_devices"] == 2


def test_a_plans_lower_cap_applies_at_login(
    billing_app: Flask, billing_auth: AuthActions, stripe_actions: Stripe
) -> None:
    """A Solo subscriber (2 devices) is refused a third login, below the default cap of 5."""
    billing_auth.sign_up()
    first = billing_auth.browser(name="Laptop")
    subscribed(stripe_actions, first, "solo_monthly")
    assert entitlements(first)["max_devices"] == 2
    billing_auth.browser(name="Phone")
    _b, third = billing_auth.log_in(device_name="Tablet")
    assert third.status_code == 409
    body = third.get_json()
    assert body["error"]["code"] == "device_limit_reached", body
    assert body["limit"] == 2
    assert sorted(d["device_name"] for d in body["devices"]) == ["Laptop", "Phone"]


def test_customer_deleted_in_the_dashboard_ends_access(
    billing_app: Flask, reader_browser: FlaskClient, stripe_actions: Stripe, standin: Any
) -> None:
    sub = subscribed(stripe_actions, reader_browser)
    stripe_actions.client.v1.customers.delete(sub["customer"])
    stripe_actions.deliver()
    assert entitlements(reader_browser)["features"] == []


# -- failures, replay, reconcile --------------------------------------------------------------
def test_webhook_error_is_5xx_recorded_and_the_redelivery_applies_once(
    billing_app: Flask, reader_browser: FlaskClient, stripe_actions: Stripe, standin: Any
) -> None:
    stripe_actions.deliver()
    stripe_actions.subscribe(reader_browser)
    deliveries = standin.take_deliveries()
    standin.add_fault("GET", "/v1/subscriptions/*", mode="error", status=500, times=None)
    client = billing_app.test_client()
    first = next(d for d in deliveries if d.type == "customer.subscription.created")
    failed = client.post(
        "/api/v1/stripe/webhook",
        data=first.payload,
        headers={
            "Stripe-Signature": first.headers["Stripe-Signature"],
            "Content-Type": "application/json",
        },
    )
    assert failed.status_code == 500
    assert failed.get_json()["error"]["code"] == "webhook_failed"
    with billing_app.app_context():
        row = db.session.get(StripeEvent, first.event_id)
        assert row is not None and row.status == "failed" and row.error
    assert count(billing_app, Subscription) == 0
    standin.clear_faults()
    stripe_actions.deliver(deliveries)
    assert "premium_content" in entitlements(reader_browser)["features"]
    with billing_app.app_context():
        assert db.session.get(StripeEvent, first.event_id).status == "processed"


def test_replay_command_applies_failed_events(
    billing_app: Flask, reader_browser: FlaskClient, stripe_actions: Stripe, standin: Any
) -> None:
    stripe_actions.deliver()
    stripe_actions.subscribe(reader_browser)
    deliveries = standin.take_deliveries()
    standin.add_fault("GET", "/v1/subscriptions/*", mode="down", times=None)
    client = billing_app.test_client()
    for d in deliveries:
        client.post(
            "/api/v1/stripe/webhook",
            data=d.payload,
            headers={
                "Stripe-Signature": d.headers["Stripe-Signature"],
                "Content-Type": "application/json",
            },
        )
    assert entitlements(reader_browser)["features"] == []
    standin.clear_faults()
    result = billing_app.test_cli_runner().invoke(args=["billing", "replay-events"])
    assert result.exit_code == 0, result.output
    assert "processed" in result.output
    assert "premium_content" in entitlements(reader_browser)["features"]


def test_reconcile_repairs_a_missed_webhook(
    billing_app: Flask, reader_browser: FlaskClient, stripe_actions: Stripe, standin: Any
) -> None:
    sub = subscribed(stripe_actions, reader_browser)
    stripe_actions.client.v1.subscriptions.cancel(sub["id"])
    standin.take_deliveries()  # lost: the service was down
    assert "premium_content" in entitlements(reader_browser)["features"]
    result = billing_app.test_cli_runner().invoke(args=["billing", "reconcile"])
    assert result.exit_code == 0, result.output
    assert f"{sub['id']}: active" in result.output and "-> canceled" in result.output
    assert entitlements(reader_browser)["features"] == []
    again = billing_app.test_cli_runner().invoke(args=["billing", "reconcile"])
    assert "0 subscription(s) corrected" in again.output


def test_events_for_unknown_customers_are_kept_and_applied_when_reconcile_finds_the_owner(
    billing_app: Flask, reader_browser: FlaskClient, stripe_actions: Stripe, standin: Any
) -> None:
    stripe_actions.deliver()
    # Finance creates a customer and subscription by hand in the dashboard: no owner tag.
    customer = stripe_actions.client.v1.customers.create(params={"email": "reader@example.com"})
    monthly = next(p for p in standin.objects("price") if p.get("lookup_key") == "premium_monthly")
    session = stripe_actions.client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "customer": customer.id,
            "success_url": "https://x.test/ok",
            "line_items": [{"price": monthly["id"], "quantity": 1}],
        }
    )
    standin.complete_checkout(session.id)
    outcomes = {r.get_json()["outcome"] for r in stripe_actions.deliver()}
    assert "orphaned" in outcomes
    assert entitlements(reader_browser)["features"] == []
    account_id = reader_browser.get("/api/v1/account").get_json()["id"]
    stripe_actions.client.v1.customers.update(
        customer.id, params={"metadata": {"paywall_account_id": account_id}}
    )
    standin.take_deliveries()
    result = billing_app.test_cli_runner().invoke(args=["billing", "reconcile"])
    assert result.exit_code == 0, result.output
    assert "applied" in result.output
    assert "premium_content" in entitlements(reader_browser)["features"]


def test_pages_subscribe_flow_redirects_to_checkout(
    billing_app: Flask, reader_browser: FlaskClient, standin: Any
) -> None:
    home = reader_browser.get("/")
    assert b"subscribe-premium_monthly" in home.data
    go = reader_browser.post("/billing/subscribe", data={"plan": "premium_monthly"})
    assert go.status_code == 303 and "/checkout/cs_test_" in go.headers["Location"]


def test_login_with_password_unchanged_after_billing(
    billing_app: Flask, billing_auth: AuthActions, stripe_actions: Stripe
) -> None:
    """Checkout, the customer Stripe creates and the webhooks that follow never touch the
    reader's credentials: the same password still signs in, a wrong one still does not."""
    from paywall.accounts.models import Account

    billing_auth.sign_up("x@example.com")
    browser = billing_auth.browser("x@example.com")

    def password_hash() -> str:
        with billing_app.app_context():
            return str(
                db.session.scalar(
                    select(Account.password_hash).where(Account.email == "x@example.com")
                )
            )

    before = password_hash()
    subscribed(stripe_actions, browser)
    assert password_hash() == before
    _b, response = billing_auth.log_in("x@example.com", PASSWORD)
    assert response.status_code == 201
    assert "premium_content" in entitlements(_b)["features"]
    _b, wrong = billing_auth.log_in("x@example.com", PASSWORD + "!")
    assert wrong.status_code == 401


@pytest.mark.parametrize("action", ["mark_unpaid", "pause"])
def test_unpaid_and_paused_subscriptions_end_access(
    billing_app: Flask,
    reader_browser: FlaskClient,
    stripe_actions: Stripe,
    standin: Any,
    action: str,
) -> None:
    """The access table's unpaid and paused rows, through Stripe's own events."""
    sub = subscribed(stripe_actions, reader_browser)
    getattr(standin, action)(sub["id"])
    stripe_actions.deliver()
    got = entitlements(reader_browser)
    assert got["features"] == []
    assert got["reason"] == {"mark_unpaid": "unpaid", "pause": "paused"}[action]


def test_non_utf8_webhook_body_is_a_400_not_a_crash(billing_app: Flask, standin: Any) -> None:
    payload = b"\xff\xfe{not json"
    response = billing_app.test_client().post(
        "/api/v1/stripe/webhook",
        data=payload,
        headers={"Stripe-Signature": "t=1,v1=00", "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_signature"
    assert count(billing_app, StripeEvent) == 0
