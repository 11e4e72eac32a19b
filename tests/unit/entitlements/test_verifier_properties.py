"""Property-based: the fast verifier accepts and refuses exactly what PyJWT's
``jwt.decode(..., algorithms=["EdDSA"])`` does with the same keys, and no input crashes it."""

from __future__ import annotations

import contextlib
import time

import jwt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paywall.entitlements.keys import generate_pem, signing_keys
from paywall.entitlements.verifier import AUDIENCE, TokenError, Verifier, session_hash

KEYS = signing_keys([generate_pem(), generate_pem()])
OTHER = signing_keys([generate_pem()])
VERIFIER = Verifier(KEYS.jwks())
PUBLIC = {k.kid: k.private.public_key() for k in KEYS.keys}

claims = st.fixed_dictionaries(
    {
        "sub": st.text(max_size=20),
        "sid": st.text(max_size=20),
        "features": st.lists(st.sampled_from(["premium_content", "notifications", "x"])),
        "iat": st.integers(0, 2**33),
        "exp": st.integers(0, 2**33),
        "aud": st.sampled_from([AUDIENCE, "other"]),
        "cnf": st.fixed_dictionaries({"sth": st.just(session_hash("s"))}),
        "pad": st.text(max_size=400),
    }
)


def reference(token: str) -> tuple[bool, object]:
    """PyJWT with the same rules: EdDSA only, the key named by kid, our audience; times are
    checked apart (``check_times``), so PyJWT's are off here."""
    try:
        header = jwt.get_unverified_header(token)
        kid = header.get("kid")
        if {"jku", "x5u", "jwk", "x5c", "crit"} & header.keys() or header.get(
            "typ", "JWT"
        ) != "JWT":
            return False, None
        decoded = jwt.decode(
            token,
            PUBLIC[kid],
            algorithms=["EdDSA"],
            audience=AUDIENCE,
            options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
        )
    except (jwt.PyJWTError, KeyError, TypeError, ValueError):
        return False, None
    if not isinstance(decoded.get("sub"), str) or not isinstance(decoded.get("sid"), str):
        return False, None
    if not isinstance(decoded.get("aud"), str):
        return False, None  # PyJWT also accepts a list containing ours: we issue a string
    return True, decoded


def fast(token: str) -> tuple[bool, object]:
    try:
        return True, VERIFIER.load(token)
    except TokenError:
        return False, None


def mutate(token: str, data: st.DataObject) -> str:
    if not token:
        return token
    i = data.draw(st.integers(0, len(token) - 1))
    op = data.draw(st.sampled_from(["replace", "delete", "insert", "truncate", "swap_sig"]))
    if op == "replace":
        return token[:i] + data.draw(st.characters(codec="ascii")) + token[i + 1 :]
    if op == "delete":
        return token[:i] + token[i + 1 :]
    if op == "insert":
        return token[:i] + data.draw(st.sampled_from(list("A.=-_x+/\x00é"))) + token[i:]
    if op == "truncate":
        return token[:i]
    body = token.rsplit(".", 1)[0]
    return body + "." + OTHER.sign({"x": 1}).rsplit(".", 1)[1]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(claims, st.sampled_from([0, 1]))
def test_signed_tokens_agree(payload: dict, key_index: int) -> None:
    token = signing_keys([_pem(key_index)]).sign(payload)
    ok, got = fast(token)
    assert (ok, got) == reference(token)
    assert ok == (payload["aud"] == AUDIENCE)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(claims.filter(lambda c: c["aud"] == AUDIENCE), st.data())
def test_tampered_tokens_agree(payload: dict, data: st.DataObject) -> None:
    token = mutate(KEYS.sign(payload), data)
    fast_ok, fast_claims = fast(token)
    ref_ok, ref_claims = reference(token)
    # Never more lenient than PyJWT; stricter only on non-canonical base64url (padding, +, /).
    assert not fast_ok or (ref_ok and fast_claims == ref_claims)
    if ref_ok and not fast_ok:
        assert any(c in token for c in "=+/")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_random_text_never_crashes_and_never_verifies(text: str) -> None:
    accepted, _ = fast(text)
    assert not accepted
    with contextlib.suppress(TokenError):
        VERIFIER.verify(text, session="s", now=time.time())


@settings(max_examples=100, deadline=None)
@given(claims)
def test_other_keys_never_verify(payload: dict) -> None:
    assert fast(OTHER.sign(payload)) == (False, None)


def _pem(index: int) -> str:
    """The PEM of KEYS.keys[index], so a one-key signer signs with the same key."""
    from cryptography.hazmat.primitives import serialization

    return (
        KEYS.keys[index]
        .private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
