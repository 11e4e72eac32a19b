"""The offline verifier: what a frontend runs before sending premium text."""

from __future__ import annotations

import time

import pytest

from paywall.entitlements.verifier import (
    AUDIENCE,
    TokenBadSignature,
    TokenExpired,
    TokenMalformed,
    TokenWrongPurpose,
    can_read,
    key_id,
    serializer,
    verify,
)

NEW, OLD = "n" * 40, "o" * 40


def make(keys: list[str], **claims: object) -> str:
    now = int(time.time())
    base = {
        "sub": "acc",
        "sid": "sess",
        "plan": "premium_monthly",
        "features": ["premium_content"],
        "max_devices": 5,
        "iat": now,
        "exp": now + 300,
        "aud": AUDIENCE,
        "kid": key_id(keys[0]),
    }
    base.update(claims)
    return str(serializer(keys).dumps(base))


def test_valid_token_returns_claims() -> None:
    claims = verify(make([NEW]), [NEW])
    assert claims["sub"] == "acc" and claims["features"] == ["premium_content"]


def test_tampered_token_is_refused() -> None:
    token = make([NEW])
    payload, sig = token.rsplit(".", 1)
    forged = make([NEW], features=["premium_content", "everything"]).rsplit(".", 1)[0]
    with pytest.raises(TokenBadSignature):
        verify(f"{forged}.{sig}", [NEW])
    with pytest.raises(TokenBadSignature):
        verify(payload + "." + ("A" if sig[0] != "A" else "B") + sig[1:], [NEW])


def test_other_key_is_refused() -> None:
    with pytest.raises(TokenBadSignature):
        verify(make(["x" * 40]), [NEW])


def test_expired_token_is_refused_after_the_leeway() -> None:
    now = int(time.time())
    token = make([NEW], iat=now - 400, exp=now - 100)
    assert verify(token, [NEW])["sub"] == "acc"  # within the default 120 s leeway
    with pytest.raises(TokenExpired):
        verify(token, [NEW], leeway=60)
    with pytest.raises(TokenExpired):
        verify(make([NEW], iat=now - 500, exp=now - 121), [NEW])


def test_wrong_purpose_is_refused() -> None:
    with pytest.raises(TokenWrongPurpose):
        verify(make([NEW], aud="something.else"), [NEW])
    # A token signed with the same key but another salt (another purpose) fails the signature.
    from itsdangerous import URLSafeSerializer

    other = URLSafeSerializer(NEW, salt="paywall.reset-password").dumps({"aud": AUDIENCE})
    with pytest.raises(TokenBadSignature):
        verify(other, [NEW])


@pytest.mark.parametrize("garbage", ["", ".", "abc", "a.b.c", "!!!.###", "x" * 5000])
def test_malformed_tokens_raise_typed_errors(garbage: str) -> None:
    with pytest.raises((TokenBadSignature, TokenMalformed)):
        verify(garbage, [NEW])


def test_rotation_old_tokens_stay_valid_while_their_key_is_listed() -> None:
    old_token = make([OLD])
    new_token = make([NEW, OLD])
    assert verify(old_token, [NEW, OLD])["sub"] == "acc"
    assert verify(new_token, [NEW, OLD])["kid"] == key_id(NEW)
    with pytest.raises(TokenBadSignature):
        verify(old_token, [NEW])


def test_can_read_by_access_level() -> None:
    premium = verify(make([NEW]), [NEW])
    free = verify(make([NEW], features=[], plan=None), [NEW])
    assert can_read(None, "free") and can_read(free, "free")
    assert not can_read(None, "registered") and can_read(free, "registered")
    assert not can_read(None, "premium") and not can_read(free, "premium")
    assert can_read(premium, "premium")
    with pytest.raises(ValueError):
        can_read(premium, "gold")
