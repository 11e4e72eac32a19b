"""Emails waiting to be sent, and a record of those that were."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from paywall.clock import utcnow
from paywall.extensions import db
from paywall.types import UTCDateTime


class OutboxEmail(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "outbox_emails"
    __table_args__ = (Index("ix_outbox_emails_pending", "sent_at", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(40))
    to: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    # Extra headers (e.g. RFC 8058 List-Unsubscribe on story alerts).
    headers: Mapped[dict[str, str] | None] = mapped_column(JSON, default=None)
    # Set for emails an event may cause more than once (a redelivered webhook): one email.
    dedupe_key: Mapped[str | None] = mapped_column(String(120), unique=True, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500), default=None)
