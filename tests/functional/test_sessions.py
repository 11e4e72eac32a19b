"""Device sessions: login, the cap, replace, evict, list, sign out, cookies, timeouts."""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta

import pytest
from flask import Flask

from paywall.clock import utcnow
from paywall.devices.models import DeviceSession
from paywall.extensions import db
from tests.conftest import PASSWORD, AuthActions


def test_login_sets_a_hardened_cookie_and_stores_only_a_digest(
    app: Flask, auth: AuthActions, reader: str
) -> None:
    browser, response = auth.log_in(device_name="Laptop")
    assert response.status_code == 201
    body = response.get_json()
    assert body["current"] is True and body["device_name"] == "Laptop"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie
    value = cookie.split(";", 1)[0].split("=", 1)[1]
    # 256 bits (secrets.token_urlsafe(32)): 43 base64url characters that decode to 32 bytes.
    assert len(value) == 43
    assert len(base64.urlsafe_b64decode(value + "=")) == 32
    with app.app_context():
        stored = db.session.query(DeviceSession).one()
        # Only the SHA-256 of the value is stored.
        assert stored.token_digest == hashlib.sha256(value.encode()).hexdigest()
        assert value not in stored.token_digest


def test_bearer_token_works_without_cookies(app: Flask, auth: AuthActions, reader: str) -> None:
    _browser, response = auth.log_in()
    token = response.get_json()["token"]
    bare = app.test_client(use_cookies=False)
    assert bare.get("/api/v1/account").status_code == 401
    ok = bare.get("/api/v1/account", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200


def test_unknown_email_and_wrong_password_get_the_same_401(auth: AuthActions, reader: str) -> None:
    _b, wrong = auth.log_in(reader, "wrong password!!")
    _b, unknown = auth.log_in("nobody@example.com", PASSWORD)
    _b, malformed = auth.log_in("not an email", PASSWORD)
    assert wrong.status_code == unknown.status_code == malformed.status_code == 401
    assert wrong.get_json() == unknown.get_json() == malformed.get_json()


def test_each_login_issues_a_new_value(auth: AuthActions, reader: str) -> None:
    browser = auth.browser()
    first = browser.get_cookie("paywall_session").value
    _again, response = auth.log_in()
    assert response.get_json()["token"] != first


def test_sixth_login_refused_then_replaces_a_device_which_learns_why(
    auth: AuthActions, reader: str
) -> None:
    browsers = [auth.browser(name=f"Device {i}") for i in range(5)]
    sixth, refused = auth.log_in(device_name="Sixth")
    assert refused.status_code == 409
    body = refused.get_json()
    assert body["error"]["code"] == "device_limit_reached"
    assert body["limit"] == 5
    assert len(body["devices"]) == 5
    victim = next(d for d in body["devices"] if d["device_name"] == "Device 2")

    _sixth, accepted = auth.log_in(device_name="Sixth", replace_session_id=victim["id"])
    assert accepted.status_code == 201
    evicted = browsers[2].get("/api/v1/sessions")
    assert evicted.status_code == 401
    assert evicted.get_json()["error"]["code"] == "session_evicted"
    assert evicted.get_json()["reason"] == "evicted"
    assert "another device signed in" in evicted.get_json()["error"]["message"]
    listing = browsers[0].get("/api/v1/sessions").get_json()
    assert len(listing["sessions"]) == 5
    assert "Device 2" not in {s["device_name"] for s in listing["sessions"]}


def test_replace_with_an_unknown_session_is_refused(auth: AuthActions, reader: str) -> None:
    for i in range(5):
        auth.browser(name=f"Device {i}")
    _b, response = auth.log_in(replace_session_id="0" * 32)
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "unknown_session"


@pytest.fixture
def app_config(request: pytest.FixtureRequest) -> dict:
    return getattr(request, "param", {})


@pytest.mark.parametrize("app_config", [{"DEVICE_POLICY": "evict_lru"}], indirect=True)
def test_evict_lru_policy_signs_out_the_least_recently_used(
    app: Flask, auth: AuthActions, reader: str
) -> None:
    browsers = [auth.browser(name=f"Device {i}") for i in range(5)]
    with app.app_context():  # make Device 3 the least recently used
        device = db.session.query(DeviceSession).filter_by(device_name="Device 3").one()
        device.last_seen_at = utcnow() - timedelta(days=2)
        db.session.commit()
    _sixth, response = auth.log_in(device_name="Sixth")
    assert response.status_code == 201
    assert browsers[3].get("/api/v1/sessions").get_json()["error"]["code"] == "session_evicted"
    assert browsers[4].get("/api/v1/sessions").status_code == 200


def test_list_and_sign_out_devices(auth: AuthActions, reader: str) -> None:
    laptop = auth.browser(name="Laptop")
    phone = auth.browser(name="Phone")
    listing = laptop.get("/api/v1/sessions").get_json()
    assert listing["limit"] == 5
    current = [s for s in listing["sessions"] if s["current"]]
    assert [s["device_name"] for s in current] == ["Laptop"]
    phone_id = next(s["id"] for s in listing["sessions"] if s["device_name"] == "Phone")

    assert laptop.delete(f"/api/v1/sessions/{phone_id}").status_code == 204
    revoked = phone.get("/api/v1/account")
    assert revoked.status_code == 401
    assert revoked.get_json()["error"]["code"] == "session_revoked"
    assert laptop.delete(f"/api/v1/sessions/{phone_id}").status_code == 404

    out = laptop.delete("/api/v1/sessions/current")
    assert out.status_code == 204
    assert "paywall_session=;" in out.headers["Set-Cookie"]
    assert laptop.get("/api/v1/account").status_code == 401


def test_cannot_sign_out_another_accounts_device(auth: AuthActions, reader: str) -> None:
    auth.sign_up("other@example.com")
    mine = auth.browser()
    theirs = auth.browser("other@example.com")
    their_id = theirs.get("/api/v1/sessions").get_json()["sessions"][0]["id"]
    assert mine.delete(f"/api/v1/sessions/{their_id}").status_code == 404
    assert theirs.get("/api/v1/account").status_code == 200


@pytest.mark.parametrize(
    "app_config", [{"SESSION_IDLE_TIMEOUT": 3600, "SESSION_ABSOLUTE_LIFETIME": 7200}], indirect=True
)
def test_idle_and_absolute_timeouts_are_enforced_on_the_server(
    app: Flask, auth: AuthActions, reader: str
) -> None:
    idle = auth.browser(name="Idle")
    old = auth.browser(name="Old")
    with app.app_context():
        now = utcnow()
        s = db.session.query(DeviceSession).filter_by(device_name="Idle").one()
        s.last_seen_at = now - timedelta(seconds=3601)
        o = db.session.query(DeviceSession).filter_by(device_name="Old").one()
        o.expires_at = now - timedelta(seconds=1)
        db.session.commit()
    for browser in (idle, old):
        response = browser.get("/api/v1/account")
        assert response.status_code == 401
        assert response.get_json()["error"]["code"] == "session_expired"


def test_last_seen_is_written_at_most_once_a_minute(
    app: Flask, auth: AuthActions, reader: str
) -> None:
    browser = auth.browser()
    with app.app_context():
        first = db.session.query(DeviceSession).one().last_seen_at
    browser.get("/api/v1/account")
    with app.app_context():
        assert db.session.query(DeviceSession).one().last_seen_at == first
        s = db.session.query(DeviceSession).one()
        s.last_seen_at = utcnow() - timedelta(seconds=61)
        db.session.commit()
        stale = s.last_seen_at
    browser.get("/api/v1/account")
    with app.app_context():
        assert db.session.query(DeviceSession).one().last_seen_at > stale


def test_purge_command_deletes_only_long_ended_sessions(
    app: Flask, auth: AuthActions, reader: str
) -> None:
    auth.browser(name="Active")
    auth.browser(name="Old")
    auth.browser(name="Recent")
    with app.app_context():
        now = utcnow()
        old = db.session.query(DeviceSession).filter_by(device_name="Old").one()
        old.ended_at, old.end_reason = now - timedelta(days=40), "signed_out"
        recent = db.session.query(DeviceSession).filter_by(device_name="Recent").one()
        recent.ended_at, recent.end_reason = now - timedelta(days=2), "signed_out"
        db.session.commit()
    result = app.test_cli_runner().invoke(args=["devices", "purge", "--older-than-days", "30"])
    assert result.exit_code == 0 and "deleted 1 ended session(s)" in result.output
    with app.app_context():
        names = sorted(s.device_name for s in db.session.query(DeviceSession))
    assert names == ["Active", "Recent"]
