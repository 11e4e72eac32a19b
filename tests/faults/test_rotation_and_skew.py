"""Key rotation rolled through two service instances while tokens are in flight, and clocks
apart between hosts: the procedure in the README and the leeways documented in
paywall/entitlements/verifier.py (offline, a setting: 120 s by default) and
paywall/entitlements/services.py (online: 5 s)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from flask import Flask
from flask.testing import FlaskClient

from paywall import clock
from paywall.entitlements.keys import generate_pem, signing_keys
from paywall.entitlements.verifier import TokenBadSignature, TokenExpired, Verifier, verify
from tests.conftest import AuthActions, Mailbox, make_app

SKEW = 120
PUBLISHER_KEY = secrets.token_hex(32)


@pytest.fixture
def app_config() -> dict:
    return {"PUBLISHER_API_KEYS": [PUBLISHER_KEY]}


@pytest.fixture
def second(app: Flask, database_url: str, smtp_server: tuple[Mailbox, int]) -> Iterator[Flask]:
    """Another instance of the service on the same database (another host)."""
    _box, port = smtp_server
    yield make_app(
        database_url,
        port,
        PUBLISHER_API_KEYS=[PUBLISHER_KEY],
        ENTITLEMENT_SIGNING_KEYS=list(app.config["ENTITLEMENT_SIGNING_KEYS"]),
    )


def session_of(browser: FlaskClient) -> str:
    cookie = browser.get_cookie("paywall_session")
    assert cookie is not None
    return cookie.value


def issue(browser: FlaskClient) -> tuple[str, str]:
    response = browser.post("/api/v1/entitlements/token")
    assert response.status_code == 200, response.get_json()
    return response.get_json()["token"], session_of(browser)


def bearer_issue(instance: Flask, session: str) -> str:
    response = instance.test_client().post(
        "/api/v1/entitlements/token", headers={"Authorization": f"Bearer {session}"}
    )
    assert response.status_code == 200, response.get_json()
    return str(response.get_json()["token"])


def online(instance: Flask, token: str, session: str) -> dict[str, Any]:
    return (
        instance.test_client()
        .post(  # type: ignore[no-any-return]
            "/api/v1/entitlements/verify",
            json={"token": token, "session": session},
            headers={"Authorization": f"Bearer {PUBLISHER_KEY}"},
        )
        .get_json()
    )


def checked(instance: Flask, token: str, session: str) -> int:
    return (
        instance.test_client()
        .get(
            "/api/v1/entitlements/check",
            headers={
                "X-Paywall-Token": token,
                "X-Paywall-Session": session,
                "X-Paywall-Access-Level": "registered",
            },
        )
        .status_code
    )


def jwks_of(instance: Flask) -> dict:
    return instance.test_client().get("/.well-known/jwks.json").get_json()  # type: ignore[no-any-return]


@pytest.fixture
def token_and_jwks(client: FlaskClient, auth: AuthActions, reader: str) -> tuple[str, str, dict]:
    token, session = issue(auth.browser())
    return token, session, client.get("/.well-known/jwks.json").get_json()


@pytest.mark.parametrize("skew", [-SKEW, SKEW], ids=["frontend-behind", "frontend-ahead"])
def test_a_fresh_token_verifies_on_a_frontend_two_minutes_off(
    token_and_jwks: tuple[str, str, dict], skew: int
) -> None:
    token, session, keys = token_and_jwks
    assert verify(token, keys, session=session, now=time.time() + skew)["aud"] == "paywall.article"


def test_expiry_is_honoured_within_the_documented_offline_leeway(
    token_and_jwks: tuple[str, str, dict],
) -> None:
    token, session, keys = token_and_jwks
    exp = Verifier(keys).load(token)["exp"]
    assert verify(token, keys, session=session, now=exp + SKEW - 1)
    with pytest.raises(TokenExpired):
        verify(token, keys, session=session, now=exp + SKEW + 1)
    with pytest.raises(TokenExpired):  # a clock more than the leeway behind the issuer
        verify(token, keys, session=session, now=exp - 300 - SKEW - 2)


@pytest.mark.parametrize("shift", [1.0, -1.0], ids=["issuer-ahead", "issuer-behind"])
def test_online_checks_agree_across_hosts_one_second_apart(
    app: Flask,
    second: Flask,
    auth: AuthActions,
    reader: str,
    monkeypatch: pytest.MonkeyPatch,
    shift: float,
) -> None:
    """Tokens issued on a host whose clock is 1 s off, checked on the other, including one
    that the issuing host sees expiring just now: none is refused."""
    browser = auth.browser()
    session = session_of(browser)
    real = time.time
    tokens = []
    for ttl in (300, 1):
        app.config["ENTITLEMENT_TTL"] = ttl
        monkeypatch.setattr(clock, "timestamp", lambda: real() + shift)
        tokens.append(issue(browser)[0])
        monkeypatch.setattr(clock, "timestamp", real)
    assert online(second, tokens[0], session)["valid"] is True  # iat up to 1 s ahead
    time.sleep(1.0)  # the 1 s token has now expired by (up to) 1 s + the shift on host 2
    for token in tokens:
        assert online(second, token, session)["valid"] is True, jwt.decode(
            token, options={"verify_signature": False}
        )
        assert checked(second, token, session) == 204


def test_online_checks_refuse_beyond_five_seconds(
    app: Flask, second: Flask, auth: AuthActions, reader: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    browser = auth.browser()
    session = session_of(browser)
    real = time.time
    monkeypatch.setattr(clock, "timestamp", lambda: real() + 30)  # issued "in the future"
    future = issue(browser)[0]
    app.config["ENTITLEMENT_TTL"] = 10
    monkeypatch.setattr(clock, "timestamp", lambda: real() - 20)  # expired 10 s ago
    stale = issue(browser)[0]
    monkeypatch.setattr(clock, "timestamp", real)
    assert online(second, future, session) == {"valid": False, "reason": "expired"}
    assert online(second, stale, session) == {"valid": False, "reason": "expired"}
    assert checked(second, stale, session) == 401


def test_rotation_rolled_through_two_instances_refuses_no_token(
    app: Flask, second: Flask, auth: AuthActions, reader: str
) -> None:
    """The README procedure: (1) publish the new key second on every instance, (2) once every
    instance publishes it and frontends' JWKS caches (≤ 5 min) have turned over, put it first on
    every instance, one at a time, (3) after a token lifetime plus leeway, drop the old key."""
    instances = {"A": app, "B": second}
    readers = [auth.browser(name=f"B{i}") for i in range(2)]
    sessions = [session_of(b) for b in readers]
    old, new = app.config["ENTITLEMENT_SIGNING_KEYS"][0], generate_pem()
    in_flight: list[tuple[str, str]] = []

    def mint_everywhere() -> None:
        for instance in instances.values():
            for session in sessions:
                in_flight.append((bearer_issue(instance, session), session))

    def nothing_refused(frontend_jwks: dict) -> None:
        frontend = Verifier(frontend_jwks)
        for token, session in in_flight:
            for name, instance in instances.items():
                assert online(instance, token, session)["valid"] is True, name
                assert checked(instance, token, session) == 204, name
            assert frontend.verify(token, session=session)

    mint_everywhere()
    steps = [("A", [old, new]), ("B", [old, new]), ("A", [new, old]), ("B", [new, old])]
    for step, (name, keys) in enumerate(steps):
        # A frontend whose JWKS was fetched before this step (from either instance).
        frontend_jwks = jwks_of(instances["A" if step % 2 else "B"])
        instances[name].config["ENTITLEMENT_SIGNING_KEYS"] = keys
        mint_everywhere()
        if step >= 2:  # by the time anyone signs with the new key, every JWKS lists it
            assert signing_keys([new]).keys[0].kid in {k["kid"] for k in frontend_jwks["keys"]}
        nothing_refused(frontend_jwks)
    kids = {jwt.get_unverified_header(t)["kid"] for t, _ in in_flight}
    assert kids == {signing_keys([old]).keys[0].kid, signing_keys([new]).keys[0].kid}


def test_signing_before_every_instance_publishes_is_what_the_procedure_prevents(
    app: Flask, second: Flask, auth: AuthActions, reader: str
) -> None:
    """The failure the order avoids: an instance that signs with a key another instance does
    not publish yet gets its tokens refused there."""
    session = session_of(auth.browser())
    old, new = app.config["ENTITLEMENT_SIGNING_KEYS"][0], generate_pem()
    app.config["ENTITLEMENT_SIGNING_KEYS"] = [new, old]
    token = bearer_issue(app, session)
    assert online(second, token, session) == {"valid": False, "reason": "invalid"}
    with pytest.raises(TokenBadSignature):
        Verifier(jwks_of(second)).verify(token, session=session)
