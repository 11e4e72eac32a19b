"""Entitlement key rotation while tokens are in flight, and clocks two minutes apart: the
behaviour documented in paywall/entitlements/verifier.py (120 s leeway) and the README."""

from __future__ import annotations

import time

import pytest
from flask import Flask

from paywall.entitlements.verifier import TokenBadSignature, TokenExpired, Verifier, verify
from tests.conftest import AuthActions

SKEW = 120


@pytest.fixture
def token_and_keys(app: Flask, auth: AuthActions, reader: str) -> tuple[str, list[str]]:
    browser = auth.browser()
    return browser.post("/api/v1/entitlements/token").get_json()["token"], list(
        app.config["ENTITLEMENT_KEYS"]
    )


@pytest.mark.parametrize("skew", [-SKEW, SKEW], ids=["frontend-behind", "frontend-ahead"])
def test_a_fresh_token_verifies_on_a_frontend_two_minutes_off(
    token_and_keys: tuple[str, list[str]], skew: int
) -> None:
    token, keys = token_and_keys
    assert verify(token, keys, now=time.time() + skew)["aud"] == "paywall.article"


def test_expiry_is_honoured_within_the_documented_leeway(
    token_and_keys: tuple[str, list[str]],
) -> None:
    token, keys = token_and_keys
    exp = Verifier(keys).load(token)["exp"]
    assert verify(token, keys, now=exp + SKEW - 1)
    with pytest.raises(TokenExpired):
        verify(token, keys, now=exp + SKEW + 1)
    with pytest.raises(TokenExpired):  # a clock more than the leeway behind the issuer
        verify(token, keys, now=exp - 300 - SKEW - 2)


def test_online_verify_uses_the_service_clock_without_leeway(
    app: Flask, client, auth: AuthActions, reader: str
) -> None:
    app.config["ENTITLEMENT_TTL"] = -1
    token = auth.browser().post("/api/v1/entitlements/token").get_json()["token"]
    assert client.post("/api/v1/entitlements/verify", json={"token": token}).get_json() == {
        "valid": False,
        "reason": "expired",
    }
    assert verify(token, app.config["ENTITLEMENT_KEYS"])  # offline: still within leeway


def test_rotation_while_tokens_are_in_flight(
    app: Flask, client, auth: AuthActions, reader: str
) -> None:
    browsers = [auth.browser(name=f"B{i}") for i in range(3)]
    old_keys = list(app.config["ENTITLEMENT_KEYS"])
    in_flight = [b.post("/api/v1/entitlements/token").get_json()["token"] for b in browsers]
    new_key = "new-" + "k" * 60
    app.config["ENTITLEMENT_KEYS"] = [new_key, *old_keys]  # step 1: new key signs, old verifies
    fresh = [b.post("/api/v1/entitlements/token").get_json()["token"] for b in browsers]
    frontend_keys = [new_key, *old_keys]
    for token in in_flight + fresh:
        assert verify(token, frontend_keys)
        assert client.post("/api/v1/entitlements/verify", json={"token": token}).get_json()["valid"]
    # A frontend not yet updated still accepts old tokens but not new ones: roll frontends first.
    with pytest.raises(TokenBadSignature):
        verify(fresh[0], old_keys)
    app.config["ENTITLEMENT_KEYS"] = [new_key]  # step 2, after one token lifetime
    for token in in_flight:
        assert client.post("/api/v1/entitlements/verify", json={"token": token}).get_json() == {
            "valid": False,
            "reason": "invalid",
        }
    for token in fresh:
        assert client.post("/api/v1/entitlements/verify", json={"token": token}).get_json()["valid"]
