"""Push subscriptions (one per browser, tied to a device session), reader preferences, the
stories the newsroom publishes and one delivery row per (story, channel, recipient)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from paywall.accounts.models import new_id
from paywall.clock import utcnow
from paywall.extensions import db
from paywall.types import UTCDateTime

# Delivery states. "sending" is claimed by a worker; the rest are final but "queued"/"retry".
QUEUED = "queued"
SENDING = "sending"
RETRY = "retry"
DELIVERED = "delivered"
GONE = "gone"  # the push service answered 404/410: the subscription was deleted
FAILED = "failed"
SKIPPED = "skipped"  # not entitled, not following the topic, or the device signed out
PUSH = "push"
EMAIL = "email"


class PushSubscription(db.Model):  # type: ignore[name-defined,misc]
    """A browser's ``PushSubscription``; it lives as long as the device session it came from."""

    __tablename__ = "push_subscriptions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    device_session_id: Mapped[str] = mapped_column(
        ForeignKey("device_sessions.id", ondelete="CASCADE"), index=True
    )
    endpoint: Mapped[str] = mapped_column(Text)
    # SHA-256 of the endpoint: a unique index that fits any endpoint length.
    endpoint_digest: Mapped[str] = mapped_column(String(64), unique=True)
    p256dh: Mapped[str] = mapped_column(String(100))
    auth: Mapped[str] = mapped_column(String(40))
    expiration_time: Mapped[int | None] = mapped_column(BigInteger, default=None)
    topics: Mapped[list[str] | None] = mapped_column(JSON, default=None)  # None: preferences
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class NotificationPreference(db.Model):  # type: ignore[name-defined,misc]
    """What a reader follows. No row: every topic, no email alerts."""

    __tablename__ = "notification_preferences"

    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    email_alerts: Mapped[bool] = mapped_column(Boolean, default=False)
    topics: Mapped[list[str] | None] = mapped_column(JSON, default=None)  # None: all topics
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Story(db.Model):  # type: ignore[name-defined,misc]
    """A story the newsroom's CMS published; its id is the CMS's, so a repeat is recognised.
    The row is also the durable record of the fan-out job: written in the request's transaction,
    swept again if no worker finished it."""

    __tablename__ = "stories"
    __table_args__ = (Index("ix_stories_status", "status", "created_at"),)

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    url: Mapped[str] = mapped_column(String(2000))
    summary: Mapped[str | None] = mapped_column(String(1000), default=None)
    topics: Mapped[list[str]] = mapped_column(JSON, default=list)
    urgency: Mapped[str] = mapped_column(String(10), default="normal")
    status: Mapped[str] = mapped_column(String(20), default=QUEUED)  # queued, sending, sent
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    planned_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class StoryDelivery(db.Model):  # type: ignore[name-defined,misc]
    """One message of a story to one push subscription or one reader's inbox. The unique key is
    what makes a second run of a job send nothing twice."""

    __tablename__ = "story_deliveries"
    __table_args__ = (
        UniqueConstraint("story_id", "channel", "target", name="uq_story_deliveries_target"),
        Index("ix_story_deliveries_batch", "story_id", "batch", "status"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    story_id: Mapped[str] = mapped_column(ForeignKey("stories.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(10))  # push | email
    # The push subscription id (push) or the account id (email). No foreign key: the row
    # outlives a subscription a push service said is gone, and still counts.
    target: Mapped[str] = mapped_column(String(32))
    account_id: Mapped[str] = mapped_column(String(32))
    batch: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(20), default=QUEUED)
    reason: Mapped[str | None] = mapped_column(String(200), default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
