"""Check an entitlement token offline. A frontend needs only this file and itsdangerous.

    from paywall.entitlements.verifier import verify, can_read, TokenError
    try:
        claims = verify(token, keys=["<newest key>", "<older key>"])
    except TokenError:
        claims = None
    if can_read(claims, "premium"):
        ...send the premium paragraphs...

Tokens are itsdangerous ``URLSafeSerializer`` tokens (HMAC-SHA256, salt
``paywall.entitlement``). ``Verifier`` checks them on a fast path that derives each key once and
makes one HMAC per key; it accepts and refuses exactly the tokens itsdangerous does
(tests/unit/entitlements/test_verifier_properties.py proves it with hypothesis).

Clock skew: ``exp`` and ``iat`` are checked with ``leeway`` seconds of tolerance (default 120),
so a frontend whose clock is up to two minutes off from the service's agrees with it about every
token; the price is that an offline check accepts a token up to two minutes past its expiry. The
service's own online check uses no leeway (it is the clock that issued the token).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import zlib
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from itsdangerous import BadData, URLSafeSerializer
from itsdangerous.encoding import base64_decode

SALT = "paywall.entitlement"
AUDIENCE = "paywall.article"
DEFAULT_LEEWAY = 120
ACCESS_LEVELS = ("free", "registered", "premium")
PREMIUM_FEATURE = "premium_content"
CACHE_SIZE = 4096  # verified tokens remembered per key set (about 1 KiB each)
MAX_CACHED_TOKEN = 2048  # longer strings are checked but never cached


class TokenError(Exception):
    """The token cannot be trusted; ``reason`` says why."""

    reason = "invalid"


class TokenMalformed(TokenError):
    reason = "malformed"


class TokenBadSignature(TokenError):
    reason = "bad_signature"


class TokenExpired(TokenError):
    reason = "expired"


class TokenWrongPurpose(TokenError):
    reason = "wrong_purpose"


def key_id(key: str) -> str:
    """A short public name for a key, carried in the token's ``kid`` claim."""
    return hashlib.sha256(key.encode()).hexdigest()[:8]


def serializer(keys: list[str]) -> URLSafeSerializer:
    """The itsdangerous serializer: ``keys[0]`` (the newest) signs, every key verifies."""
    # itsdangerous takes keys oldest first and signs with the last one.
    return URLSafeSerializer(
        list(reversed(keys)), salt=SALT, signer_kwargs={"digest_method": hashlib.sha256}
    )


class Verifier:
    """Verifies tokens for a fixed set of keys (newest first)."""

    def __init__(self, keys: Iterable[str]) -> None:
        self.keys = list(keys)
        if not self.keys:
            raise ValueError("at least one key is needed")
        signer = serializer(self.keys).make_signer()
        # itsdangerous's "django-concat" derivation, done once per key instead of per call.
        self._derived = [signer.derive_key(k) for k in reversed(signer.secret_keys)]
        # A reader's token is checked on every page view for its whole lifetime: remember
        # what each verified token string decodes to. Deterministic for a fixed key set, so it
        # changes no answer; expiry is still checked on every call. Failures are not cached.
        self._load_cached = lru_cache(maxsize=CACHE_SIZE)(self._load)

    def verify(
        self,
        token: str | bytes,
        *,
        now: float | None = None,
        leeway: float = DEFAULT_LEEWAY,
        audience: str = AUDIENCE,
    ) -> dict[str, Any]:
        """The token's claims (a new dict each call), or a ``TokenError``."""
        claims = self.load(token)
        checked = check_claims(
            claims, now=time.time() if now is None else now, leeway=leeway, audience=audience
        )
        return dict(checked)

    def load(self, token: str | bytes) -> Any:
        """Signature check and decoding, exactly as ``URLSafeSerializer.loads`` does. The result
        may be shared with other callers: treat it as read-only (``verify`` returns a copy)."""
        if type(token) in (str, bytes) and len(token) <= MAX_CACHED_TOKEN:
            return self._load_cached(token)
        return self._load(token)

    def _load(self, token: str | bytes) -> Any:
        try:
            raw = token.encode("utf-8") if isinstance(token, str) else bytes(token)
        except (UnicodeEncodeError, TypeError) as exc:
            raise TokenMalformed("token is not text") from exc
        value, sep, sig = raw.rpartition(b".")
        if not sep:
            raise TokenBadSignature("no signature")
        try:
            sig_bytes = base64_decode(sig)
        except BadData as exc:
            raise TokenBadSignature("signature is not base64") from exc
        for key in self._derived:
            if hmac.compare_digest(sig_bytes, hmac.digest(key, value, "sha256")):
                break
        else:
            raise TokenBadSignature("signature does not match")
        return _load_payload(value)


def _load_payload(value: bytes) -> Any:
    compressed = value.startswith(b".")
    if compressed:
        value = value[1:]
    try:
        data = base64_decode(value)
    except BadData as exc:
        raise TokenMalformed("payload is not base64") from exc
    if compressed:
        try:
            data = zlib.decompress(data)
        except zlib.error as exc:
            raise TokenMalformed("payload does not decompress") from exc
    try:
        return json.loads(data.decode("utf-8"))
    except ValueError as exc:  # UnicodeDecodeError is a ValueError too
        raise TokenMalformed("payload is not JSON") from exc


def check_claims(claims: Any, *, now: float, leeway: float, audience: str) -> dict[str, Any]:
    if not isinstance(claims, dict):
        raise TokenMalformed("claims are not an object")
    if claims.get("aud") != audience:
        raise TokenWrongPurpose("token is not for this purpose")
    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(exp, int | float) or not isinstance(iat, int | float):
        raise TokenMalformed("exp and iat must be numbers")
    if now >= exp + leeway:
        raise TokenExpired("token has expired")
    if iat > now + leeway:
        raise TokenExpired("token is not valid yet (clock skew)")
    return claims


@lru_cache(maxsize=16)
def _verifier_for(keys: tuple[str, ...]) -> Verifier:
    return Verifier(keys)


def verify(
    token: str | bytes,
    keys: Iterable[str],
    *,
    now: float | None = None,
    leeway: float = DEFAULT_LEEWAY,
    audience: str = AUDIENCE,
) -> dict[str, Any]:
    """Verify ``token`` with ``keys`` (newest first); returns its claims or raises
    ``TokenExpired``, ``TokenBadSignature``, ``TokenWrongPurpose`` or ``TokenMalformed``."""
    return _verifier_for(tuple(keys)).verify(token, now=now, leeway=leeway, audience=audience)


def can_read(claims: Mapping[str, Any] | None, access_level: str) -> bool:
    """May the holder of ``claims`` (None: no valid token) read an article of this level?"""
    if access_level == "free":
        return True
    if access_level == "registered":
        return claims is not None and bool(claims.get("sub"))
    if access_level == "premium":
        return claims is not None and PREMIUM_FEATURE in (claims.get("features") or ())
    raise ValueError(f"unknown access level {access_level!r}; use one of {ACCESS_LEVELS}")
