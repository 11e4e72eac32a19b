"""Device sessions: one row per login, the cookie's value stored only as a SHA-256 digest.

The value is rotated every ``SESSION_ROTATION_INTERVAL`` seconds of use; the row keeps the
digest of the value it replaced, and older replaced values are kept as ``RetiredSessionValue``
rows, so a copy of any recent old value is recognised (reuse detection).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from paywall.accounts.models import new_id
from paywall.clock import utcnow
from paywall.extensions import db
from paywall.types import UTCDateTime

# Why a session ended; the first two tell the reader's other device why it was signed out.
EVICTED = "evicted"  # replaced by a new sign-in at the device limit
CAP_LOWERED = "cap_lowered"  # the plan (or a grant's end) now allows fewer devices
REVOKED = "revoked"  # signed out from another device, or by a password reset
SIGNED_OUT = "signed_out"  # logged out on this device
PASSWORD_CHANGED = "password_changed"  # noqa: S105 - the password was changed or reset
ACCOUNT_DELETED = "account_deleted"
SESSION_REUSED = "session_reused"  # a rotated-out value was used again: the value was copied


class DeviceSession(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "device_sessions"
    __table_args__ = (Index("ix_device_sessions_account_active", "account_id", "ended_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=False
    )
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    device_name: Mapped[str] = mapped_column(String(100))
    user_agent: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    end_reason: Mapped[str | None] = mapped_column(String(20), default=None)
    # Rotation: the digest of the value ``token_digest`` replaced (None before the first
    # rotation), when it was replaced (None: never, count from ``created_at``), and when the
    # current value was first presented (None: not yet; the old value still works).
    previous_digest: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    token_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class RetiredSessionValue(db.Model):  # type: ignore[name-defined,misc]
    """A session value replaced two or more rotations ago (the last one replaced is
    ``DeviceSession.previous_digest``); presenting it after ``grace_until`` ends the session."""

    __tablename__ = "device_session_retired_values"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[str] = mapped_column(
        ForeignKey("device_sessions.id", ondelete="CASCADE"), index=True
    )
    retired_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    grace_until: Mapped[datetime] = mapped_column(UTCDateTime())
