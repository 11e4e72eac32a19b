"""Self-service: change email, sign out everywhere else, delete the account, export the data;
honest pages for bad links, lock-outs and signed-out devices."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from paywall.accounts.models import Account
from paywall.billing.models import Customer, StripeEvent, Subscription
from paywall.devices.models import DeviceSession
from paywall.extensions import db
from tests.conftest import PASSWORD, AuthActions, Mailbox, Stripe, body_of, link_from

NEW = "new-address@example.com"


def page(browser: FlaskClient, path: str, **kwargs: Any) -> tuple[int, str]:
    response = browser.get(path, **kwargs)
    return response.status_code, response.get_data(as_text=True)


# -- change of email ---------------------------------------------------------------------------
def test_email_change_is_confirmed_by_the_new_address_and_the_old_one_is_told(
    app: Flask, auth: AuthActions, reader: str, mailbox: Mailbox
) -> None:
    browser = auth.browser()
    mailbox.wait_for(1)
    mailbox.clear()
    response = browser.post("/api/v1/account/email", json={"new_email": NEW, "password": PASSWORD})
    assert response.status_code == 202, response.get_json()
    mailbox.wait_for(2)
    [to_old] = mailbox.to(reader)
    assert NEW in body_of(to_old) and "/forgot-password" in body_of(to_old)
    [to_new] = mailbox.to(NEW)
    token = link_from(to_new, "/confirm-email")
    # Nothing changed yet: the old address still signs in.
    assert browser.get("/api/v1/account").get_json()["email"] == reader
    status, html = page(app.test_client(), f"/confirm-email?token={token}")
    assert status == 200 and NEW in html and 'id="confirm-email"' in html
    assert browser.get("/api/v1/account").get_json()["email"] == reader  # GET is inert
    confirmed = app.test_client().post("/confirm-email", data={"token": token})
    assert confirmed.status_code == 200
    assert browser.get("/api/v1/account").get_json()["email"] == NEW
    mailbox.wait_for(3)
    assert any("now signs in with" in body_of(m) for m in mailbox.to(reader))
    _b, old_login = auth.log_in(reader)
    assert old_login.status_code == 401
    _b, new_login = auth.log_in(NEW)
    assert new_login.status_code == 201
    # The link works once.
    status, html = page(app.test_client(), f"/confirm-email?token={token}")
    assert status == 400 and "already used" in html


def test_email_change_errors(app: Flask, auth: AuthActions, reader: str, mailbox: Mailbox) -> None:
    browser = auth.browser()
    wrong = browser.post("/api/v1/account/email", json={"new_email": NEW, "password": "nope"})
    assert wrong.status_code == 422
    assert wrong.get_json()["error"]["fields"] == {"password": ["Not correct."]}
    bad = browser.post("/api/v1/account/email", json={"new_email": "not-an-email", "password": "x"})
    assert bad.status_code == 422 and "new_email" in bad.get_json()["error"]["fields"]
    same = browser.post("/api/v1/account/email", json={"new_email": reader, "password": PASSWORD})
    assert same.status_code == 422
    missing = browser.post("/api/v1/account/email", json={})
    assert missing.status_code == 422
    assert app.test_client().post("/api/v1/account/email", json={}).status_code == 401


def test_email_change_to_a_taken_address_looks_the_same_and_tells_that_address(
    app: Flask, auth: AuthActions, reader: str, mailbox: Mailbox
) -> None:
    auth.sign_up(NEW)
    browser = auth.browser()
    mailbox.wait_for(2)
    mailbox.clear()
    response = browser.post("/api/v1/account/email", json={"new_email": NEW, "password": PASSWORD})
    assert response.status_code == 202
    mailbox.wait_for(2)
    [to_new] = mailbox.to(NEW)
    assert "already has one" in body_of(to_new) and "/confirm-email" not in body_of(to_new)


# -- sign out everywhere else ------------------------------------------------------------------
def test_sign_out_every_other_device(app: Flask, auth: AuthActions, reader: str) -> None:
    here = auth.browser(name="Laptop")
    others = [auth.browser(name=name) for name in ("Phone", "Tablet")]
    response = here.delete("/api/v1/sessions")
    assert response.status_code == 200 and response.get_json() == {"signed_out": 2}
    assert here.get("/api/v1/account").status_code == 200
    for other in others:
        answer = other.get("/api/v1/account")
        assert answer.status_code == 401
        assert answer.get_json()["error"]["code"] == "session_revoked"
        assert answer.get_json()["reason"] == "revoked"
        assert "from another device" in answer.get_json()["error"]["message"]
    assert here.delete("/api/v1/sessions").get_json() == {"signed_out": 0}


def test_a_device_signed_out_by_a_password_change_is_told_why(
    app: Flask, auth: AuthActions, reader: str
) -> None:
    here, phone = auth.browser(name="Laptop"), auth.browser(name="Phone")
    changed = here.post(
        "/api/v1/account/password",
        json={"current_password": PASSWORD, "new_password": "a different long passphrase"},
    )
    assert changed.status_code == 200
    answer = phone.get("/api/v1/account")
    assert answer.get_json()["reason"] == "password_changed"
    assert "password was changed" in answer.get_json()["error"]["message"]
    # The service's own pages send the device to the login page, which says why.
    redirect = phone.get("/devices")
    assert redirect.status_code == 302 and "reason=password_changed" in redirect.headers["Location"]
    status, html = page(phone, redirect.headers["Location"])
    assert "because your password was changed" in html


# -- delete and export -------------------------------------------------------------------------
@pytest.fixture
def subscriber(billing_auth: AuthActions, stripe_actions: Stripe) -> FlaskClient:
    billing_auth.sign_up()
    browser = billing_auth.browser()
    stripe_actions.deliver()
    stripe_actions.subscribe(browser)
    stripe_actions.deliver()
    return browser


def test_export_is_the_readers_data_as_json(
    billing_app: Flask, subscriber: FlaskClient, mailbox: Mailbox
) -> None:
    response = subscriber.get("/api/v1/account/export")
    assert response.status_code == 200
    assert "attachment" in response.headers["Content-Disposition"]
    data = response.get_json()
    assert data["account"]["email"] == "reader@example.com"
    assert [d["device_name"] for d in data["devices"]] == ["Laptop"]
    assert [s["plan"] for s in data["subscriptions"]] == ["premium_monthly"]
    assert data["invoices"][0]["status"] == "paid"
    assert any(e["kind"] == "verify_email" for e in data["emails"])
    download = subscriber.get("/account/export")
    assert json.loads(download.get_data(as_text=True))["account"] == data["account"]


def test_delete_account_cancels_billing_erases_data_keeps_finance_records(
    billing_app: Flask,
    billing_auth: AuthActions,
    subscriber: FlaskClient,
    stripe_actions: Stripe,
    standin: Any,
    mailbox: Mailbox,
) -> None:
    phone = billing_auth.browser(name="Phone")
    wrong = subscriber.delete("/api/v1/account", json={"password": "not it"})
    assert wrong.status_code == 422
    assert subscriber.get("/api/v1/account").status_code == 200  # nothing happened
    mailbox.clear()
    response = subscriber.delete("/api/v1/account", json={"password": PASSWORD})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "deleted"
    assert "paywall_session=;" in response.headers["Set-Cookie"]
    assert subscriber.get("/api/v1/account").status_code == 401  # its cookie was dropped
    answer = phone.get("/api/v1/account")
    assert answer.status_code == 401 and answer.get_json()["reason"] == "account_deleted"
    [stripe_sub] = standin.objects("subscription")
    assert stripe_sub["status"] == "canceled"
    stripe_actions.deliver()  # Stripe's events about the cancellation are applied, not lost
    with billing_app.app_context():
        account = db.session.scalars(select(Account)).one()
        assert account.deleted_at is not None
        assert "reader@example.com" not in account.email
        assert db.session.scalars(select(Customer)).one().stripe_customer_id  # finance keeps
        assert db.session.scalars(select(Subscription)).one().status == "canceled"
        assert db.session.scalars(select(StripeEvent)).first() is not None
        devices = db.session.scalars(select(DeviceSession)).all()
        assert all(d.ended_at is not None for d in devices)
    _b, login = billing_auth.log_in()
    assert login.status_code == 401
    [goodbye] = mailbox.wait_for(1)
    assert goodbye["To"] == "reader@example.com" and "deleted" in goodbye["Subject"]
    # The address is free again.
    billing_auth.sign_up()


def test_delete_account_when_stripe_is_down_changes_nothing(
    billing_app: Flask, subscriber: FlaskClient, standin: Any
) -> None:
    standin.add_fault("DELETE", "/v1/subscriptions/*", status=500, times=10)
    response = subscriber.delete("/api/v1/account", json={"password": PASSWORD})
    assert response.status_code == 503
    assert subscriber.get("/api/v1/account").get_json()["email"] == "reader@example.com"


# -- honest pages ------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/reset-password", "/verify-email", "/confirm-email"])
def test_a_garbage_link_says_so_before_asking_for_anything(app: Flask, path: str) -> None:
    status, html = page(app.test_client(), f"{path}?token=garbage")
    assert status == 400
    assert "This link is not valid" in html
    assert 'type="password"' not in html and 'id="confirm' not in html


def test_a_used_reset_link_says_so_before_asking_for_a_password(
    app: Flask, auth: AuthActions, reader: str, mailbox: Mailbox
) -> None:
    client = app.test_client()
    client.post("/forgot-password", data={"email": reader})
    token = link_from(mailbox.wait_for(2)[-1], "/reset-password")
    status, html = page(client, f"/reset-password?token={token}")
    assert status == 200 and 'type="password"' in html
    done = client.post("/reset-password", data={"token": token, "password": "another passphrase!"})
    assert done.status_code == 200
    status, html = page(client, f"/reset-password?token={token}")
    assert status == 400 and "already used" in html and 'type="password"' not in html


def test_an_expired_verify_link_says_so(
    app: Flask, auth: AuthActions, reader: str, mailbox: Mailbox
) -> None:
    token = link_from(mailbox.wait_for(1)[0], "/verify-email")
    app.config["VERIFY_TOKEN_MAX_AGE"] = -1
    status, html = page(app.test_client(), f"/verify-email?token={token}")
    assert status == 400 and "This link has expired" in html


def test_verification_returns_to_where_the_reader_was(app: Flask, mailbox: Mailbox) -> None:
    client = app.test_client()
    article = "https://news.test/news/some-story"
    client.post(
        f"/signup?next={article}", data={"email": "reader@example.com", "password": PASSWORD}
    )
    message = mailbox.wait_for(1)[0]
    assert "next=https" in body_of(message)
    token = link_from(message, "/verify-email").split("&")[0]
    form = client.get(f"/verify-email?token={token}&next={article}").get_data(as_text=True)
    assert f'name="next" value="{article}"' in form
    done = client.post("/verify-email", data={"token": token, "next": article})
    assert f'href="{article}"' in done.get_data(as_text=True)
    evil = "https://evil.example/"
    client2 = app.test_client()
    client2.post(f"/signup?next={evil}", data={"email": "b@example.com", "password": PASSWORD})
    assert "evil.example" not in body_of(mailbox.wait_for(2)[1])


class TestLockOut:
    @pytest.fixture
    def app_config(self) -> dict[str, Any]:
        return {"RATELIMIT_ENABLED": True, "LOGIN_LIMIT_PER_ACCOUNT": "2 per 15 minutes"}

    def test_the_lock_out_page_says_how_long_and_links_to_a_reset(
        self, app: Flask, auth: AuthActions, reader: str
    ) -> None:
        client = app.test_client()
        for _ in range(2):
            client.post("/login", data={"email": reader, "password": "wrong password"})
        locked = client.post("/login", data={"email": reader, "password": PASSWORD})
        assert locked.status_code == 429
        html = locked.get_data(as_text=True)
        minutes = -(-int(locked.headers["Retry-After"]) // 60)
        assert f"paused for {minutes} minute" in html and 1 <= minutes <= 15
        assert 'href="/forgot-password"' in html


def test_form_errors_are_tied_to_their_fields_with_a_summary(app: Flask) -> None:
    response = app.test_client().post("/signup", data={"email": "nope", "password": "short"})
    html = response.get_data(as_text=True)
    assert 'class="error-summary" role="alert"' in html
    assert '<a href="#email">' in html and '<a href="#password">' in html
    assert 'id="email" name="email" type="email" value="nope" required autocomplete="email"' in html
    assert 'aria-invalid="true" aria-describedby="email-error-1"' in html
    assert 'aria-describedby="password-hint password-error-1"' in html
    assert "<title>Error: Sign up" in html


# -- emails about sign-ins ---------------------------------------------------------------------
def test_a_sign_in_from_a_new_device_is_emailed_a_known_one_is_not(
    app: Flask, auth: AuthActions, reader: str, mailbox: Mailbox
) -> None:
    auth.browser(name="Laptop")  # the first sign-in: nothing to compare with
    auth.browser(name="Laptop")  # the same device again
    mailbox.wait_for(1)
    auth.browser(name="Phone")
    mailbox.wait_for(2)
    notices = [m for m in mailbox.to(reader) if "New sign-in" in str(m["Subject"])]
    assert [m["Subject"] for m in notices] == ["New sign-in on Phone"]
    assert "https://paywall.test/devices" in body_of(notices[0])


def test_a_device_pushed_out_at_the_limit_is_named_in_an_email(
    app: Flask, auth: AuthActions, reader: str, mailbox: Mailbox
) -> None:
    app.config["MAX_DEVICES"] = 1
    app.config["DEVICE_POLICY"] = "evict_lru"
    auth.browser(name="Laptop")
    auth.browser(name="Phone")
    mailbox.wait_for(3)
    [evicted] = [m for m in mailbox.to(reader) if "was signed out" in str(m["Subject"])]
    assert evicted["Subject"] == "Laptop was signed out"
    assert "because Phone signed in" in body_of(evicted)


# -- notification preferences on the account pages ---------------------------------------------
def test_notification_preferences_page_saves_topics_and_refuses_alerts_without_the_plan(
    app: Flask, auth: AuthActions, reader: str
) -> None:
    browser = auth.browser()
    assert 'id="notifications-link"' in browser.get("/").get_data(as_text=True)
    status, html = page(browser, "/account/notifications")
    assert status == 200 and 'value="politics" checked' in html
    assert 'id="notifications-need-plan"' in html
    saved = browser.post("/account/notifications", data={"topics": ["world", "sport"]})
    assert saved.status_code == 302
    prefs = browser.get("/api/v1/notifications/preferences").get_json()
    assert prefs == {"email_alerts": False, "topics": ["world", "sport"]}
    refused = browser.post(
        "/account/notifications", data={"topics": ["world"], "email_alerts": "on"}
    )
    assert refused.status_code == 422
    assert "come with a plan" in refused.get_data(as_text=True)
    assert browser.get("/api/v1/notifications/preferences").get_json()["topics"] == [
        "world",
        "sport",
    ]
