"""Configuration: defaults, then ``PAYWALL_*`` environment variables, then a test's overrides.

Every setting is ``PAYWALL_`` plus the Flask or extension key it feeds (``PAYWALL_SECRET_KEY``,
``PAYWALL_RATELIMIT_ENABLED``) or one of the service's own names listed in ``DEFAULTS``.
Values are parsed as JSON where they can be (``PAYWALL_MAX_DEVICES=3``), as Flask's
``from_prefixed_env`` does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from paywall.instance import instance_secret, private_file

#: The old published demo secret: refused everywhere (the demo now generates its own).
DEMO_SECRET = "demo-only-secret-key-do-not-use-in-production"  # noqa: S105

DAY = 24 * 3600

DEFAULTS: dict[str, Any] = {
    "DEMO": False,
    "SECRET_KEY": None,
    "DATABASE_URL": None,
    "REDIS_URL": None,
    "PUBLIC_URL": "http://127.0.0.1:8000",
    # Where the reader lands after verifying or resetting (the news site); defaults to PUBLIC_URL.
    "SITE_URL": None,
    "SMTP_URL": None,  # smtp://user:pass@host:port ; unset in demo = print emails to the log
    "MAIL_FROM": "Paywall <no-reply@paywall.invalid>",
    # Seconds between attempts at one email; the last attempt is about three days after the first.
    "MAIL_RETRY_SCHEDULE": [60, 300, 900, 3600, 3 * 3600, 6 * 3600, 12 * 3600, DAY, DAY],
    "TRUSTED_ORIGINS": [],  # extra origins allowed to send cookie-authenticated API requests
    # Device sessions
    "MAX_DEVICES": 5,
    "DEVICE_POLICY": "refuse",  # or "evict_lru"
    "DEVICE_COOKIE_NAME": "paywall_session",
    "DEVICE_COOKIE_DOMAIN": None,
    "SESSION_IDLE_TIMEOUT": 30 * DAY,
    "SESSION_ABSOLUTE_LIFETIME": 365 * DAY,
    "SESSION_TOUCH_INTERVAL": 60,
    # The session value is replaced after this many seconds of use; the replaced value works
    # until the new one is used, then for GRACE seconds more; after that it ends the session.
    "SESSION_ROTATION_INTERVAL": 300,
    "SESSION_ROTATION_GRACE": 30,
    # Passwords: argon2id at OWASP's first recommended set (m=19 MiB, t=2, p=1).
    # https://cheatsheetseries.owasp.org/cheatsheets/Password_Storage_Cheat_Sheet.html#argon2id
    "ARGON2_TIME_COST": 2,
    "ARGON2_MEMORY_COST": 19456,
    "ARGON2_PARALLELISM": 1,
    "VERIFY_TOKEN_MAX_AGE": 2 * DAY,
    "RESET_TOKEN_MAX_AGE": 3600,
    # Rate limits (Flask-Limiter syntax)
    "RATELIMIT_ENABLED": True,
    # Unset: PAYWALL_REDIS_URL (required outside demo unless a store is named here).
    "RATELIMIT_STORAGE_URI": None,
    "RATELIMIT_HEADERS_ENABLED": False,
    "LOGIN_LIMIT_PER_ACCOUNT": "10 per 15 minutes",
    "LOGIN_LIMIT_PER_ADDRESS": "30 per minute",
    "SIGNUP_LIMIT_PER_ADDRESS": "10 per hour",
    "RESET_LIMIT_PER_ACCOUNT": "5 per hour",
    "RESET_LIMIT_PER_ADDRESS": "20 per hour",
    # A browser that signed in to the account before counts apart from unknown devices.
    "LOGIN_LIMIT_PER_DEVICE": "10 per 15 minutes",
    "DEVICE_TRUST_COOKIE_NAME": "paywall_device",
    "PASSWORD_CHANGE_LIMIT_PER_SESSION": "5 per 15 minutes",
    "PASSWORD_CHANGE_LIMIT_PER_ACCOUNT": "10 per hour",
    # Reverse proxies in front of the service: the client address is taken this many hops
    # from the right of X-Forwarded-For (and -Proto, -Host); 0 ignores those headers.
    "TRUSTED_PROXY_COUNT": 0,
    # Request bodies
    "MAX_CONTENT_LENGTH": 64 * 1024,
    "WEBHOOK_MAX_CONTENT_LENGTH": 1024 * 1024,
    # Stripe
    "STRIPE_API_KEY": None,
    "STRIPE_WEBHOOK_SECRET": [],
    "STRIPE_API_BASE": None,  # e.g. http://127.0.0.1:12111 for the local stand-in
    "STRIPE_TIMEOUT": 20,
    "STRIPE_MAX_NETWORK_RETRIES": 2,
    "STRIPE_API_VERSION": None,  # None: the version the code is written for (gateway.API_VERSION)
    "PLANS_CACHE_TTL": 3600,
    "PAST_DUE_GRACE_DAYS": 7,
    # Checkout accepts the promotion codes finance creates in the Stripe dashboard.
    "CHECKOUT_PROMOTION_CODES": False,
    "REFUND_ENDS_ACCESS": True,
    "DISPUTE_ENDS_ACCESS": True,
    # PostgreSQL: seconds a statement may run / wait for a lock before it fails (503).
    "DATABASE_STATEMENT_TIMEOUT": 5,
    "DATABASE_LOCK_TIMEOUT": 3,
    "ORPHAN_EVENT_TTL_DAYS": 30,  # orphaned webhook events reconcile still tries to apply
    # The reader's side: the publisher's brand on every page and email, features in words.
    "BRAND_NAME": "The Daily Paywall",
    "BRAND_LOGO_URL": None,  # an image URL shown in the header instead of the name
    "BRAND_COLOR": "#b3001b",  # buttons and accents; white text on it must reach 4.5:1
    "TEMPLATE_FOLDER": None,  # a folder of templates that override the service's own
    "FEATURE_LABELS": {
        "premium_content": "Every article in full",
        "notifications": "Breaking-news notifications",
    },
    # Entitlement tokens: Ed25519 private keys (PKCS#8 PEM or JWK), newest first; the first
    # signs, all are published at /.well-known/jwks.json. Demo: instance/entitlement_signing_key.pem
    "ENTITLEMENT_SIGNING_KEYS": [],
    "ENTITLEMENT_TTL": 300,
    # Revocations (paywall.entitlements.revocations): the feed and the in-process state
    "REVOCATION_LEEWAY": 120,  # the frontends' offline leeway: listed for TTL + this
    "REVOCATION_RETENTION": None,  # seconds a revocation stays listed; None: TTL + leeway
    "REVOCATION_REFRESH_INTERVAL": 0.25,  # seconds between the per-process state's queries
    "REVOCATION_GAP_SETTLE": 60,  # seconds before a missing feed id counts as rolled back
    "REVOCATION_MAX_WAIT": 30,  # the longest long poll (?wait=) of the feed
    "REVOCATION_SWEEP_INTERVAL": 10,  # seconds between sweeps for expiry and lapses
    "REVOCATION_SWEEP_LOOKBACK": 3600,  # what the sweep looks back over (covers beat outages)
    # Outbound webhooks (Standard Webhooks): session.ended and entitlement.changed
    "OUTBOUND_WEBHOOK_URLS": [],
    "OUTBOUND_WEBHOOK_SECRET": None,  # whsec_<base64 of 24-64 random bytes>
    "OUTBOUND_WEBHOOK_RETRY_SCHEDULE": [5, 30, 120, 600, 1800, 3600, 6 * 3600],
    # The meter: distinct metered articles a reader without premium_content reads per UTC month
    "METER_LIMIT": 3,
    # Gift links (paywall.gifts): per giver per UTC month, days a link opens its article, and
    # browsers one link opens it for (a link posted publicly stops at that many readers).
    "GIFTS_PER_MONTH": 10,
    "GIFT_TTL_DAYS": 30,
    "GIFT_MAX_READERS": 100,
    "GIFT_URL": "{site_url}/news/{article}?gift={token}",
    # Publisher API keys (newsroom CMS, the site's servers): Authorization: Bearer <key>
    "PUBLISHER_API_KEYS": [],
    # Story notifications (paywall.notifications): Web Push (RFC 8030/8291/8292) and email alerts
    "VAPID_PRIVATE_KEY": None,  # PEM or base64url; demo generates instance/vapid_private_key.pem
    "VAPID_SUBJECT": "mailto:newsroom@paywall.invalid",  # RFC 8292 "sub": mailto: or https:
    # Origins the service may POST pushes to; "https://*.x" matches any subdomain of x.
    "PUSH_ALLOWED_ORIGINS": [
        "https://fcm.googleapis.com",
        "https://updates.push.services.mozilla.com",
        "https://web.push.apple.com",
        "https://*.notify.windows.com",
    ],
    "NOTIFICATION_TOPICS": ["world", "politics", "business", "technology", "culture", "sport"],
    "PUSH_TTL": 86400,  # seconds a push service keeps an undelivered message
    "PUSH_TIMEOUT": 10,
    "PUSH_MAX_ATTEMPTS": 5,  # per message: 429, 5xx and timeouts are retried, then failed
    "PUSH_RETRY_BACKOFF": 30,  # seconds before the first retry; doubles, Retry-After wins
    "NOTIFICATION_BATCH_SIZE": 500,
    "NOTIFICATION_CLAIM_LEASE": 300,  # seconds before a dead worker's claimed messages go again
    # Flask / cookies
    "SESSION_COOKIE_NAME": "paywall_form",  # Flask's own session: CSRF tokens, flashes
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "SESSION_COOKIE_SECURE": True,
    "WTF_CSRF_TIME_LIMIT": None,
    "SQLALCHEMY_ENGINE_OPTIONS": {"pool_recycle": 1800},  # no pre-ping: see database.py
    "JSON_SORT_KEYS": False,
    # Background jobs (paywall.queue). Every CELERY_* key goes to Celery, lower-cased.
    "CELERY_BROKER_URL": None,  # default: REDIS_URL, else an SQLite file in instance/ (demo)
    "QUEUE_RETRY_SCHEDULE": [10, 60, 300, 1800, 3600, 6 * 3600],
    "QUEUE_SWEEP_INTERVAL": 30,  # seconds between sweeps for jobs recorded and not done
    "QUEUE_REDELIVER_AFTER": 300,  # a job sent this long ago and not done is sent again
    "QUEUE_COUNTDOWN_LIMIT": 300,  # retries further off than this wait for the sweep
    "QUEUE_VISIBILITY_TIMEOUT": 3600,
    "QUEUE_KEEP_FINISHED_DAYS": 7,
    "CAP_ENFORCEMENT_BATCH": 500,  # subscribers per job after a catalogue change
    # Metrics (paywall.metrics): GET /metrics with Authorization: Bearer <token>; unset = 404
    "METRICS_TOKEN": None,
    "WORKER_METRICS_ADDRESS": None,  # host:port where a Celery worker serves its own counters
    # flask-smorest / OpenAPI
    "API_TITLE": "Paywall API",
    "API_VERSION": "v1",
    "OPENAPI_VERSION": "3.0.3",
    "OPENAPI_URL_PREFIX": "/api/v1",
    "OPENAPI_JSON_PATH": "openapi.json",
}

LIST_SETTINGS = (
    "STRIPE_WEBHOOK_SECRET",
    "TRUSTED_ORIGINS",
    "PUBLISHER_API_KEYS",
    "OUTBOUND_WEBHOOK_URLS",
    "PUSH_ALLOWED_ORIGINS",
    "NOTIFICATION_TOPICS",
)


class ConfigError(RuntimeError):
    """The configuration is unsafe or incomplete; the message names the setting."""


def load_config(app: Flask, overrides: Mapping[str, Any] | None = None) -> None:
    """Fill ``app.config``: defaults, then ``PAYWALL_*`` environment, then ``overrides``."""
    app.config.from_mapping(DEFAULTS)
    app.config.from_prefixed_env("PAYWALL")
    if overrides:
        app.config.from_mapping(overrides)
    cfg = app.config
    for key in LIST_SETTINGS:
        cfg[key] = _as_list(cfg.get(key))
    cfg["ENTITLEMENT_SIGNING_KEYS"] = _key_list(cfg.get("ENTITLEMENT_SIGNING_KEYS"))
    demo = bool(cfg["DEMO"])  # debug never implies demo: it would drop every check below
    if demo:
        # Never a published value (a link for someone else's address was forged with one):
        # ``make run`` passes a per-run secret; without one, a random one kept in instance/.
        if not cfg["SECRET_KEY"] or cfg["SECRET_KEY"] == DEMO_SECRET:
            cfg["SECRET_KEY"] = instance_secret(app.instance_path, "secret_key")
        from paywall.entitlements.keys import demo_signing_key

        cfg["ENTITLEMENT_SIGNING_KEYS"] = cfg["ENTITLEMENT_SIGNING_KEYS"] or [
            demo_signing_key(app.instance_path)
        ]
        cfg["SESSION_COOKIE_SECURE"] = bool(cfg.get("SESSION_COOKIE_SECURE_IN_DEMO", False))
    cfg["DATABASE_URL"] = cfg["DATABASE_URL"] or cfg.get("SQLALCHEMY_DATABASE_URI")
    if cfg["DATABASE_URL"]:
        cfg["SQLALCHEMY_DATABASE_URI"] = _sqlalchemy_url(cfg["DATABASE_URL"])
    elif demo:
        database = private_file(Path(app.instance_path) / "paywall.sqlite3")
        cfg["SQLALCHEMY_DATABASE_URI"] = "sqlite:///" + str(database)
    if not cfg["RATELIMIT_STORAGE_URI"]:
        # Counting per process lets N processes allow N times the limit: demo only.
        cfg["RATELIMIT_STORAGE_URI"] = cfg["REDIS_URL"] or ("memory://" if demo else None)
    cfg["SITE_URL"] = cfg["SITE_URL"] or cfg["PUBLIC_URL"]
    check_config(cfg, demo=demo)


def check_config(cfg: Mapping[str, Any], *, demo: bool) -> None:
    """Refuse settings that would be unsafe outside demo mode, naming the setting."""
    if not cfg.get("SQLALCHEMY_DATABASE_URI"):
        raise ConfigError("PAYWALL_DATABASE_URL is not set")
    color = str(cfg.get("BRAND_COLOR") or "#b3001b")
    if not re.match(r"^#[0-9a-fA-F]{6}$", color):
        raise ConfigError("PAYWALL_BRAND_COLOR must be a colour like #b3001b")
    if _contrast_with_white(color) < 4.5:
        raise ConfigError(
            "PAYWALL_BRAND_COLOR is too light: white text on it must reach a contrast of 4.5:1"
        )
    if cfg["DEVICE_POLICY"] not in ("refuse", "evict_lru"):
        raise ConfigError("PAYWALL_DEVICE_POLICY must be 'refuse' or 'evict_lru'")
    if not isinstance(cfg["MAX_DEVICES"], int) or cfg["MAX_DEVICES"] < 1:
        raise ConfigError("PAYWALL_MAX_DEVICES must be a positive integer")
    for key, positive in (("SESSION_ROTATION_INTERVAL", True), ("SESSION_ROTATION_GRACE", False)):
        value = cfg.get(key, DEFAULTS[key])
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ConfigError(f"PAYWALL_{key} must be a number of seconds")
        if positive and value == 0:
            raise ConfigError(f"PAYWALL_{key} must be more than 0 seconds")
    proxies = cfg.get("TRUSTED_PROXY_COUNT", 0)
    if not isinstance(proxies, int) or isinstance(proxies, bool) or proxies < 0:
        raise ConfigError("PAYWALL_TRUSTED_PROXY_COUNT must be 0 or a positive integer")
    if not isinstance(cfg["METER_LIMIT"], int) or cfg["METER_LIMIT"] < 0:
        raise ConfigError("PAYWALL_METER_LIMIT must be a non-negative integer")
    if cfg.get("ENTITLEMENT_KEYS"):
        raise ConfigError(
            "PAYWALL_ENTITLEMENT_KEYS (shared HMAC keys) is no longer read: tokens are signed"
            " with Ed25519, set PAYWALL_ENTITLEMENT_SIGNING_KEYS and give frontends the JWKS URL"
        )
    if "ENTITLEMENT_SIGNING_KEYS" in cfg or not demo:  # (a partial demo config lacks it)
        _check_signing_keys(cfg.get("ENTITLEMENT_SIGNING_KEYS", []))
    if cfg.get("METRICS_TOKEN") and len(str(cfg["METRICS_TOKEN"])) < 32:
        raise ConfigError("PAYWALL_METRICS_TOKEN must be at least 32 characters")
    if cfg.get("OUTBOUND_WEBHOOK_URLS") and not _webhook_secret_ok(
        cfg.get("OUTBOUND_WEBHOOK_SECRET")
    ):
        raise ConfigError(
            "PAYWALL_OUTBOUND_WEBHOOK_SECRET must be whsec_<base64 of at least 24 random bytes> "
            "when PAYWALL_OUTBOUND_WEBHOOK_URLS is set"
        )
    for key in ("GIFTS_PER_MONTH", "GIFT_MAX_READERS"):
        value = cfg.get(key, DEFAULTS[key])
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ConfigError(f"PAYWALL_{key} must be a non-negative integer")
    ttl = cfg.get("GIFT_TTL_DAYS", DEFAULTS["GIFT_TTL_DAYS"])
    if not isinstance(ttl, int | float) or isinstance(ttl, bool) or ttl <= 0:
        raise ConfigError("PAYWALL_GIFT_TTL_DAYS must be a positive number of days")
    if "{token}" not in str(cfg.get("GIFT_URL", DEFAULTS["GIFT_URL"])):
        raise ConfigError("PAYWALL_GIFT_URL must contain {token} (and usually {article})")
    if demo:
        return
    if cfg.get("RATELIMIT_ENABLED") and not cfg.get("RATELIMIT_STORAGE_URI"):
        raise ConfigError(
            "PAYWALL_REDIS_URL is not set: rate limits need a shared store "
            "(or name one in PAYWALL_RATELIMIT_STORAGE_URI)"
        )
    secret = cfg.get("SECRET_KEY")
    if not secret or secret == DEMO_SECRET or len(str(secret)) < 32:
        raise ConfigError(
            "PAYWALL_SECRET_KEY is missing, the demo default, or shorter than 32 characters"
        )
    if any(len(k) < 32 for k in cfg["PUBLISHER_API_KEYS"]):
        raise ConfigError("PAYWALL_PUBLISHER_API_KEYS: every key must be at least 32 characters")
    if cfg.get("STRIPE_API_KEY") and not cfg["STRIPE_WEBHOOK_SECRET"]:
        raise ConfigError("PAYWALL_STRIPE_WEBHOOK_SECRET is required when Stripe is configured")
    if not cfg.get("STRIPE_API_KEY"):
        raise ConfigError("PAYWALL_STRIPE_API_KEY is not set")
    if not cfg.get("SMTP_URL"):
        raise ConfigError("PAYWALL_SMTP_URL is not set")
    if not cfg.get("VAPID_PRIVATE_KEY"):
        raise ConfigError("PAYWALL_VAPID_PRIVATE_KEY is not set (see README: notifications)")


def _check_signing_keys(entries: list[Any]) -> None:
    from paywall.entitlements.keys import SigningKeyError, signing_keys

    if not entries:
        raise ConfigError(
            "PAYWALL_ENTITLEMENT_SIGNING_KEYS is not set: list one or more Ed25519 private keys"
            " (PKCS#8 PEM or JWK; `python -m paywall.entitlements.keys` makes one)"
        )
    try:
        signing_keys(entries)
    except SigningKeyError as exc:
        raise ConfigError(f"PAYWALL_ENTITLEMENT_SIGNING_KEYS: {exc}") from exc


def _key_list(value: Any) -> list[Any]:
    """Signing keys: a JSON list of PEM strings or JWK objects (or one of either alone)."""
    if value is None or value == "" or value == []:
        return []
    if isinstance(value, str | Mapping):
        return [value]
    return list(value)


def _contrast_with_white(color: str) -> float:
    from paywall.brand import contrast

    return contrast(color, "#ffffff")


def _webhook_secret_ok(secret: Any) -> bool:
    import base64
    import binascii

    if not isinstance(secret, str) or not secret.startswith("whsec_"):
        return False
    try:
        return len(base64.b64decode(secret[6:] + "==")) >= 24
    except (binascii.Error, ValueError):
        return False


def _as_list(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return [str(v) for v in value]


def _sqlalchemy_url(url: str) -> str:
    # Heroku-style postgres:// URLs and plain postgresql:// mean psycopg 3 here.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url
