"""The service's notion of now, as an aware UTC datetime (one place to read the clock)."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def utcnow() -> datetime:
    """Aware UTC now."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def timestamp() -> float:
    """Seconds since the epoch (token ``iat``/``exp`` and the online checks read this)."""
    return time.time()
