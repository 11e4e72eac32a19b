"""Local copies of what Stripe owns (plans, customers, subscriptions) and every webhook event."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from paywall.clock import utcnow
from paywall.extensions import db
from paywall.types import UTCDateTime


class Plan(db.Model):  # type: ignore[name-defined,misc]
    """A recurring Stripe Price with a lookup_key; what it grants comes from its Product's
    metadata (``entitlements``, ``max_devices``). A cache: Stripe is the source of truth."""

    __tablename__ = "plans"

    price_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    lookup_key: Mapped[str | None] = mapped_column(String(200), index=True)
    product_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text, default=None)  # the Product's
    amount: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    interval: Mapped[str] = mapped_column(String(10))
    interval_count: Mapped[int] = mapped_column(Integer, default=1)
    features: Mapped[list[str]] = mapped_column(JSON, default=list)
    max_devices: Mapped[int | None] = mapped_column(Integer)
    # The Price's metadata ``trial_period_days`` (finance sets it in the dashboard).
    trial_period_days: Mapped[int | None] = mapped_column(Integer, default=None)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    refreshed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Customer(db.Model):  # type: ignore[name-defined,misc]
    """The one Stripe Customer of a reader."""

    __tablename__ = "billing_customers"

    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    stripe_customer_id: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class Subscription(db.Model):  # type: ignore[name-defined,misc]
    """Stripe's current state of one subscription, as last fetched from Stripe."""

    __tablename__ = "billing_subscriptions"
    __table_args__ = (Index("ix_billing_subscriptions_account", "account_id", "status"),)

    id: Mapped[str] = mapped_column(String(255), primary_key=True)  # sub_...
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    stripe_customer_id: Mapped[str] = mapped_column(String(255))
    price_id: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(30))
    current_period_end: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancel_at_period_end: Mapped[bool] = mapped_column(Boolean, default=False)
    cancel_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    latest_invoice_id: Mapped[str | None] = mapped_column(String(255))
    default_payment_method: Mapped[str | None] = mapped_column(String(255))  # pm_...
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    past_due_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # A refund or dispute of this invoice ended access (until a newer invoice is paid).
    revoked_invoice_id: Mapped[str | None] = mapped_column(String(255))
    revoked_reason: Mapped[str | None] = mapped_column(String(30))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    synced_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class StripeEvent(db.Model):  # type: ignore[name-defined,misc]
    """Every verified webhook event, stored once (its id is the key) with what became of it."""

    __tablename__ = "stripe_events"
    __table_args__ = (Index("ix_stripe_events_status", "status", "received_at"),)

    id: Mapped[str] = mapped_column(String(255), primary_key=True)  # evt_...
    type: Mapped[str] = mapped_column(String(100))
    created: Mapped[int] = mapped_column(BigInteger)
    livemode: Mapped[bool] = mapped_column(Boolean, default=False)
    payload: Mapped[str] = mapped_column(Text)
    # processed | ignored (unknown type) | orphaned (not ours yet) | failed (will be retried)
    # | rejected (Stripe refused a re-fetch for good) | expired (orphaned past its TTL)
    status: Mapped[str] = mapped_column(String(20))
    stripe_customer_id: Mapped[str | None] = mapped_column(String(255), index=True)
    error: Mapped[str | None] = mapped_column(String(1000))
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
