"""Entitlement tokens for a signed-in reader without a subscription (billing in other tests)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import jwt
import pytest
from flask import Flask
from flask.testing import FlaskClient

from paywall.entitlements.keys import generate_pem, signing_keys
from paywall.entitlements.verifier import TokenBadSignature, session_hash, verify
from tests.conftest import AuthActions

PUBLISHER_KEY = secrets.token_hex(32)


@pytest.fixture
def app_config() -> dict:
    return {"PUBLISHER_API_KEYS": [PUBLISHER_KEY]}


def session_of(browser: FlaskClient) -> str:
    cookie = browser.get_cookie("paywall_session")
    assert cookie is not None
    return cookie.value


def jwks(client: FlaskClient) -> dict:
    return client.get("/.well-known/jwks.json").get_json()


def verify_online(client: FlaskClient, token: str, **extra: str) -> dict:
    return client.post(
        "/api/v1/entitlements/verify",
        json={"token": token, **extra},
        headers={"Authorization": f"Bearer {PUBLISHER_KEY}"},
    ).get_json()


def test_token_for_a_free_reader_is_an_eddsa_jwt_bound_to_the_session(
    app: Flask, client: FlaskClient, auth: AuthActions, reader: str
) -> None:
    browser = auth.browser()
    response = browser.post("/api/v1/entitlements/token")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["entitlements"] == {"plan": None, "features": [], "max_devices": 5}
    header = jwt.get_unverified_header(body["token"])
    kid = signing_keys(app.config["ENTITLEMENT_SIGNING_KEYS"]).keys[0].kid
    assert header == {"alg": "EdDSA", "kid": kid, "typ": "JWT"}
    claims = verify(body["token"], jwks(client), session=session_of(browser))
    session_id = browser.get("/api/v1/sessions").get_json()["sessions"][0]["id"]
    assert claims["sid"] == session_id
    assert claims["iss"] == app.config["PUBLIC_URL"]
    assert claims["cnf"] == {"sth": session_hash(session_of(browser))}
    assert claims["jti"] and claims["exp"] - claims["iat"] == 300
    assert body["expires_at"].startswith(
        datetime.fromtimestamp(claims["exp"], UTC).isoformat()[:16]
    )
    again = browser.post("/api/v1/entitlements/token").get_json()["token"]
    assert jwt.decode(again, options={"verify_signature": False})["jti"] != claims["jti"]


def test_jwks_publishes_every_key_and_is_cacheable_five_minutes(
    app: Flask, client: FlaskClient
) -> None:
    new = generate_pem()
    app.config["ENTITLEMENT_SIGNING_KEYS"] = [new, *app.config["ENTITLEMENT_SIGNING_KEYS"]]
    response = client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    max_age = int(response.headers["Cache-Control"].split("max-age=")[1].split(",")[0])
    assert 0 < max_age <= 300
    keys = response.get_json()["keys"]
    expected = [k.kid for k in signing_keys(app.config["ENTITLEMENT_SIGNING_KEYS"]).keys]
    assert [k["kid"] for k in keys] == expected and len(keys) == 2
    for key in keys:
        assert key["kty"] == "OKP" and key["crv"] == "Ed25519"
        assert key["alg"] == "EdDSA" and key["use"] == "sig" and "d" not in key


def test_online_verify_answers_only_to_a_publisher_key(
    client: FlaskClient, auth: AuthActions, reader: str
) -> None:
    browser = auth.browser()
    token = browser.post("/api/v1/entitlements/token").get_json()["token"]
    for headers in (
        {},
        {"Authorization": f"Bearer {session_of(browser)}"},
        {"Authorization": "Bearer " + "x" * 64},
    ):
        refused = client.post("/api/v1/entitlements/verify", json={"token": token}, headers=headers)
        assert refused.status_code == 401
        assert refused.get_json()["error"]["code"] == "publisher_key_required"
        assert "claims" not in refused.get_json()
    assert verify_online(client, token)["valid"] is True


def test_online_verify_and_revocation_on_sign_out(
    client: FlaskClient, auth: AuthActions, reader: str
) -> None:
    laptop = auth.browser(name="Laptop")
    phone = auth.browser(name="Phone")
    token = phone.post("/api/v1/entitlements/token").get_json()["token"]
    ok = verify_online(client, token, session=session_of(phone))
    assert ok["valid"] is True and ok["claims"]["features"] == []
    assert verify_online(client, token, session=session_of(laptop)) == {
        "valid": False,
        "reason": "wrong_session",
    }

    phone_id = next(
        s["id"]
        for s in laptop.get("/api/v1/sessions").get_json()["sessions"]
        if s["device_name"] == "Phone"
    )
    laptop.delete(f"/api/v1/sessions/{phone_id}")
    assert verify_online(client, token) == {"valid": False, "reason": "revoked"}
    again = phone.post("/api/v1/entitlements/token")
    assert again.status_code == 401
    assert again.get_json()["error"]["code"] == "session_revoked"


def test_online_verify_reasons(
    app: Flask, client: FlaskClient, auth: AuthActions, reader: str
) -> None:
    browser = auth.browser()
    token = browser.post("/api/v1/entitlements/token").get_json()["token"]
    assert verify_online(client, token[:-3] + "xyz") == {"valid": False, "reason": "invalid"}
    app.config["ENTITLEMENT_TTL"] = -120
    expired_token = (
        auth.browser(name="Other").post("/api/v1/entitlements/token").get_json()["token"]
    )
    assert verify_online(client, expired_token) == {"valid": False, "reason": "expired"}
    missing = client.post(
        "/api/v1/entitlements/verify", json={}, headers={"Authorization": f"Bearer {PUBLISHER_KEY}"}
    )
    assert missing.status_code == 422


def test_check_endpoint_for_an_edge_proxy(
    client: FlaskClient, auth: AuthActions, reader: str
) -> None:
    browser = auth.browser()
    token = browser.post("/api/v1/entitlements/token").get_json()["token"]
    session = session_of(browser)
    assert client.get("/api/v1/entitlements/check").status_code == 401
    bad = client.get("/api/v1/entitlements/check", headers={"X-Paywall-Token": "nope.nope"})
    assert bad.status_code == 401
    headers = {"X-Paywall-Token": token, "X-Paywall-Session": session}
    free = client.get("/api/v1/entitlements/check", headers=headers)
    assert free.status_code == 403
    assert free.get_json()["error"]["code"] == "not_entitled"
    registered = {**headers, "X-Paywall-Access-Level": "registered"}
    assert client.get("/api/v1/entitlements/check", headers=registered).status_code == 204
    bearer = client.get(
        "/api/v1/entitlements/check",
        headers={
            "Authorization": f"Bearer {token}",
            "X-Paywall-Session": session,
            "X-Paywall-Access-Level": "registered",
        },
    )
    assert bearer.status_code == 204
    # The session may come as the cookie the reader's browser sent (nginx passes it on).
    client.set_cookie("paywall_session", session)
    cookie = client.get(
        "/api/v1/entitlements/check",
        headers={"X-Paywall-Token": token, "X-Paywall-Access-Level": "registered"},
    )
    assert cookie.status_code == 204
    # Without its session, or with another one, the token is refused.
    client.delete_cookie("paywall_session")
    for other in ({}, {"X-Paywall-Session": "anything"}):
        alone = client.get(
            "/api/v1/entitlements/check",
            headers={"X-Paywall-Token": token, "X-Paywall-Access-Level": "registered", **other},
        )
        assert alone.status_code == 401
        assert alone.get_json()["error"]["code"] == "token_wrong_session"


def test_rotation_keeps_old_tokens_valid_while_published(
    app: Flask, client: FlaskClient, auth: AuthActions, reader: str
) -> None:
    old_key = app.config["ENTITLEMENT_SIGNING_KEYS"][0]
    browser = auth.browser()
    session = session_of(browser)
    old_token = browser.post("/api/v1/entitlements/token").get_json()["token"]
    new_key = generate_pem()
    app.config["ENTITLEMENT_SIGNING_KEYS"] = [new_key, old_key]
    new_token = browser.post("/api/v1/entitlements/token").get_json()["token"]
    assert jwt.get_unverified_header(new_token)["kid"] == signing_keys([new_key]).keys[0].kid
    assert verify(new_token, jwks(client), session=session)
    assert verify_online(client, old_token)["valid"]
    app.config["ENTITLEMENT_SIGNING_KEYS"] = [new_key]
    assert verify_online(client, old_token) == {"valid": False, "reason": "invalid"}
    with pytest.raises(TokenBadSignature):
        verify(old_token, jwks(client), session=session)


def test_check_and_verify_make_no_database_query_for_a_token_not_revoked(
    app: Flask, client: FlaskClient, auth: AuthActions, reader: str
) -> None:
    """Issue 9 §3: decided from the token and the process's revocation state. The state's own
    refresh (one query per interval for the whole process, in its thread) is not per token and
    is left out of the count."""
    import threading

    from sqlalchemy import event

    from paywall.extensions import db

    browser = auth.browser()
    token = browser.post("/api/v1/entitlements/token").get_json()["token"]
    session = session_of(browser)
    check_headers = {
        "X-Paywall-Token": token,
        "X-Paywall-Session": session,
        "X-Paywall-Access-Level": "registered",
    }
    assert client.get("/api/v1/entitlements/check", headers=check_headers).status_code == 204
    me = threading.get_ident()
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        if threading.get_ident() == me and "entitlement_revocations" not in statement:
            statements.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        for _ in range(3):
            assert (
                client.get("/api/v1/entitlements/check", headers=check_headers).status_code == 204
            )
            assert verify_online(client, token, session=session)["valid"] is True
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert statements == []
    # And the same listener does see a query where there is one (the test can fail).
    event.listen(engine, "before_cursor_execute", count)
    try:
        browser.get("/api/v1/sessions")
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert statements


def test_token_refresh_is_one_select_and_no_orm_entities(
    app: Flask, auth: AuthActions, reader: str
) -> None:
    """Issue 9 §5: a refresh that changes nothing (no first use, rotation or touch due) is one
    statement on the wire: no pre-ping, no BEGIN/ROLLBACK, one SELECT; and loads no ORM
    entity. The first refresh (the value's first use is recorded) takes the full path."""
    import threading

    from sqlalchemy import event
    from sqlalchemy.orm import Session

    from paywall.extensions import db

    browser = auth.browser()
    first = browser.post("/api/v1/entitlements/token")
    assert first.status_code == 200
    me = threading.get_ident()
    statements: list[str] = []
    loaded: list[object] = []

    def count(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        if threading.get_ident() == me and "entitlement_revocations" not in statement:
            statements.append(statement)

    def on_load(_session, instance) -> None:  # type: ignore[no-untyped-def]
        loaded.append(instance)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    event.listen(Session, "loaded_as_persistent", on_load)
    try:
        for _ in range(3):
            statements.clear()
            response = browser.post("/api/v1/entitlements/token")
            assert response.status_code == 200
            assert len(statements) == 1, statements
            assert statements[0].lstrip().upper().startswith("SELECT")
    finally:
        event.remove(engine, "before_cursor_execute", count)
        event.remove(Session, "loaded_as_persistent", on_load)
    assert loaded == []
    claims = verify_online(
        app.test_client(), response.get_json()["token"], session=session_of(browser)
    )
    assert claims["valid"] is True
    # The listener does see the full path's statements (the test can fail): an unknown value
    # is looked up as a previous and a retired one too before the 401.
    event.listen(engine, "before_cursor_execute", count)
    try:
        statements.clear()
        unknown = {"Authorization": "Bearer " + secrets.token_urlsafe(32)}
        assert (
            app.test_client().post("/api/v1/entitlements/token", headers=unknown).status_code == 401
        )
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(statements) > 1


def test_check_does_not_open_the_cookie_session(
    app: Flask, client: FlaskClient, auth: AuthActions, reader: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 9 §5: the edge check (every page view behind the proxy) skips Flask's cookie
    session: no ``session`` cookie is decoded or signed; other paths still use it."""
    browser = auth.browser()
    token = browser.post("/api/v1/entitlements/token").get_json()["token"]
    headers = {
        "X-Paywall-Token": token,
        "X-Paywall-Session": session_of(browser),
        "X-Paywall-Access-Level": "registered",
    }
    interface = app.session_interface
    calls: list[str] = []
    original = interface.get_signing_serializer

    def counting(flask_app: Flask):  # type: ignore[no-untyped-def]
        calls.append("serializer")
        return original(flask_app)

    monkeypatch.setattr(interface, "get_signing_serializer", counting)
    client.set_cookie("session", "anything")
    for _ in range(3):
        assert client.get("/api/v1/entitlements/check", headers=headers).status_code == 204
    assert calls == []
    client.get("/api/v1/sessions")  # the listener sees a path that opens the session
    assert calls
