"""The verifier against tokens its own module did not make (issue 11: it was only ever tested
with tokens from ``serializer()``, so a shared bug in both halves would go unseen).

An independent encoder, written here from the token format (itsdangerous's documented
``URLSafeSerializer`` with HMAC-SHA256 and its "django-concat" key derivation), must be
accepted; tokens from other formats and libraries carrying the same claims must not."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest
from itsdangerous import URLSafeSerializer, URLSafeTimedSerializer

from paywall.entitlements.verifier import (
    AUDIENCE,
    SALT,
    TokenBadSignature,
    TokenError,
    TokenMalformed,
    verify,
)

KEY = "k" * 64


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "sub": "acc",
        "sid": "sess",
        "features": ["premium_content"],
        "iat": now,
        "exp": now + 300,
        "aud": AUDIENCE,
    }
    base.update(changes)
    return base


def b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def independent_token(payload: dict[str, Any], key: str = KEY, salt: str = SALT) -> str:
    """The format by hand: base64url(JSON) "." base64url(HMAC-SHA256(derived key, that))."""
    derived = hashlib.sha256(salt.encode() + b"signer" + key.encode()).digest()
    body = b64(json.dumps(payload, separators=(",", ":")).encode())
    signature = b64(hmac.new(derived, body, hashlib.sha256).digest())
    return (body + b"." + signature).decode()


def test_a_token_made_without_the_module_is_accepted() -> None:
    got = verify(independent_token(claims()), [KEY])
    assert got["sub"] == "acc" and got["features"] == ["premium_content"]


def test_an_independent_token_with_another_key_or_salt_is_refused() -> None:
    with pytest.raises(TokenBadSignature):
        verify(independent_token(claims(), key="x" * 40), [KEY])
    with pytest.raises(TokenBadSignature):
        verify(independent_token(claims(), salt="paywall.reset-password"), [KEY])


@pytest.mark.parametrize("algorithm", ["HS256", "HS512"])
def test_a_jwt_with_the_same_key_and_claims_is_refused(algorithm: str) -> None:
    token = jwt.encode(claims(), KEY, algorithm=algorithm)
    with pytest.raises(TokenError):
        verify(token, [KEY])


def test_an_unsigned_jwt_is_refused() -> None:
    header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    body = b64(json.dumps(claims()).encode())
    for token in (f"{header.decode()}.{body.decode()}.", f"{header.decode()}.{body.decode()}"):
        with pytest.raises(TokenError):
            verify(token, [KEY])


def test_itsdangerous_sha1_default_is_refused() -> None:
    token = URLSafeSerializer(KEY, salt=SALT).dumps(claims())  # SHA-1, itsdangerous's default
    with pytest.raises(TokenBadSignature):
        verify(token, [KEY])


def test_a_timed_token_with_the_same_key_and_salt_is_refused() -> None:
    """A link-style token (payload.timestamp.signature) signed with the same derived key."""
    token = URLSafeTimedSerializer(
        KEY, salt=SALT, signer_kwargs={"digest_method": hashlib.sha256}
    ).dumps(claims())
    with pytest.raises(TokenMalformed):
        verify(token, [KEY])


def test_the_signature_covers_every_byte_of_an_independent_token() -> None:
    token = independent_token(claims())
    body, signature = token.split(".")
    other = independent_token(claims(features=["premium_content", "everything"])).split(".")[0]
    for forged in (f"{other}.{signature}", f"{body}.{signature[:-1]}", f"{body}x.{signature}"):
        with pytest.raises(TokenError):
            verify(forged, [KEY])
