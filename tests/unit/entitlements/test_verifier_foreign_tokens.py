"""The verifier against tokens its own module did not make (issue 11: it was only ever tested
with tokens from its own signer, so a shared bug in both halves would go unseen).

An independent encoder, written here from the token format (RFC 7515 compact JWS, RFC 8037
EdDSA, signed with ``cryptography`` directly), and a token from a standard JWT library (PyJWT)
must be accepted; tokens of other formats, algorithms and keys carrying the same claims must
not."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from itsdangerous import URLSafeSerializer

from paywall.entitlements.verifier import (
    AUDIENCE,
    TokenBadSignature,
    TokenError,
    session_hash,
    thumbprint,
    verify,
)

PRIVATE = Ed25519PrivateKey.generate()
KID = thumbprint(PRIVATE.public_key())
JWKS = {
    "keys": [
        {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(PRIVATE.public_key()))["x"],
            "kid": KID,
            "alg": "EdDSA",
            "use": "sig",
        }
    ]
}
SESSION = "s" * 43


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "sub": "acc",
        "sid": "sess",
        "features": ["premium_content"],
        "iat": now,
        "exp": now + 300,
        "aud": AUDIENCE,
        "cnf": {"sth": session_hash(SESSION)},
    }
    base.update(changes)
    return base


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def independent_token(payload: dict[str, Any], key: Ed25519PrivateKey = PRIVATE) -> str:
    """The format by hand: b64url(header) "." b64url(JSON) "." b64url(Ed25519(those))."""
    header = b64(json.dumps({"alg": "EdDSA", "kid": KID, "typ": "JWT"}).encode())
    signed = header + "." + b64(json.dumps(payload, separators=(",", ":")).encode())
    return signed + "." + b64(key.sign(signed.encode()))


def test_a_token_made_without_the_module_is_accepted() -> None:
    got = verify(independent_token(claims()), JWKS, session=SESSION)
    assert got["sub"] == "acc" and got["features"] == ["premium_content"]
    # The session hash by hand too: base64url(SHA-256(value)), no padding.
    assert claims()["cnf"]["sth"] == b64(hashlib.sha256(SESSION.encode()).digest())


def test_a_pyjwt_token_with_the_same_key_is_accepted() -> None:
    token = jwt.encode(claims(), PRIVATE, algorithm="EdDSA", headers={"kid": KID})
    assert verify(token, JWKS, session=SESSION)["sid"] == "sess"


def test_an_independent_token_with_another_key_is_refused() -> None:
    with pytest.raises(TokenBadSignature):
        verify(independent_token(claims(), Ed25519PrivateKey.generate()), JWKS, session=SESSION)


@pytest.mark.parametrize("algorithm", ["HS256", "HS512"])
def test_an_hmac_jwt_keyed_with_the_public_key_is_refused(algorithm: str) -> None:
    header = b64(json.dumps({"alg": algorithm, "kid": KID, "typ": "JWT"}).encode())
    signed = header + "." + b64(json.dumps(claims()).encode())
    secret = JWKS["keys"][0]["x"].encode()
    digest = hashlib.sha256 if algorithm == "HS256" else hashlib.sha512
    token = signed + "." + b64(hmac.new(secret, signed.encode(), digest).digest())
    with pytest.raises(TokenError):
        verify(token, JWKS, session=SESSION)


def test_an_es256_jwt_is_refused() -> None:
    token = jwt.encode(
        claims(), ec.generate_private_key(ec.SECP256R1()), algorithm="ES256", headers={"kid": KID}
    )
    with pytest.raises(TokenBadSignature):
        verify(token, JWKS, session=SESSION)


def test_an_unsigned_jwt_is_refused() -> None:
    header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    body = b64(json.dumps(claims()).encode())
    for token in (f"{header}.{body}.", f"{header}.{body}"):
        with pytest.raises(TokenError):
            verify(token, JWKS, session=SESSION)


def test_the_old_itsdangerous_format_is_refused() -> None:
    token = URLSafeSerializer("k" * 64, salt="paywall.entitlement").dumps(claims())
    with pytest.raises(TokenError):
        verify(token, JWKS, session=SESSION)


def test_the_signature_covers_every_byte_of_an_independent_token() -> None:
    token = independent_token(claims())
    header, body, signature = token.split(".")
    other = independent_token(claims(features=["premium_content", "everything"])).split(".")[1]
    for forged in (
        f"{header}.{other}.{signature}",
        f"{header}.{body}.{signature[:-2]}",
        f"{header}.{body}x.{signature}",
    ):
        with pytest.raises(TokenError):
            verify(forged, JWKS, session=SESSION)
