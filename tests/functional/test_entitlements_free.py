"""Entitlement tokens for a signed-in reader without a subscription (billing in other tests)."""

from __future__ import annotations

from flask import Flask

from paywall.entitlements.verifier import TokenBadSignature, key_id, verify
from tests.conftest import AuthActions


def test_token_for_a_free_reader_is_bound_to_the_session(
    app: Flask, auth: AuthActions, reader: str
) -> None:
    browser = auth.browser()
    response = browser.post("/api/v1/entitlements/token")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["entitlements"] == {"plan": None, "features": [], "max_devices": 5}
    claims = verify(body["token"], app.config["ENTITLEMENT_KEYS"])
    session_id = browser.get("/api/v1/sessions").get_json()["sessions"][0]["id"]
    assert claims["sid"] == session_id
    assert claims["kid"] == key_id(app.config["ENTITLEMENT_KEYS"][0])
    assert claims["exp"] - claims["iat"] == 300
    assert body["expires_at"].startswith(
        __import__("datetime")
        .datetime.fromtimestamp(claims["exp"], __import__("datetime").UTC)
        .isoformat()[:16]
    )


def test_online_verify_and_revocation_on_sign_out(client, auth: AuthActions, reader: str) -> None:
    laptop = auth.browser(name="Laptop")
    phone = auth.browser(name="Phone")
    token = phone.post("/api/v1/entitlements/token").get_json()["token"]
    ok = client.post("/api/v1/entitlements/verify", json={"token": token}).get_json()
    assert ok["valid"] is True and ok["claims"]["features"] == []

    phone_id = next(
        s["id"]
        for s in laptop.get("/api/v1/sessions").get_json()["sessions"]
        if s["device_name"] == "Phone"
    )
    laptop.delete(f"/api/v1/sessions/{phone_id}")
    revoked = client.post("/api/v1/entitlements/verify", json={"token": token}).get_json()
    assert revoked == {"valid": False, "reason": "revoked"}
    again = phone.post("/api/v1/entitlements/token")
    assert again.status_code == 401
    assert again.get_json()["error"]["code"] == "session_revoked"


def test_online_verify_reasons(app: Flask, client, auth: AuthActions, reader: str) -> None:
    browser = auth.browser()
    token = browser.post("/api/v1/entitlements/token").get_json()["token"]
    bad = client.post("/api/v1/entitlements/verify", json={"token": token[:-3] + "xyz"})
    assert bad.get_json() == {"valid": False, "reason": "invalid"}
    app.config["ENTITLEMENT_TTL"] = -120
    expired_token = (
        auth.browser(name="Other").post("/api/v1/entitlements/token").get_json()["token"]
    )
    expired = client.post("/api/v1/entitlements/verify", json={"token": expired_token})
    assert expired.get_json() == {"valid": False, "reason": "expired"}
    missing = client.post("/api/v1/entitlements/verify", json={})
    assert missing.status_code == 422


def test_check_endpoint_for_an_edge_proxy(client, auth: AuthActions, reader: str) -> None:
    token = auth.browser().post("/api/v1/entitlements/token").get_json()["token"]
    assert client.get("/api/v1/entitlements/check").status_code == 401
    bad = client.get("/api/v1/entitlements/check", headers={"X-Paywall-Token": "nope.nope"})
    assert bad.status_code == 401
    free = client.get("/api/v1/entitlements/check", headers={"X-Paywall-Token": token})
    assert free.status_code == 403
    assert free.get_json()["error"]["code"] == "not_entitled"
    registered = client.get(
        "/api/v1/entitlements/check",
        headers={"X-Paywall-Token": token, "X-Paywall-Access-Level": "registered"},
    )
    assert registered.status_code == 204
    bearer = client.get(
        "/api/v1/entitlements/check",
        headers={"Authorization": f"Bearer {token}", "X-Paywall-Access-Level": "registered"},
    )
    assert bearer.status_code == 204


def test_rotation_keeps_old_tokens_valid_while_listed(
    app: Flask, client, auth: AuthActions, reader: str
) -> None:
    old_key = app.config["ENTITLEMENT_KEYS"][0]
    browser = auth.browser()
    old_token = browser.post("/api/v1/entitlements/token").get_json()["token"]
    new_key = "rotated-" + "r" * 40
    app.config["ENTITLEMENT_KEYS"] = [new_key, old_key]
    new_token = browser.post("/api/v1/entitlements/token").get_json()["token"]
    assert verify(new_token, [new_key, old_key])["kid"] == key_id(new_key)
    assert client.post("/api/v1/entitlements/verify", json={"token": old_token}).get_json()["valid"]
    app.config["ENTITLEMENT_KEYS"] = [new_key]
    assert client.post("/api/v1/entitlements/verify", json={"token": old_token}).get_json() == {
        "valid": False,
        "reason": "invalid",
    }
    try:
        verify(old_token, [new_key])
    except TokenBadSignature:
        pass
    else:
        raise AssertionError("old token verified after its key was dropped")
