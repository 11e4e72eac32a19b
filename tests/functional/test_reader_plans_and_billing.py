"""The reader's side of billing: plans compared in words, what a downgrade will do, the account's
price, renewal and card, invoices from Stripe, and the emails that say what happened."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from paywall.billing import wording
from paywall.clock import utcnow
from paywall.devices.models import DeviceSession
from paywall.extensions import db
from tests.conftest import AuthActions, Mailbox, Stripe, body_of, html_of


@pytest.fixture
def reader_browser(billing_auth: AuthActions) -> FlaskClient:
    billing_auth.sign_up()
    return billing_auth.browser()


def subscribed(
    stripe_actions: Stripe, browser: FlaskClient, plan: str = "premium_monthly"
) -> dict[str, Any]:
    stripe_actions.deliver()
    sub = stripe_actions.subscribe(browser, plan)
    stripe_actions.deliver()
    return sub


def by_key(plans: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {p["lookup_key"]: p for p in plans}


def price_of(standin: Any, lookup_key: str) -> dict[str, Any]:
    return next(p for p in standin.objects("price") if p.get("lookup_key") == lookup_key)


def five_devices(app: Flask, auth: AuthActions) -> list[FlaskClient]:
    """Devices 0..4; Device 0 is the least recently used, then 1, 2, ..."""
    auth.sign_up()
    browsers = [auth.browser(name=f"Device {i}") for i in range(5)]
    with app.app_context():
        for row in db.session.scalars(select(DeviceSession)):
            row.last_seen_at = utcnow() - timedelta(hours=10 - int(row.device_name[-1]))
        db.session.commit()
    return browsers


def emails_of(mailbox: Mailbox, kind_subject: str) -> list[str]:
    return [body_of(m) for m in mailbox.messages if kind_subject in str(m["Subject"])]


# -- plans compared ------------------------------------------------------------------------
def test_plans_say_price_devices_and_features_in_words(billing_app: Flask) -> None:
    plans = by_key(billing_app.test_client().get("/api/v1/plans").get_json()["plans"])
    monthly, yearly, solo = plans["premium_monthly"], plans["premium_yearly"], plans["solo_monthly"]
    assert monthly["price_text"] == "$9 / month"
    assert yearly["offer_text"] == "$90 / year — 2 months free"
    assert yearly["months_free"] == 2 and monthly["months_free"] is None
    assert solo["devices_text"] == "Up to 2 devices at once"
    assert monthly["devices_text"] == "Up to 5 devices at once"
    assert monthly["features_text"] == ["Every article in full", "Breaking-news notifications"]
    assert solo["features_text"] == ["Every article in full"]
    assert monthly["description"] == "Every article, notifications, up to 5 devices at once."
    assert not any(p["current"] for p in plans.values())


def test_feature_labels_come_from_a_setting(billing_app: Flask, app_config: dict[str, Any]) -> None:
    billing_app.config["FEATURE_LABELS"] = {"notifications": "Alerts on your phone"}
    plans = by_key(billing_app.test_client().get("/api/v1/plans").get_json()["plans"])
    assert plans["premium_monthly"]["features_text"] == [
        "Premium content",  # no label: the code, tidied
        "Alerts on your phone",
    ]


def test_the_current_plan_is_marked(
    billing_app: Flask, reader_browser: FlaskClient, stripe_actions: Stripe
) -> None:
    subscribed(stripe_actions, reader_browser, "premium_yearly")
    plans = by_key(reader_browser.get("/api/v1/plans").get_json()["plans"])
    assert [k for k, p in plans.items() if p["current"]] == ["premium_yearly"]


def test_money_and_savings_in_words() -> None:
    class P:
        def __init__(self, amount: int, interval: str, count: int = 1, product: str = "p") -> None:
            self.lookup_key, self.product_id, self.name = "k", product, "Plan"
            self.amount, self.currency, self.interval = amount, "usd", interval
            self.interval_count, self.features, self.max_devices = count, [], None

    monthly, yearly = P(900, "month"), P(9000, "year")
    assert wording.money(950, "usd") == "$9.50"
    assert wording.money(1000, "jpy") == "¥1,000" or wording.money(1000, "jpy") == "1,000 JPY"
    assert wording.money(900, "chf") == "9 CHF"
    assert wording.offer_text(yearly, [monthly, yearly]) == "$90 / year — 2 months free"
    assert wording.offer_text(P(10800, "year"), [monthly]) == "$108 / year"  # no saving
    other = P(9000, "year", product="other")
    assert wording.months_free(other, [monthly, other]) is None  # another product
    assert wording.price_text(P(2500, "month", 3)) == "$25 / 3 months"


# -- before a downgrade ----------------------------------------------------------------------
def test_downgrade_preview_names_the_devices_that_will_sign_out_and_what_stops(
    billing_app: Flask, billing_auth: AuthActions, stripe_actions: Stripe
) -> None:
    browsers = five_devices(billing_app, billing_auth)
    subscribed(stripe_actions, browsers[4])
    response = browsers[4].get("/api/v1/plans/change-preview?plan=solo_monthly")
    assert response.status_code == 200, response.get_json()
    preview = response.get_json()
    assert preview["signed_out"] == ["Device 0", "Device 1", "Device 2"]
    assert preview["downgrade"] is True
    assert preview["sentences"] == [
        "3 of your 5 devices will be signed out: Device 0, Device 1, Device 2.",
        "Stops: Breaking-news notifications.",
    ]
    upgrade = browsers[4].get("/api/v1/plans/change-preview?plan=premium_yearly").get_json()
    assert upgrade["signed_out"] == [] and upgrade["downgrade"] is False


def test_preview_errors(
    billing_app: Flask, reader_browser: FlaskClient, stripe_actions: Stripe
) -> None:
    no_sub = reader_browser.get("/api/v1/plans/change-preview?plan=solo_monthly")
    assert no_sub.status_code == 409
    assert no_sub.get_json()["error"]["code"] == "no_subscription"
    subscribed(stripe_actions, reader_browser)
    unknown = reader_browser.get("/api/v1/plans/change-preview?plan=nope")
    assert unknown.status_code == 404
    assert unknown.get_json()["error"]["code"] == "unknown_plan"
    missing = reader_browser.get("/api/v1/plans/change-preview")
    assert missing.status_code == 422
    anonymous = billing_app.test_client().get("/api/v1/plans/change-preview?plan=solo_monthly")
    assert anonymous.status_code == 401


# -- after a plan change -----------------------------------------------------------------------
def test_plan_change_that_evicts_devices_emails_their_names(
    billing_app: Flask,
    billing_auth: AuthActions,
    stripe_actions: Stripe,
    standin: Any,
    mailbox: Mailbox,
) -> None:
    browsers = five_devices(billing_app, billing_auth)
    sub = subscribed(stripe_actions, browsers[4])
    mailbox.clear()
    item = sub["items"]["data"][0]["id"]
    solo = price_of(standin, "solo_monthly")["id"]
    stripe_actions.client.v1.subscriptions.update(
        sub["id"], params={"items": [{"id": item, "price": solo}]}
    )
    stripe_actions.deliver()
    stripe_actions.deliver()  # the re-delivery or a later event must not repeat the emails
    [evicted] = emails_of(mailbox, "were signed out")
    assert "Premium Solo allows 2 devices at once" in evicted
    for name in ("Device 0", "Device 1", "Device 2"):
        assert f"- {name}" in evicted
    assert "Device 3" not in evicted and "Device 4" not in evicted
    [changed] = emails_of(mailbox, "Your plan is now Premium Solo")
    assert "from Premium to Premium Solo ($5 / month)" in changed
    assert [b.get("/api/v1/account").status_code for b in browsers] == [401, 401, 401, 200, 200]


def test_cancellation_email_gives_the_end_date(
    billing_app: Flask, reader_browser: FlaskClient, stripe_actions: Stripe, mailbox: Mailbox
) -> None:
    sub = subscribed(stripe_actions, reader_browser)
    mailbox.clear()
    stripe_actions.client.v1.subscriptions.update(sub["id"], params={"cancel_at_period_end": True})
    stripe_actions.deliver()
    account = reader_browser.get("/api/v1/account").get_json()["subscription"]
    assert account["ends_at"] and account["renews_at"] is None
    [body] = emails_of(mailbox, "subscription is canceled")
    ends = wording_day(account["ends_at"])
    assert f"You keep full access until {ends}" in body


def wording_day(iso: str) -> str:
    from datetime import datetime

    from paywall.billing.emails import day

    return day(datetime.fromisoformat(iso))


def test_lapsed_subscription_says_when_it_ended(
    billing_app: Flask, reader_browser: FlaskClient, stripe_actions: Stripe, mailbox: Mailbox
) -> None:
    sub = subscribed(stripe_actions, reader_browser)
    stripe_actions.client.v1.subscriptions.cancel(sub["id"])
    stripe_actions.deliver()
    account = reader_browser.get("/api/v1/account").get_json()["subscription"]
    assert account["status"] == "canceled" and account["ended_at"]
    [body] = emails_of(mailbox, "subscription has ended")
    assert "come back at any time: https://paywall.test/plans" in body
    page = reader_browser.get("/").get_data(as_text=True)
    assert f"Your subscription ended on {wording_day(account['ended_at'])}" in page


# -- the account: price, renewal, card; invoices ------------------------------------------------
def test_account_shows_price_renewal_and_payment_method(
    billing_app: Flask, reader_browser: FlaskClient, stripe_actions: Stripe
) -> None:
    subscribed(stripe_actions, reader_browser)
    sub = reader_browser.get("/api/v1/account").get_json()["subscription"]
    assert sub["price_text"] == "$9 / month"
    assert sub["renews_at"] == sub["current_period_end"] and sub["ends_at"] is None
    card = sub["payment_method"]
    assert card["brand"] == "visa" and card["last4"] == "4242"
    assert card["exp_month"] == 12 and card["exp_year"] >= utcnow().year + 1


def test_invoices_come_from_stripe_with_hosted_page_and_pdf(
    billing_app: Flask, reader_browser: FlaskClient, stripe_actions: Stripe, mailbox: Mailbox
) -> None:
    assert reader_browser.get("/api/v1/billing/invoices").get_json() == {"invoices": []}
    subscribed(stripe_actions, reader_browser)
    [invoice] = reader_browser.get("/api/v1/billing/invoices").get_json()["invoices"]
    assert invoice["status"] == "paid" and invoice["amount"] == 900
    assert invoice["amount_text"] == "$9" and invoice["number"] and invoice["date"]
    page = requests.get(invoice["hosted_invoice_url"], timeout=5)
    assert page.status_code == 200 and invoice["number"] in page.text
    pdf = requests.get(invoice["invoice_pdf"], timeout=5)
    assert pdf.headers["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    [receipt] = emails_of(mailbox, "payment received")
    assert invoice["hosted_invoice_url"] in receipt
    anonymous = billing_app.test_client().get("/api/v1/billing/invoices")
    assert anonymous.status_code == 401


def test_invoices_when_stripe_is_down_are_503(
    billing_app: Flask, reader_browser: FlaskClient, stripe_actions: Stripe, standin: Any
) -> None:
    subscribed(stripe_actions, reader_browser)
    standin.add_fault("GET", "/v1/invoices", status=500, times=10)
    response = reader_browser.get("/api/v1/billing/invoices")
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "payment_provider_unavailable"


# -- emails about payments -----------------------------------------------------------------------
def test_failed_payment_email_links_to_the_card_page(
    billing_app: Flask, reader_browser: FlaskClient, stripe_actions: Stripe, mailbox: Mailbox
) -> None:
    sub = subscribed(stripe_actions, reader_browser)
    mailbox.clear()
    stripe_actions.standin.fail_renewal(sub["id"])
    stripe_actions.deliver()
    [body] = emails_of(mailbox, "Your payment failed")
    assert "https://paywall.test/billing/payment-method" in body
    page = reader_browser.get("/billing/payment-method")
    assert page.status_code == 200 and 'id="update-card"' in page.get_data(as_text=True)
    opened = reader_browser.post("/billing/payment-method")
    assert opened.status_code == 303
    portal = requests.get(opened.headers["Location"], timeout=5)
    assert 'id="payment-method-update"' in portal.text


def test_trial_ending_and_yearly_renewal_are_announced(
    billing_app: Flask, reader_browser: FlaskClient, stripe_actions: Stripe, mailbox: Mailbox
) -> None:
    sub = subscribed(stripe_actions, reader_browser, "premium_yearly")
    mailbox.clear()
    stripe_actions.standin.announce_renewal(sub["id"])
    stripe_actions.standin.announce_trial_end(sub["id"])
    stripe_actions.deliver()
    [renewal] = emails_of(mailbox, "subscription renews on")
    assert "for $90" in renewal and "https://paywall.test/" in renewal
    [trial] = emails_of(mailbox, "trial ends on")
    assert "$90 / year" in trial


def test_monthly_renewal_is_not_announced(
    billing_app: Flask, reader_browser: FlaskClient, stripe_actions: Stripe, mailbox: Mailbox
) -> None:
    sub = subscribed(stripe_actions, reader_browser, "premium_monthly")
    mailbox.clear()
    stripe_actions.standin.announce_renewal(sub["id"])
    stripe_actions.deliver()
    assert emails_of(mailbox, "renews on") == []


# -- every email: a plain-text and a branded HTML part ---------------------------------------
def test_emails_have_plain_text_and_branded_html_parts(
    billing_app: Flask, reader_browser: FlaskClient, stripe_actions: Stripe, mailbox: Mailbox
) -> None:
    billing_app.config.update(BRAND_NAME="The Morning Ledger", BRAND_COLOR="#0b4f6c")
    subscribed(stripe_actions, reader_browser)
    [receipt] = [m for m in mailbox.messages if "payment received" in str(m["Subject"])]
    assert receipt.get_content_type() == "multipart/alternative"
    [invoice] = reader_browser.get("/api/v1/billing/invoices").get_json()["invoices"]
    assert invoice["hosted_invoice_url"] in body_of(receipt)
    html = html_of(receipt)
    assert "The Morning Ledger" in html and "#0b4f6c" in html
    assert f'<a href="{invoice["hosted_invoice_url"]}"' in html
    assert "<script" not in html


def test_email_html_escapes_what_it_quotes() -> None:
    from paywall import create_app
    from paywall.brand import html_email

    app = create_app({"DEMO": True, "DATABASE_URL": "sqlite://"})
    with app.app_context():
        html = html_email("Hi", "Device <b>evil</b>\n\n- one\n- https://x.test/a?b=1&c=2.")
    assert "&lt;b&gt;evil&lt;/b&gt;" in html and "<b>evil" not in html
    assert '<li><a href="https://x.test/a?b=1&amp;c=2"' in html
