"""The verifier's revocation hook: ``verify(..., revocations=watcher)`` refuses a token whose
session ended or whose account lost access since it was issued (TokenRevoked, a TokenError)."""

from __future__ import annotations

import time

import pytest

from paywall.entitlements.verifier import TokenError, TokenRevoked, Verifier, verify
from paywall.entitlements.watcher import RevocationWatcher
from tests.unit.entitlements.test_verifier import NEW, SESSION, make


def watcher_with(*entries: dict) -> RevocationWatcher:
    watcher = RevocationWatcher("http://127.0.0.1:9", "key")  # never started: no network
    watcher._apply(list(entries))  # noqa: SLF001 - what a poll of the feed does
    return watcher


def test_a_revoked_session_is_refused_and_others_pass() -> None:
    watcher = watcher_with({"sub": "acc", "sid": "sess", "not_before": 1, "reason": "evicted"})
    token, other = make(), make(sid="another")
    with pytest.raises(TokenRevoked) as refused:
        verify(token, NEW.jwks(), session=SESSION, revocations=watcher)
    assert isinstance(refused.value, TokenError) and refused.value.reason == "revoked"
    assert verify(other, NEW.jwks(), session=SESSION, revocations=watcher)["sid"] == "another"
    assert verify(token, NEW.jwks(), session=SESSION)["sid"] == "sess"  # no hook, no refusal


def test_an_account_revocation_refuses_tokens_issued_before_not_before() -> None:
    now = int(time.time())
    watcher = watcher_with({"sub": "acc", "not_before": now, "reason": "canceled"})
    verifier = Verifier(NEW.jwks())
    with pytest.raises(TokenRevoked):
        verifier.verify(make(iat=now - 1), session=SESSION, revocations=watcher)
    assert verifier.verify(make(iat=now), session=SESSION, revocations=watcher)["iat"] == now
