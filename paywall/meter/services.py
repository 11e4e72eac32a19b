"""The meter's rules: ``limit`` distinct articles per UTC calendar month per account; readers
with ``premium_content`` are never metered. Flushes; the request commits."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select

from paywall.accounts.models import Account
from paywall.billing.access import Access
from paywall.clock import utcnow
from paywall.meter.models import MeteredRead
from paywall.types import DbSession

PREMIUM_FEATURE = "premium_content"


@dataclass(frozen=True)
class MeterAnswer:
    allowed: bool
    remaining: int
    limit: int
    resets_at: datetime
    metered: bool = True  # False for subscribers: the meter does not apply


def month_of(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m")


def next_month_start(now: datetime) -> datetime:
    now = now.astimezone(UTC)
    year, month = (now.year + 1, 1) if now.month == 12 else (now.year, now.month + 1)
    return datetime(year, month, 1, tzinfo=UTC)


class MeterService:
    def __init__(
        self,
        session: DbSession,
        limit: int,
        access_for: Callable[[Account], Access],
        lock_account: Callable[[str], Account],
    ) -> None:
        self.session = session
        self.limit = limit
        self.access_for = access_for
        self.lock_account = lock_account

    def read(self, account: Account, article: str, now: datetime | None = None) -> MeterAnswer:
        """Count a read of ``article`` if the allowance has room; say whether it may be read.
        The account row is locked first, so concurrent reads of different articles are
        counted one after another and can never pass the limit together."""
        now = now or utcnow()
        resets_at = next_month_start(now)
        if PREMIUM_FEATURE in self.access_for(account).features:
            return MeterAnswer(True, self.limit, self.limit, resets_at, metered=False)
        self.lock_account(account.id)
        month = month_of(now)
        already = self.session.get(MeteredRead, (account.id, month, article))
        used = self.session.scalar(
            select(func.count())
            .select_from(MeteredRead)
            .where(MeteredRead.account_id == account.id, MeteredRead.month == month)
        )
        used = int(used or 0)
        if already is not None:
            return MeterAnswer(True, max(self.limit - used, 0), self.limit, resets_at)
        if used >= self.limit:
            return MeterAnswer(False, 0, self.limit, resets_at)
        self.session.add(
            MeteredRead(account_id=account.id, month=month, article=article, read_at=now)
        )
        self.session.flush()
        return MeterAnswer(True, self.limit - used - 1, self.limit, resets_at)


def meter_service() -> MeterService:
    from flask import current_app, g

    from paywall.billing.services import billing_service
    from paywall.devices.services import device_service
    from paywall.extensions import db

    if "meter_service" not in g:
        g.meter_service = MeterService(
            db.session,
            int(current_app.config["METER_LIMIT"]),
            billing_service().access_for,
            device_service().lock_account,
        )
    return g.meter_service  # type: ignore[no-any-return]
