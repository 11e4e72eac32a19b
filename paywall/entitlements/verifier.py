"""Check an entitlement token offline. A frontend needs only this file, PyJWT and cryptography.

    from paywall.entitlements.verifier import RemoteKeys, TokenError, can_read

    keys = RemoteKeys("https://paywall.example/.well-known/jwks.json")   # cached 5 minutes
    try:
        claims = keys.verifier().verify(token, session=session_cookie_value)
    except TokenError:
        claims = None
    if can_read(claims, "premium"):
        ...send the premium paragraphs...

Tokens are compact JWS (RFC 7515) signed with Ed25519: header ``{"alg": "EdDSA", "kid", "typ":
"JWT"}``. Only ``EdDSA`` is accepted: ``alg: none``, HS256 (keyed with the public key or
anything else) and every other algorithm are refused, and so is any token whose header carries
``jku``, ``x5u``, ``jwk``, ``x5c`` or ``crit`` (keys come only from the caller, never from the
token). ``Verifier`` checks a token on a fast path: one Ed25519 verify (the ``cryptography``
call) plus JSON decoding; it accepts exactly what ``jwt.decode(..., algorithms=["EdDSA"])``
accepts with the same keys and claims rules (tests/unit/entitlements/test_verifier_properties.py
proves it with hypothesis), and remembers tokens it has verified, so a reader's token checked on
every page view costs a dictionary look-up and the time checks.

Session binding: ``cnf.sth`` is base64url(SHA-256(device session value)), the session the token
was issued for. ``verify(token, session=...)`` refuses the token unless the caller presents that
session value (``TokenWrongSession``): a token copied without its session cookie is useless.

Clock skew: ``exp`` and ``iat`` are checked with ``leeway`` seconds of tolerance (default 120 for
an offline frontend, a setting); the service's own online checks use 5 s.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

import jwt
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

ALGORITHM = "EdDSA"
AUDIENCE = "paywall.article"
DEFAULT_LEEWAY = 120
ACCESS_LEVELS = ("free", "registered", "premium")
PREMIUM_FEATURE = "premium_content"
CACHE_SIZE = 4096  # verified tokens remembered per key set (about 1 KiB each)
MAX_TOKEN = 4096  # longer strings are refused unread
#: Header parameters that would let a token choose its own key or rules: refused outright.
REFUSED_HEADERS = frozenset({"jku", "x5u", "jwk", "x5c", "crit"})
JWKS_MAX_AGE = 300


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


class KeysUnavailable(TokenError):
    """The service's public keys could not be fetched (and none are cached)."""

    reason = "keys_unavailable"


class TokenRevoked(TokenError):
    """The token's session ended, or its account lost access since it was issued (the
    revocation feed: ``verify(..., revocations=watcher)``)."""

    reason = "revoked"


class TokenWrongSession(TokenError):
    """The token is genuine but was not presented with the session it was issued for."""

    reason = "wrong_session"


def session_hash(session_value: str) -> str:
    """``cnf.sth``: base64url (no padding) of SHA-256 of the device session value."""
    digest = hashlib.sha256(session_value.encode("utf-8", "surrogatepass")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def thumbprint(key: Ed25519PublicKey) -> str:
    """RFC 7638 JWK thumbprint of an Ed25519 public key: its default ``kid``."""
    x = base64.urlsafe_b64encode(_raw(key)).rstrip(b"=").decode("ascii")
    canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def public_keys(keys: Any) -> dict[str, Ed25519PublicKey]:
    """kid -> key from a JWKS (``{"keys": [...]}``), a list of JWKs, or ``{kid: key}``.
    Keys that are not Ed25519 signing keys are skipped (a JWKS may hold others)."""
    if isinstance(keys, Mapping) and "keys" in keys:
        keys = keys["keys"]
    if isinstance(keys, Mapping):
        found = {str(k): v for k, v in keys.items() if isinstance(v, Ed25519PublicKey)}
    else:
        found = {}
        for jwk in keys:
            if not isinstance(jwk, Mapping) or jwk.get("kty") != "OKP":
                continue
            if jwk.get("crv") != "Ed25519" or jwk.get("use", "sig") != "sig" or "d" in jwk:
                continue
            if jwk.get("alg", ALGORITHM) != ALGORITHM:
                continue
            key = jwt.PyJWK(dict(jwk), algorithm=ALGORITHM).key
            found[str(jwk.get("kid") or thumbprint(key))] = key
    if not found:
        raise ValueError("no Ed25519 public key given")
    return found


_STD_ALPHABET = bytes.maketrans(b"-_", b"+/")


def _b64decode(segment: bytes) -> bytes:
    """Strict base64url without padding (RFC 7515 §2)."""
    if b"+" in segment or b"/" in segment or b"=" in segment:
        raise TokenMalformed("not base64url")
    try:
        return binascii.a2b_base64(
            segment.translate(_STD_ALPHABET) + b"=" * (-len(segment) % 4), strict_mode=True
        )
    except binascii.Error as exc:
        raise TokenMalformed("not base64url") from exc


class Verifier:
    """Verifies tokens for a fixed set of public keys."""

    def __init__(self, keys: Any, *, issuer: str | None = None, audience: str = AUDIENCE) -> None:
        self.keys = public_keys(keys)
        self.issuer = issuer
        self.audience = audience
        # A reader's token is checked on every page view for its whole lifetime: remember what
        # each verified token decodes to (the signature and the time-independent claims). It
        # changes no answer; time and session are checked on every call. Failures are not cached.
        self._load_cached = lru_cache(maxsize=CACHE_SIZE)(self._load)
        self._key_for = lru_cache(maxsize=64)(self._key_for_header)

    def verify(
        self,
        token: str | bytes,
        *,
        session: str | None,
        now: float | None = None,
        leeway: float = DEFAULT_LEEWAY,
        revocations: Any = None,
    ) -> dict[str, Any]:
        """The token's claims (a new dict each call), or a ``TokenError``. ``session`` is the
        device session value the token came with (the ``paywall_session`` cookie).
        ``revocations`` (a ``RevocationWatcher``, or anything with ``is_revoked(sub, sid,
        iat)``) refuses a revoked token with ``TokenRevoked``."""
        claims = self.load(token)
        check_times(claims, now=time.time() if now is None else now, leeway=leeway)
        if session is None or not hmac.compare_digest(
            _session_hash_cached(session), claims["cnf"]["sth"]
        ):
            raise TokenWrongSession("the token was not issued for this session")
        if revocations is not None:
            reason = revocations.is_revoked(str(claims["sub"]), str(claims["sid"]), claims["iat"])
            if reason is not None:
                raise TokenRevoked(str(reason))
        return _copy(claims)

    def load(self, token: str | bytes) -> dict[str, Any]:
        """Signature and time-independent claims checked; no expiry or session check. The
        result may be shared with other callers: treat it as read-only."""
        if type(token) in (str, bytes) and len(token) <= MAX_TOKEN:
            return self._load_cached(token)  # type: ignore[no-any-return]
        return self._load(token)

    def _load(self, token: str | bytes) -> dict[str, Any]:
        try:
            raw = token.encode("ascii") if isinstance(token, str) else bytes(token)
        except (UnicodeEncodeError, TypeError) as exc:
            raise TokenMalformed("token is not ASCII text") from exc
        if len(raw) > MAX_TOKEN:
            raise TokenMalformed("token is too long")
        signed, _, sig = raw.rpartition(b".")
        header, dot, payload = signed.partition(b".")
        if not dot or b"." in payload:
            raise TokenMalformed("not a compact JWS")
        key = self._key_for(header)
        try:
            key.verify(_b64decode(sig), signed)
        except InvalidSignature as exc:
            raise TokenBadSignature("signature does not match") from exc
        try:
            claims = json.loads(_b64decode(payload))
        except ValueError as exc:  # UnicodeDecodeError is a ValueError too
            raise TokenMalformed("payload is not JSON") from exc
        return check_static(claims, issuer=self.issuer, audience=self.audience)

    def _key_for_header(self, segment: bytes) -> Ed25519PublicKey:
        try:
            header = json.loads(_b64decode(segment))
        except ValueError as exc:
            raise TokenMalformed("header is not JSON") from exc
        if not isinstance(header, dict):
            raise TokenMalformed("header is not an object")
        if header.get("alg") != ALGORITHM:
            raise TokenBadSignature(f"algorithm {header.get('alg')!r} is not accepted")
        if REFUSED_HEADERS & header.keys():
            raise TokenBadSignature("the token names its own key or critical extensions")
        if header.get("typ", "JWT") != "JWT":
            raise TokenWrongPurpose("not a JWT")
        kid = header.get("kid")
        key = self.keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise TokenBadSignature("unknown key id")
        return key

    def knows(self, token: str) -> bool:
        """Is the token's ``kid`` one of this verifier's keys? (False also for junk.)"""
        try:
            header = json.loads(_b64decode(token.split(".", 1)[0].encode("ascii")))
            return isinstance(header, dict) and header.get("kid") in self.keys
        except (TokenError, ValueError, UnicodeEncodeError):
            return False


def _copy(claims: dict[str, Any]) -> dict[str, Any]:
    """A copy the caller may change without changing what the cache holds."""
    out = dict(claims)
    for name, value in out.items():
        if type(value) is list:
            out[name] = list(value)
        elif type(value) is dict:
            out[name] = dict(value)
    return out


@lru_cache(maxsize=CACHE_SIZE)
def _session_hash_cached(session_value: str) -> str:
    return session_hash(session_value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_static(claims: Any, *, issuer: str | None, audience: str) -> dict[str, Any]:
    """The claims rules that do not depend on the time or the caller."""
    if not isinstance(claims, dict):
        raise TokenMalformed("claims are not an object")
    if claims.get("aud") != audience:
        raise TokenWrongPurpose("token is not for this purpose")
    if issuer is not None and claims.get("iss") != issuer:
        raise TokenWrongPurpose("token is from another issuer")
    if not _is_number(claims.get("exp")) or not _is_number(claims.get("iat")):
        raise TokenMalformed("exp and iat must be numbers")
    if "nbf" in claims and not _is_number(claims["nbf"]):
        raise TokenMalformed("nbf must be a number")
    if not isinstance(claims.get("sub"), str) or not isinstance(claims.get("sid"), str):
        raise TokenMalformed("sub and sid must be strings")
    cnf = claims.get("cnf")
    if not isinstance(cnf, dict) or not isinstance(cnf.get("sth"), str):
        raise TokenMalformed("the token is not bound to a session (cnf.sth)")
    return claims


def check_times(claims: Mapping[str, Any], *, now: float, leeway: float) -> None:
    if now >= claims["exp"] + leeway:
        raise TokenExpired("token has expired")
    if claims["iat"] > now + leeway or claims.get("nbf", 0) > now + leeway:
        raise TokenExpired("token is not valid yet (clock skew)")


class RemoteKeys:
    """The service's JWKS, fetched from ``url`` and kept at most ``max_age`` seconds (PyJWT's
    ``PyJWKClient``). When the service cannot be reached the last keys stay in use; a token with
    an unknown ``kid`` triggers one early refetch (PyJWKClient rate-limits those)."""

    def __init__(
        self,
        url: str,
        *,
        issuer: str | None = None,
        max_age: float = JWKS_MAX_AGE,
        timeout: float = 3.0,
    ) -> None:
        self.client = jwt.PyJWKClient(url, cache_jwk_set=True, lifespan=max_age, timeout=timeout)
        self.issuer = issuer
        self._lock = threading.Lock()
        self._current: tuple[tuple[tuple[str, bytes], ...], Verifier] | None = None

    def verifier(self, *, refresh: bool = False) -> Verifier:
        try:
            jwk_set = self.client.get_jwk_set(refresh=refresh)
        except (jwt.PyJWKClientError, jwt.PyJWKSetError) as exc:
            if self._current is None:
                raise KeysUnavailable("the service's JWKS cannot be fetched") from exc
            return self._current[1]
        keys = {
            str(k.key_id): k.key
            for k in jwk_set.keys
            if isinstance(k.key, Ed25519PublicKey) and k.key_id
        }
        ident = tuple(sorted((kid, _raw(key)) for kid, key in keys.items()))
        with self._lock:
            if self._current is None or self._current[0] != ident:
                self._current = (ident, Verifier(keys, issuer=self.issuer))
            return self._current[1]

    def verify(
        self,
        token: str,
        *,
        session: str | None,
        leeway: float = DEFAULT_LEEWAY,
        revocations: Any = None,
    ) -> dict[str, Any]:
        verifier = self.verifier()
        if not verifier.knows(token):
            verifier = self.verifier(refresh=True)
        return verifier.verify(token, session=session, leeway=leeway, revocations=revocations)


@lru_cache(maxsize=16)
def _verifier_for(keys: str, issuer: str | None) -> Verifier:
    return Verifier(json.loads(keys), issuer=issuer)


def verify(
    token: str | bytes,
    jwks: Mapping[str, Any] | Iterable[Mapping[str, Any]],
    *,
    session: str | None,
    now: float | None = None,
    leeway: float = DEFAULT_LEEWAY,
    issuer: str | None = None,
    revocations: Any = None,
) -> dict[str, Any]:
    """Verify ``token`` with the public keys of ``jwks`` against the device ``session`` value it
    came with; returns its claims or raises ``TokenExpired``, ``TokenBadSignature``,
    ``TokenWrongPurpose``, ``TokenWrongSession``, ``TokenMalformed`` or (with
    ``revocations``, a ``RevocationWatcher``) ``TokenRevoked``."""
    canonical = json.dumps(jwks if isinstance(jwks, Mapping) else list(jwks), sort_keys=True)
    return _verifier_for(canonical, issuer).verify(
        token, session=session, now=now, leeway=leeway, revocations=revocations
    )


def can_read(claims: Mapping[str, Any] | None, access_level: str) -> bool:
    """May the holder of ``claims`` (None: no valid token) read an article of this level?"""
    if access_level == "free":
        return True
    if access_level == "registered":
        return claims is not None and bool(claims.get("sub"))
    if access_level == "premium":
        return claims is not None and PREMIUM_FEATURE in (claims.get("features") or ())
    raise ValueError(f"unknown access level {access_level!r}; use one of {ACCESS_LEVELS}")
