"""One row per (reader, calendar month, article) read under the meter."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from paywall.clock import utcnow
from paywall.extensions import db
from paywall.types import UTCDateTime


class MeteredRead(db.Model):  # type: ignore[name-defined,misc]
    """The primary key makes the same article in the same month count once."""

    __tablename__ = "meter_reads"

    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    month: Mapped[str] = mapped_column(String(7), primary_key=True)  # "2026-12", UTC
    article: Mapped[str] = mapped_column(String(200), primary_key=True)
    read_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
