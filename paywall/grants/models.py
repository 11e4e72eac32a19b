"""Granted access: one row per grant, kept after it ends or is revoked (the audit trail)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from paywall.clock import utcnow
from paywall.extensions import db
from paywall.types import UTCDateTime


class AccessGrant(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "access_grants"
    __table_args__ = (Index("ix_access_grants_account", "account_id", "until"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: uuid.uuid4().hex)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    features: Mapped[list[str]] = mapped_column(JSON, default=list)
    max_devices: Mapped[int | None] = mapped_column(Integer)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    until: Mapped[datetime] = mapped_column(UTCDateTime())
    reason: Mapped[str] = mapped_column(Text)
    granted_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    revoked_by: Mapped[str | None] = mapped_column(String(200), default=None)
    # When its end was applied (devices over the cap signed out, the reader told).
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)

    def active_at(self, now: datetime) -> bool:
        return self.revoked_at is None and self.starts_at <= now < self.until
