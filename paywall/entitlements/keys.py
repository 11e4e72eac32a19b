"""The entitlement signing keys and the one module that signs with the JOSE library (PyJWT).

``PAYWALL_ENTITLEMENT_SIGNING_KEYS`` lists Ed25519 private keys, each a PKCS#8 PEM string or an
OKP JWK (RFC 8037) with ``d``; the first signs, every one is published at
``/.well-known/jwks.json``. A key's ``kid`` is its RFC 7638 thumbprint unless its JWK names one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

from paywall.entitlements.verifier import ALGORITHM, thumbprint

DEMO_KEY_FILE = "entitlement_signing_key.pem"


class SigningKeyError(ValueError):
    """A configured signing key is not an Ed25519 private key."""


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private: Ed25519PrivateKey

    def public_jwk(self) -> dict[str, str]:
        jwk = json.loads(OKPAlgorithm.to_jwk(self.private.public_key()))
        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": jwk["x"],
            "kid": self.kid,
            "alg": ALGORITHM,
            "use": "sig",
        }


@dataclass(frozen=True)
class SigningKeys:
    """Newest first: ``keys[0]`` signs, all are published."""

    keys: tuple[SigningKey, ...]

    def sign(self, claims: Mapping[str, Any]) -> str:
        current = self.keys[0]
        return jwt.encode(
            dict(claims), current.private, algorithm=ALGORITHM, headers={"kid": current.kid}
        )

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [key.public_jwk() for key in self.keys]}


def load_signing_key(entry: Any) -> SigningKey:
    """One setting entry: a PKCS#8 PEM string, a JWK (object or JSON text)."""
    jwk: dict[str, Any] | None = None
    private: object
    if isinstance(entry, Mapping):
        jwk = dict(entry)
    elif isinstance(entry, str) and entry.lstrip().startswith("{"):
        try:
            jwk = json.loads(entry)
        except ValueError as exc:
            raise SigningKeyError("a signing key is neither PEM nor a JSON JWK") from exc
    if jwk is not None:
        if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519" or "d" not in jwk:
            raise SigningKeyError("a signing key JWK must be an Ed25519 private key (OKP, d)")
        private = OKPAlgorithm.from_jwk(jwk)
        kid = str(jwk.get("kid") or "")
    elif isinstance(entry, str):
        try:
            private = serialization.load_pem_private_key(entry.encode(), password=None)
        except ValueError as exc:
            raise SigningKeyError("a signing key is not a PKCS#8 PEM private key") from exc
        kid = ""
    else:
        raise SigningKeyError("a signing key must be a PEM string or a JWK object")
    if not isinstance(private, Ed25519PrivateKey):
        raise SigningKeyError("entitlement signing keys must be Ed25519 private keys")
    return SigningKey(kid or thumbprint(private.public_key()), private)


def signing_keys(entries: Iterable[Any]) -> SigningKeys:
    """Parse the setting once per distinct value (entries are PEM text or JWK objects)."""
    return _parsed(tuple(_canonical(e) for e in entries))


def _canonical(entry: Any) -> str:
    return json.dumps(dict(entry), sort_keys=True) if isinstance(entry, Mapping) else str(entry)


@lru_cache(maxsize=8)
def _parsed(entries: tuple[str, ...]) -> SigningKeys:
    if not entries:
        raise SigningKeyError("no entitlement signing key")
    keys = tuple(load_signing_key(e) for e in entries)
    if len({k.kid for k in keys}) != len(keys):
        raise SigningKeyError("two entitlement signing keys have the same kid")
    return SigningKeys(keys)


def generate_pem() -> str:
    """A new Ed25519 private key as PKCS#8 PEM (``flask entitlements new-key``)."""
    return (
        Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )


def demo_signing_key(instance_path: str) -> str:
    """Demo mode only: the key kept in ``instance/`` (created once, readable by its owner only;
    written to a temporary file and linked into place, so no process reads a half-written key)."""
    path = Path(instance_path) / DEMO_KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{DEMO_KEY_FILE}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(generate_pem())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process made it first: use theirs
        finally:
            tmp.unlink()
    return path.read_text()


if __name__ == "__main__":  # python -m paywall.entitlements.keys: a new key, no app config needed
    print(json.dumps(generate_pem()))
