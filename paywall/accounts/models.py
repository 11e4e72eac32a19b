"""Reader accounts and single-use link tokens."""

from __future__ import annotations

import uuid
from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from paywall.clock import utcnow
from paywall.extensions import db
from paywall.types import UTCDateTime


def new_id() -> str:
    return uuid.uuid4().hex


class Account(UserMixin, db.Model):  # type: ignore[name-defined,misc]
    """A reader. ``email`` is stored normalised (see ``passwords.normalise_email``)."""

    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Set when the reader deleted the account: personal data erased, billing rows kept.
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)

    @property
    def email_verified(self) -> bool:
        return self.email_verified_at is not None


class UsedToken(db.Model):  # type: ignore[name-defined,misc]
    """A verify/reset link that has been used; its digest is the key, so reuse is refused."""

    __tablename__ = "used_tokens"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(32))
    used_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
