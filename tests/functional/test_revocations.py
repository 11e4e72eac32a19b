"""Revocations: every change that ends a device session or lowers access is recorded (same
transaction), listed on the publisher-only feed, long-polled, and refused by the service's own
online check; the sweep records what ends by the clock; the purge drops what no token needs."""

from __future__ import annotations

import secrets
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from paywall.clock import utcnow
from paywall.devices.models import DeviceSession
from paywall.entitlements import revocations
from paywall.entitlements.revocations import Revocation, revocation_state
from paywall.extensions import db
from tests.conftest import PASSWORD, AuthActions, Mailbox, Stripe, link_from

PUBLISHER_KEY = secrets.token_urlsafe(32)
FEED = "/api/v1/entitlements/revocations"


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"PUBLISHER_API_KEYS": [PUBLISHER_KEY]}


def feed(app: Flask, after: str | None = None, wait: float = 0, key: str = PUBLISHER_KEY) -> Any:
    query = {"wait": wait} | ({"after": after} if after is not None else {})
    return app.test_client().get(
        FEED, query_string=query, headers={"Authorization": f"Bearer {key}"}
    )


def listed(app: Flask) -> list[dict[str, Any]]:
    answer = feed(app)
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()["revocations"]  # type: ignore[no-any-return]


def stored(app: Flask) -> list[tuple[str, str | None, str]]:
    with app.app_context():
        return [
            (r.account_id, r.session_id, r.reason)
            for r in db.session.scalars(select(Revocation).order_by(Revocation.id))
        ]


def session_ids(app: Flask) -> dict[str, str]:
    """device name -> session id"""
    with app.app_context():
        return {s.device_name: s.id for s in db.session.scalars(select(DeviceSession))}


def token_claims(browser: FlaskClient) -> tuple[str, dict[str, Any]]:
    answer = browser.post("/api/v1/entitlements/token")
    assert answer.status_code == 200, answer.get_json()
    token = answer.get_json()["token"]
    verified = browser.post(
        "/api/v1/entitlements/verify",
        json={"token": token},
        headers={"Authorization": f"Bearer {PUBLISHER_KEY}"},
    ).get_json()
    assert verified["valid"] is True
    return token, verified["claims"]


def verify(app: Flask, token: str) -> dict[str, Any]:
    return (
        app.test_client()
        .post(  # type: ignore[no-any-return]
            "/api/v1/entitlements/verify",
            json={"token": token},
            headers={"Authorization": f"Bearer {PUBLISHER_KEY}"},
        )
        .get_json()
    )


def ended_sids(app: Flask) -> dict[str, str]:
    return {e["sid"]: e["reason"] for e in listed(app) if e["event"] == "session.ended"}


# -- the feed's door ----------------------------------------------------------------------
def test_feed_needs_a_publisher_key_and_a_reader_gets_401(
    app: Flask, auth: AuthActions, reader: str
) -> None:
    _browser, login = auth.log_in()
    reader_value = login.get_json()["token"]
    for key in (reader_value, "not-a-key", ""):
        answer = feed(app, key=key)
        assert answer.status_code == 401
        assert answer.get_json()["error"]["code"] == "publisher_key_required"
    assert app.test_client().get(FEED).status_code == 401


def test_bad_cursor_and_wait_are_json_errors(app: Flask) -> None:
    for cursor in ("abc", "5.3", "-1", "1." + "9" * 30):
        answer = feed(app, after=cursor)
        assert answer.status_code == 400, cursor
        assert answer.get_json()["error"]["code"] == "invalid_cursor"
    for wait in (31, -1, "soon"):
        answer = feed(app, wait=wait)  # type: ignore[arg-type]
        assert answer.status_code == 422
        assert "error" in answer.get_json()


# -- every way a session ends ---------------------------------------------------------------
def test_sign_out_is_listed_and_the_token_is_refused_at_once(
    app: Flask, auth: AuthActions, reader: str
) -> None:
    laptop = auth.browser(name="Laptop")
    token, claims = token_claims(laptop)
    assert listed(app) == []
    assert laptop.delete("/api/v1/sessions/current").status_code == 204
    [entry] = listed(app)
    assert entry["event"] == "session.ended"
    assert (entry["sub"], entry["sid"], entry["reason"]) == (
        claims["sub"],
        claims["sid"],
        "signed_out",
    )
    assert entry["not_before"] >= claims["iat"]
    assert verify(app, token) == {"valid": False, "reason": "revoked"}
    with app.app_context():
        state = revocation_state()
        assert state.is_revoked(claims["sub"], claims["sid"], claims["iat"]) == "signed_out"
        assert state.is_revoked(claims["sub"], "another-session", claims["iat"]) is None


def test_remote_sign_out_and_sign_out_everywhere_else(
    app: Flask, auth: AuthActions, reader: str
) -> None:
    laptop, phone, tablet, tv = (auth.browser(name=n) for n in ("Laptop", "Phone", "Tablet", "TV"))
    ids = session_ids(app)
    assert laptop.delete(f"/api/v1/sessions/{ids['Phone']}").status_code == 204
    assert ended_sids(app) == {ids["Phone"]: "revoked"}
    assert laptop.delete("/api/v1/sessions").status_code == 200
    assert ended_sids(app) == {
        ids["Phone"]: "revoked",
        ids["Tablet"]: "revoked",
        ids["TV"]: "revoked",
    }
    assert laptop.get("/api/v1/account").status_code == 200
    token, claims = token_claims(laptop)  # the kept device reads on
    assert verify(app, token)["valid"] is True
    del phone, tablet, tv


@pytest.mark.parametrize(
    "app_config",
    [{"PUBLISHER_API_KEYS": [PUBLISHER_KEY], "DEVICE_POLICY": "evict_lru", "MAX_DEVICES": 2}],
)
def test_eviction_at_the_cap(app: Flask, auth: AuthActions, reader: str) -> None:
    first = auth.browser(name="First")
    token, _claims = token_claims(first)
    with app.app_context():  # First is the least recently used
        row = db.session.scalars(select(DeviceSession)).one()
        row.last_seen_at = utcnow() - timedelta(minutes=5)
        db.session.commit()
    auth.browser(name="Second")
    auth.browser(name="Third")
    assert ended_sids(app) == {session_ids(app)["First"]: "evicted"}
    assert verify(app, token) == {"valid": False, "reason": "revoked"}


def test_password_change_ends_the_others_and_reset_ends_all(
    app: Flask, client: FlaskClient, auth: AuthActions, reader: str, mailbox: Mailbox
) -> None:
    laptop = auth.browser(name="Laptop")
    auth.browser(name="Phone")
    ids = session_ids(app)
    changed = laptop.post(
        "/api/v1/account/password",
        json={"current_password": PASSWORD, "new_password": "brand new pass 7"},
    )
    assert changed.status_code == 200
    assert ended_sids(app) == {ids["Phone"]: "password_changed"}
    mailbox.clear()
    assert client.post("/api/v1/password-resets", json={"email": reader}).status_code == 202
    link = link_from(mailbox.wait_for(1)[0], "/reset-password")
    done = client.post(
        "/api/v1/password-resets/confirm", json={"token": link, "password": "another pass 4242"}
    )
    assert done.status_code == 200
    assert ended_sids(app) == {ids["Phone"]: "password_changed", ids["Laptop"]: "password_changed"}


def test_account_deletion_ends_every_session(app: Flask, auth: AuthActions, reader: str) -> None:
    laptop = auth.browser(name="Laptop")
    auth.browser(name="Phone")
    ids = session_ids(app)
    answer = laptop.delete("/api/v1/account", json={"password": PASSWORD})
    assert answer.status_code == 200, answer.get_json()
    assert ended_sids(app) == {ids["Laptop"]: "account_deleted", ids["Phone"]: "account_deleted"}


@pytest.mark.parametrize(
    "app_config",
    [
        {
            "PUBLISHER_API_KEYS": [PUBLISHER_KEY],
            "SESSION_ROTATION_INTERVAL": 300,
            "SESSION_ROTATION_GRACE": 30,
        }
    ],
)
def test_a_reused_session_value_is_a_session_revocation(
    app: Flask, auth: AuthActions, reader: str
) -> None:
    from tests.functional.test_session_rotation import advance

    old = auth.log_in()[1].get_json()["token"]
    bare = app.test_client(use_cookies=False)
    advance(app, 301)
    new = bare.get("/api/v1/account", headers={"Authorization": f"Bearer {old}"}).headers[
        "Paywall-Session-Token"
    ]
    assert (
        bare.get("/api/v1/account", headers={"Authorization": f"Bearer {new}"}).status_code == 200
    )
    advance(app, 31)
    reused = bare.get("/api/v1/account", headers={"Authorization": f"Bearer {old}"})
    assert reused.get_json()["error"]["code"] == "session_reused"
    assert list(ended_sids(app).values()) == ["session_reused"]


def test_a_rolled_back_change_records_nothing(app: Flask, auth: AuthActions, reader: str) -> None:
    auth.browser(name="Laptop")
    with app.app_context():
        from paywall.devices.services import device_service

        row = db.session.scalars(select(DeviceSession)).one()
        device_service().sign_out(row.account_id, row.id, current_id=row.id)
        db.session.rollback()
    assert stored(app) == [] and listed(app) == []


# -- access going down ------------------------------------------------------------------------
def premium_browser(billing_auth: AuthActions, stripe_actions: Stripe) -> FlaskClient:
    billing_auth.sign_up()
    browser = billing_auth.browser()
    stripe_actions.deliver()
    stripe_actions.subscribe(browser, "premium_monthly")
    stripe_actions.deliver()
    return browser


def changed(app: Flask) -> list[str]:
    return [e["reason"] for e in listed(app) if e["event"] == "entitlement.changed"]


def test_cancel_now_is_an_entitlement_change(
    billing_app: Flask, billing_auth: AuthActions, stripe_actions: Stripe, standin: Any
) -> None:
    browser = premium_browser(billing_auth, stripe_actions)
    token, claims = token_claims(browser)
    assert changed(billing_app) == []  # subscribing gains access: nothing to revoke
    stripe_actions.client.v1.subscriptions.cancel(standin.objects("subscription")[0]["id"])
    stripe_actions.deliver()
    assert changed(billing_app) == ["canceled"]
    [entry] = listed(billing_app)
    assert entry["sub"] == claims["sub"] and "sid" not in entry
    assert verify(billing_app, token) == {"valid": False, "reason": "revoked"}
    with billing_app.app_context():
        state = revocation_state()
        assert state.is_revoked(claims["sub"], claims["sid"], claims["iat"]) == "canceled"
        assert state.is_revoked(claims["sub"], claims["sid"], entry["not_before"]) is None


def test_refund_and_dispute_are_entitlement_changes(
    billing_app: Flask, billing_auth: AuthActions, stripe_actions: Stripe, standin: Any
) -> None:
    premium_browser(billing_auth, stripe_actions)
    charge = standin.objects("charge")[0]
    stripe_actions.client.v1.refunds.create(params={"charge": charge["id"], "amount": 100})
    stripe_actions.deliver()
    assert changed(billing_app) == []  # a partial refund keeps access
    stripe_actions.client.v1.refunds.create(params={"charge": charge["id"]})
    stripe_actions.deliver()
    assert changed(billing_app) == ["refunded"]


def test_dispute_is_an_entitlement_change(
    billing_app: Flask, billing_auth: AuthActions, stripe_actions: Stripe, standin: Any
) -> None:
    premium_browser(billing_auth, stripe_actions)
    standin.dispute(standin.objects("charge")[0]["id"])
    stripe_actions.deliver()
    assert changed(billing_app) == ["disputed"]


def test_downgrade_loses_a_feature_and_evicts(
    billing_app: Flask, billing_auth: AuthActions, stripe_actions: Stripe, standin: Any
) -> None:
    browser = premium_browser(billing_auth, stripe_actions)
    for i in range(3):
        billing_auth.browser(name=f"Extra {i}")
    sub = standin.objects("subscription")[0]
    solo = next(p for p in standin.objects("price") if p.get("lookup_key") == "solo_monthly")
    stripe_actions.client.v1.subscriptions.update(
        sub["id"], params={"items": [{"id": sub["items"]["data"][0]["id"], "price": solo["id"]}]}
    )
    stripe_actions.deliver()
    assert changed(billing_app) == ["downgraded"]  # notifications lost
    assert sorted(ended_sids(billing_app).values()) == ["cap_lowered", "cap_lowered"]
    del browser


def test_a_plan_losing_a_feature_in_the_catalogue_revokes_its_subscribers(
    billing_app: Flask, billing_auth: AuthActions, stripe_actions: Stripe, standin: Any
) -> None:
    premium_browser(billing_auth, stripe_actions)
    product = next(p for p in standin.objects("product") if p["name"] == "Premium")
    stripe_actions.client.v1.products.update(
        product["id"], params={"metadata": {"entitlements": "premium_content,notifications"}}
    )
    stripe_actions.deliver()
    assert changed(billing_app) == []  # nothing lost
    stripe_actions.client.v1.products.update(
        product["id"], params={"metadata": {"entitlements": "premium_content"}}
    )
    stripe_actions.deliver()
    assert changed(billing_app) == ["downgraded"]


def test_past_due_lapse_and_period_end_are_found_by_the_sweep(
    billing_app: Flask, billing_auth: AuthActions, stripe_actions: Stripe, standin: Any
) -> None:
    from paywall.billing.models import Subscription

    premium_browser(billing_auth, stripe_actions)
    sub_id = standin.objects("subscription")[0]["id"]
    standin.fail_renewal(sub_id)
    stripe_actions.deliver()
    assert changed(billing_app) == []  # within the grace period
    with billing_app.app_context():
        row = db.session.get(Subscription, sub_id)
        row.past_due_since = utcnow() - timedelta(days=7, seconds=5)
        db.session.commit()
        assert revocations.sweep(db.session) == 1
        db.session.commit()
        assert revocations.sweep(db.session) == 0  # once
        db.session.commit()
    assert changed(billing_app) == ["past_due"]


# -- what ends by the clock ---------------------------------------------------------------
def test_sweep_records_idle_and_absolute_expiry_once(
    app: Flask, auth: AuthActions, reader: str
) -> None:
    auth.browser(name="Idle")
    auth.browser(name="Old")
    auth.browser(name="Fresh")
    ids = session_ids(app)
    with app.app_context():
        idle = db.session.get(DeviceSession, ids["Idle"])
        idle.last_seen_at = utcnow() - timedelta(seconds=app.config["SESSION_IDLE_TIMEOUT"] + 5)
        old = db.session.get(DeviceSession, ids["Old"])
        old.expires_at = utcnow() - timedelta(seconds=5)
        db.session.commit()
        assert revocations.sweep(db.session) == 2
        db.session.commit()
        assert revocations.sweep(db.session) == 0
        db.session.commit()
    assert ended_sids(app) == {ids["Idle"]: "expired", ids["Old"]: "expired"}


def test_grant_end_and_withdrawal_are_recorded(app: Flask, auth: AuthActions, reader: str) -> None:
    from paywall.grants.services import grant_service

    with app.app_context():
        grants = grant_service()
        grants.grant(
            reader,
            features=["premium_content"],
            until=utcnow() + timedelta(days=1),
            reason="press",
            by="test",
        )
        db.session.commit()
        grants.revoke(reader, by="test")
        db.session.commit()
        grants.grant(
            reader,
            features=["premium_content"],
            until=utcnow() + timedelta(days=1),
            reason="press",
            by="test",
        )
        db.session.commit()
        from paywall.grants.models import AccessGrant

        row = db.session.scalars(select(AccessGrant).where(AccessGrant.revoked_at.is_(None))).one()
        row.until = utcnow() - timedelta(seconds=1)
        db.session.commit()
        assert revocations.sweep(db.session) == 1
        db.session.commit()
    assert changed(app) == ["grant_ended", "grant_ended"]


def test_purge_drops_what_no_token_needs(app: Flask, auth: AuthActions, reader: str) -> None:
    laptop = auth.browser(name="Laptop")
    laptop.delete("/api/v1/sessions/current")
    with app.app_context():
        assert revocations.purge(db.session) == 0
        later = utcnow() + revocations.retention(app.config) + timedelta(seconds=1)
        assert revocations.purge(db.session, now=later) == 1
        db.session.commit()
    assert stored(app) == []


# -- the long poll --------------------------------------------------------------------------
def test_long_poll_answers_when_a_change_commits_and_the_cursor_moves_on(
    app: Flask, auth: AuthActions, reader: str
) -> None:
    laptop = auth.browser(name="Laptop")
    phone = auth.browser(name="Phone")
    first = feed(app).get_json()
    assert first["revocations"] == []
    empty = feed(app, after=first["cursor"], wait=0.3).get_json()
    assert empty == {"revocations": [], "cursor": first["cursor"]}
    timer = threading.Timer(0.5, lambda: phone.delete("/api/v1/sessions/current"))
    timer.start()
    try:
        answer = feed(app, after=first["cursor"], wait=30)  # returns as soon as it commits
    finally:
        timer.join()
    assert [e["reason"] for e in answer.get_json()["revocations"]] == ["signed_out"]
    cursor = answer.get_json()["cursor"]
    assert feed(app, after=cursor).get_json() == {"revocations": [], "cursor": cursor}
    laptop.delete("/api/v1/sessions/current")
    later = feed(app, after=cursor).get_json()["revocations"]
    assert [e["sid"] for e in later] == [session_ids(app)["Laptop"]]


def test_a_sync_worker_answers_a_long_poll_at_once(app: Flask) -> None:
    """Under gunicorn's sync worker a waiting poll would hold the only request slot."""
    sync = {"SERVER_SOFTWARE": "gunicorn/23.0.0", "wsgi.multithread": False}
    started = time.monotonic()
    answer = app.test_client().get(
        FEED,
        query_string={"wait": 30},
        headers={"Authorization": f"Bearer {PUBLISHER_KEY}"},
        environ_overrides=sync,
    )
    assert answer.status_code == 200 and answer.get_json()["revocations"] == []
    assert time.monotonic() - started < 25  # not the 30 s wait (a generous bound)


def test_another_instance_sees_the_change_through_the_table(
    app: Flask, database_url: str, smtp_server: tuple[Mailbox, int], auth: AuthActions, reader: str
) -> None:
    """Two apps on one database stand for two service instances."""
    from tests.conftest import make_app

    other = make_app(database_url, smtp_server[1], PUBLISHER_API_KEYS=[PUBLISHER_KEY])
    laptop = auth.browser(name="Laptop")
    token, claims = token_claims(laptop)
    cursor = feed(other).get_json()["cursor"]
    timer = threading.Timer(0.5, lambda: laptop.delete("/api/v1/sessions/current"))
    timer.start()
    try:
        answer = feed(other, after=cursor, wait=30).get_json()
    finally:
        timer.join()
    assert [e["sid"] for e in answer["revocations"]] == [claims["sid"]]
    with other.app_context():
        assert revocation_state().is_revoked(claims["sub"], claims["sid"], claims["iat"])
        revocation_state().stop()
    del token
