"""One row per gift link, kept after it expires or is revoked (the allowance counts it), and
one row per browser that opened it (the cap on readers)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from paywall.clock import utcnow
from paywall.extensions import db
from paywall.types import UTCDateTime


class Gift(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "gifts"
    __table_args__ = (Index("ix_gifts_giver_month", "giver_id", "month"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: uuid.uuid4().hex)
    giver_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    article: Mapped[str] = mapped_column(String(200))
    month: Mapped[str] = mapped_column(String(7))  # "2026-12", UTC: the allowance it counts in
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class GiftReader(db.Model):  # type: ignore[name-defined,misc]
    """A browser (the site's random visitor id) that opened a gift: the same browser again
    does not count twice."""

    __tablename__ = "gift_readers"

    gift_id: Mapped[str] = mapped_column(
        ForeignKey("gifts.id", ondelete="CASCADE"), primary_key=True
    )
    visitor: Mapped[str] = mapped_column(String(64), primary_key=True)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
