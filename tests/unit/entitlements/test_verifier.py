"""The offline verifier: what a frontend runs before sending premium text."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest

from paywall.entitlements.keys import generate_pem, signing_keys
from paywall.entitlements.verifier import (
    AUDIENCE,
    TokenBadSignature,
    TokenExpired,
    TokenMalformed,
    TokenWrongPurpose,
    TokenWrongSession,
    Verifier,
    can_read,
    session_hash,
    verify,
)

NEW, OLD = signing_keys([generate_pem()]), signing_keys([generate_pem()])
SESSION = "the-device-session-value"
ISSUER = "https://paywall.test"


def make(keys=NEW, session: str = SESSION, **claims: object) -> str:
    now = int(time.time())
    base = {
        "iss": ISSUER,
        "sub": "acc",
        "aud": AUDIENCE,
        "sid": "sess",
        "plan": "premium_monthly",
        "features": ["premium_content"],
        "max_devices": 5,
        "iat": now,
        "exp": now + 300,
        "jti": "j1",
        "cnf": {"sth": session_hash(session)},
    }
    base.update(claims)
    return keys.sign(base)


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_valid_token_returns_claims_and_its_header_is_eddsa() -> None:
    token = make()
    claims = verify(token, NEW.jwks(), session=SESSION, issuer=ISSUER)
    assert claims["sub"] == "acc" and claims["features"] == ["premium_content"]
    assert jwt.get_unverified_header(token) == {
        "alg": "EdDSA",
        "kid": NEW.keys[0].kid,
        "typ": "JWT",
    }
    # A standard JWT library agrees (what a non-Python frontend would run).
    key = jwt.PyJWK(NEW.jwks()["keys"][0]).key
    assert jwt.decode(token, key, algorithms=["EdDSA"], audience=AUDIENCE)["sid"] == "sess"


def test_jwks_is_okp_with_kid_alg_use_and_no_private_part() -> None:
    (jwk,) = NEW.jwks()["keys"]
    assert jwk["kty"] == "OKP" and jwk["crv"] == "Ed25519"
    assert jwk["alg"] == "EdDSA" and jwk["use"] == "sig" and jwk["kid"]
    assert "d" not in jwk


def test_the_token_works_only_with_its_session() -> None:
    token = make()
    with pytest.raises(TokenWrongSession):
        verify(token, NEW.jwks(), session="anything")
    with pytest.raises(TokenWrongSession):
        verify(token, NEW.jwks(), session=None)
    with pytest.raises(TokenMalformed):  # a token without cnf is not ours
        verify(make(cnf=None), NEW.jwks(), session=SESSION)


def test_tampered_token_is_refused() -> None:
    token = make()
    header, payload, sig = token.split(".")
    forged = make(features=["premium_content", "everything"]).split(".")[1]
    with pytest.raises(TokenBadSignature):
        verify(f"{header}.{forged}.{sig}", NEW.jwks(), session=SESSION)
    flipped = ("A" if sig[0] != "A" else "B") + sig[1:]
    with pytest.raises(TokenBadSignature):
        verify(f"{header}.{payload}.{flipped}", NEW.jwks(), session=SESSION)


def test_other_key_is_refused() -> None:
    with pytest.raises(TokenBadSignature):
        verify(make(OLD), NEW.jwks(), session=SESSION)


def test_alg_none_is_refused() -> None:
    token = make()
    _, payload, _ = token.split(".")
    for header in ({"alg": "none", "typ": "JWT"}, {"alg": "none", "kid": NEW.keys[0].kid}):
        with pytest.raises(TokenBadSignature):
            verify(f"{b64(header)}.{payload}.", NEW.jwks(), session=SESSION)


def test_hs256_keyed_with_the_public_key_is_refused() -> None:
    """The classic algorithm confusion: an HMAC over the token keyed with the public key's bytes
    (raw, as the JWK's x, or as PEM)."""
    from cryptography.hazmat.primitives import serialization

    claims = jwt.decode(make(), options={"verify_signature": False})
    public = NEW.keys[0].private.public_key()
    candidates = [
        public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw),
        NEW.jwks()["keys"][0]["x"].encode(),
        public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    ]
    import hashlib
    import hmac

    for secret in candidates:
        signed = f"{b64({'alg': 'HS256', 'typ': 'JWT', 'kid': NEW.keys[0].kid})}.{b64(claims)}"
        mac = hmac.digest(secret, signed.encode(), hashlib.sha256)
        forged = signed + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
        with pytest.raises(TokenBadSignature):
            verify(forged, NEW.jwks(), session=SESSION)


@pytest.mark.parametrize("param", ["jku", "x5u", "jwk", "x5c", "crit"])
def test_tokens_that_name_their_own_keys_are_refused(param: str) -> None:
    value = {"jwk": NEW.jwks()["keys"][0], "x5c": ["MIIB"], "crit": ["exp"]}.get(
        param, "https://attacker.example/jwks.json"
    )
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": "acc",
        "aud": AUDIENCE,
        "sid": "s",
        "features": ["premium_content"],
        "iat": now,
        "exp": now + 300,
        "cnf": {"sth": session_hash(SESSION)},
    }
    token = jwt.encode(
        claims,
        NEW.keys[0].private,
        algorithm="EdDSA",
        headers={"kid": NEW.keys[0].kid, param: value},
    )
    with pytest.raises(TokenBadSignature):
        verify(token, NEW.jwks(), session=SESSION)


def test_expired_token_is_refused_after_the_leeway() -> None:
    now = int(time.time())
    token = make(iat=now - 400, exp=now - 100)
    assert verify(token, NEW.jwks(), session=SESSION)["sub"] == "acc"  # default 120 s leeway
    with pytest.raises(TokenExpired):
        verify(token, NEW.jwks(), session=SESSION, leeway=60)
    with pytest.raises(TokenExpired):
        verify(make(iat=now - 500, exp=now - 121), NEW.jwks(), session=SESSION)
    with pytest.raises(TokenExpired):  # issued in the future beyond the leeway
        verify(make(iat=now + 10, exp=now + 310), NEW.jwks(), session=SESSION, leeway=5)


def test_wrong_purpose_or_issuer_is_refused() -> None:
    with pytest.raises(TokenWrongPurpose):
        verify(make(aud="something.else"), NEW.jwks(), session=SESSION)
    with pytest.raises(TokenWrongPurpose):
        verify(make(iss="https://other.test"), NEW.jwks(), session=SESSION, issuer=ISSUER)


@pytest.mark.parametrize(
    "garbage", ["", ".", "abc", "a.b.c", "!!!.###.$$$", "x" * 5000, "a.b.c.d", "é.é.é"]
)
def test_malformed_tokens_raise_typed_errors(garbage: str) -> None:
    with pytest.raises((TokenBadSignature, TokenMalformed)):
        verify(garbage, NEW.jwks(), session=SESSION)


def test_rotation_old_tokens_stay_valid_while_their_key_is_published() -> None:
    both = signing_keys([NEW_PEM := generate_pem(), OLD_PEM := generate_pem()])
    old_only = signing_keys([OLD_PEM])
    old_token, new_token = make(old_only), make(both)
    assert jwt.get_unverified_header(new_token)["kid"] == signing_keys([NEW_PEM]).keys[0].kid
    assert verify(old_token, both.jwks(), session=SESSION)["sub"] == "acc"
    assert verify(new_token, both.jwks(), session=SESSION)["sub"] == "acc"
    with pytest.raises(TokenBadSignature):
        verify(old_token, signing_keys([NEW_PEM]).jwks(), session=SESSION)


def test_a_repeated_token_is_still_checked_for_time_and_session() -> None:
    verifier = Verifier(NEW.jwks())
    now = int(time.time())
    token = make(iat=now, exp=now + 10)
    assert verifier.verify(token, session=SESSION, now=now)["sub"] == "acc"
    with pytest.raises(TokenExpired):
        verifier.verify(token, session=SESSION, now=now + 11, leeway=0)
    with pytest.raises(TokenWrongSession):
        verifier.verify(token, session="other", now=now)
    verifier.verify(token, session=SESSION, now=now)["features"].append("mutated")
    assert verifier.verify(token, session=SESSION, now=now)["features"] == ["premium_content"]


def test_can_read_by_access_level() -> None:
    premium = verify(make(), NEW.jwks(), session=SESSION)
    free = verify(make(features=[], plan=None), NEW.jwks(), session=SESSION)
    assert can_read(None, "free") and can_read(free, "free")
    assert not can_read(None, "registered") and can_read(free, "registered")
    assert not can_read(None, "premium") and not can_read(free, "premium")
    assert can_read(premium, "premium")
    with pytest.raises(ValueError):
        can_read(premium, "gold")
