"""Rate limits on login, sign-up, reset and password change, counted with ``limits`` (the library
under Flask-Limiter) in the shared store (Redis) and, while that store is down, in the process.

Rules:
- Only submissions count: a GET of a form never touches a counter, and a request without an
  email never shares a per-account key.
- Every attempt is charged *before* the password is checked (reserve, then verify), so a burst
  cannot pass the limit; a correct password hands its charge back.
- Per account, attempts from unknown devices share one counter, while a browser that signed in to
  that account before (its signed device cookie, OWASP's "device cookie" approach) has its own:
  an attacker's failures do not lock the owner out of a known device.
- One normalisation for the limiter and the account lookup (``normalise_email``).

Flask-Limiter's own in-memory fallback replaces a route's limits by one global fallback list, so
the route limits would vanish while Redis is down; here the same limits are counted in the
process instead, and the switch is logged.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar

from flask import Flask, Response, current_app, g, request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter

from paywall import metrics
from paywall.errors import PaywallError

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])
RETRY_STORE_AFTER = 15.0  # seconds before the shared store is tried again after a failure
DEVICE_COOKIE_MAX_AGE = 365 * 24 * 3600


class RateLimited(PaywallError):
    code, status = "rate_limited", 429
    message = "Too many attempts. Wait a little and try again."

    def __init__(self, retry_after: int) -> None:
        super().__init__()
        self.retry_after = max(1, retry_after)


@dataclass(frozen=True)
class Charge:
    """One unit taken from a counter; ``refund`` gives it back."""

    storage: Storage
    item: RateLimitItem
    key: str


class Throttle:
    """Fixed-window counters in the shared store, or in the process while it is down."""

    def __init__(self, storage_uri: str, enabled: bool) -> None:
        self.enabled = enabled
        shared = storage_from_string(storage_uri) if enabled else MemoryStorage()
        assert isinstance(shared, Storage)  # noqa: S101 - a synchronous store, never limits.aio
        self.shared: Storage = shared
        self.local = MemoryStorage()
        self.shared_is_local = storage_uri.startswith("memory://")
        self._down_since: float | None = None
        self._lock = threading.Lock()

    @property
    def using_fallback(self) -> bool:
        return self._down_since is not None

    def _storage(self) -> Storage:
        with self._lock:
            down = self._down_since
        if down is not None and time.monotonic() - down < RETRY_STORE_AFTER:
            return self.local
        return self.shared

    def _mark(self, storage: Storage, ok: bool, error: Exception | None = None) -> None:
        if storage is self.local:
            return
        with self._lock:
            if ok and self._down_since is not None:
                log.warning("rate-limit store reachable again", extra={"event": "ratelimit_up"})
                self._down_since = None
            elif not ok:
                if self._down_since is None:
                    log.warning(
                        "rate-limit store unreachable: counting in this process",
                        extra={"event": "ratelimit_fallback", "error": repr(error)},
                    )
                self._down_since = time.monotonic()

    def charge(self, limit: str, scope: str, key: str) -> Charge:
        """Take one from ``scope``/``key`` or raise ``RateLimited`` if none is left."""
        item = parse(limit)
        storage = self._storage()
        try:
            allowed, reset = self._hit(storage, item, scope, key)
        except Exception as exc:  # noqa: BLE001 - any store failure: count in the process
            self._mark(storage, ok=False, error=exc)
            storage = self.local
            allowed, reset = self._hit(storage, item, scope, key)
        else:
            self._mark(storage, ok=True)
        if not allowed:
            log.info("rate limited", extra={"event": "rate_limited", "scope": scope})
            metrics.RATE_LIMITED.labels(scope).inc()
            raise RateLimited(int(reset - time.time()))
        return Charge(storage, item, item.key_for(scope, key))

    def refund(self, charge: Charge) -> None:
        try:
            charge.storage.incr(charge.key, charge.item.get_expiry(), amount=-1)
        except Exception:  # noqa: BLE001 - a lost refund only makes the limit stricter
            log.warning("rate-limit refund lost", exc_info=True)

    @staticmethod
    def _hit(storage: Storage, item: RateLimitItem, scope: str, key: str) -> tuple[bool, float]:
        strategy = FixedWindowRateLimiter(storage)
        allowed = strategy.hit(item, scope, key)
        reset = strategy.get_window_stats(item, scope, key).reset_time if not allowed else 0.0
        return allowed, reset

    def check_store(self) -> str:
        """``ok``, ``unreachable`` or ``in_process`` (memory:// configured), for /readyz."""
        if self.shared_is_local or not self.enabled:
            return "in_process"
        try:
            return "ok" if self.shared.check() else "unreachable"
        except Exception:  # noqa: BLE001 - readiness reports, never raises
            return "unreachable"


def throttle() -> Throttle:
    return current_app.extensions["paywall.throttle"]  # type: ignore[no-any-return]


def _enabled() -> bool:
    return bool(current_app.config["RATELIMIT_ENABLED"])


def client_address() -> str:
    """The client's address: the TCP peer, or N hops into X-Forwarded-For when
    ``PAYWALL_TRUSTED_PROXY_COUNT`` is N (werkzeug's ProxyFix has already applied it)."""
    return request.remote_addr or "-"


def account_key(email: str | None) -> str | None:
    """The per-account key for a typed address, normalised exactly as the account lookup does;
    None without an address (such requests never share a key)."""
    from paywall.accounts.passwords import email_hash

    if not email or not str(email).strip():
        return None
    return email_hash(str(email), current_app.config["SECRET_KEY"])


def _submitted_email() -> str | None:
    data = request.get_json(silent=True) if request.is_json else request.form
    email = data.get("email") if data is not None and hasattr(data, "get") else None
    return str(email) if isinstance(email, str) else None


def _charge(setting: str, scope: str, key: str | None) -> Charge | None:
    if key is None or not _enabled():
        return None
    return throttle().charge(str(current_app.config[setting]), scope, key)


def per_address(setting: str, scope: str) -> Callable[[F], F]:
    """Count every POST of the view per client address."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if request.method == "POST":
                _charge(setting, scope, client_address())
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def per_account(setting: str, scope: str) -> Callable[[F], F]:
    """Count every POST of the view per account (the submitted email)."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if request.method == "POST":
                _charge(setting, scope, account_key(_submitted_email()))
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


# -- login --------------------------------------------------------------------------------
def _device_cookies() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="paywall.device-cookie")


def _known_device(key: str) -> str | None:
    """The nonce of this browser's device cookie if it signed in to the account ``key``."""
    raw = request.cookies.get(current_app.config["DEVICE_TRUST_COOKIE_NAME"])
    if not raw or len(raw) > 300:
        return None
    try:
        data = _device_cookies().loads(raw, max_age=DEVICE_COOKIE_MAX_AGE)
    except BadSignature:
        return None
    if not isinstance(data, dict) or data.get("a") != key or not isinstance(data.get("n"), str):
        return None
    return str(data["n"])


@contextmanager
def login_attempt(email: str) -> Iterator[None]:
    """Charge a login attempt before the password is checked; a correct password (the block
    ends without ``InvalidCredentials``) gives the account's charge back and marks this
    browser as a known device of the account."""
    from paywall.accounts.services import InvalidCredentials

    key = account_key(email)
    charge = None
    if key is not None:
        nonce = _known_device(key)
        if nonce is not None:
            charge = _charge("LOGIN_LIMIT_PER_DEVICE", "login-device", nonce)
        else:
            charge = _charge("LOGIN_LIMIT_PER_ACCOUNT", "login-account", key)
    try:
        yield
    except InvalidCredentials:
        raise
    except BaseException:
        if charge is not None:
            throttle().refund(charge)
        raise
    if charge is not None:
        throttle().refund(charge)
    if key is not None:
        g.trusted_device = key


def password_change_attempt(account_id: str, session_id: str) -> None:
    """Charge every password-change attempt (the current password is an oracle otherwise),
    per session and per account."""
    _charge("PASSWORD_CHANGE_LIMIT_PER_SESSION", "password-session", session_id)
    _charge("PASSWORD_CHANGE_LIMIT_PER_ACCOUNT", "password-account", account_id)


def init_app(app: Flask) -> None:
    cfg = app.config
    app.extensions["paywall.throttle"] = Throttle(
        str(cfg["RATELIMIT_STORAGE_URI"] or "memory://"), bool(cfg["RATELIMIT_ENABLED"])
    )

    @app.after_request
    def set_device_cookie(response: Response) -> Response:
        key = g.pop("trusted_device", None)
        if key is not None and response.status_code < 400:
            value = _device_cookies().dumps({"a": key, "n": secrets.token_urlsafe(16)})
            response.set_cookie(
                cfg["DEVICE_TRUST_COOKIE_NAME"],
                value,
                max_age=DEVICE_COOKIE_MAX_AGE,
                secure=bool(cfg["SESSION_COOKIE_SECURE"]),
                httponly=True,
                samesite="Lax",
                path="/",
            )
        return response
