"""Gift links' rules: who may give (a reader with ``premium_content``), how many a month
(``GIFTS_PER_MONTH``, revoked ones included, so revoking does not refill the allowance), for how
long (``GIFT_TTL_DAYS``), for how many browsers (``GIFT_MAX_READERS``), and what opening one
checks: the signature (itsdangerous), the article, the date, revocation. Flushes; the request
commits."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import func, select

from paywall.accounts.models import Account
from paywall.billing.access import Access
from paywall.clock import utcnow
from paywall.errors import NotFound, PaywallError
from paywall.gifts.models import Gift, GiftReader
from paywall.meter.services import PREMIUM_FEATURE, month_of, next_month_start
from paywall.types import DbSession


class PremiumRequired(PaywallError):
    code, status, message = "premium_required", 403, "Gift links are for subscribers."


class GiftLimitReached(PaywallError):
    code, status = "gift_limit_reached", 403


class GiftInvalid(PaywallError):
    code, status, message = "gift_invalid", 403, "This gift link is not valid."


class GiftWrongArticle(PaywallError):
    code, status, message = "gift_wrong_article", 403, "This gift link is for another article."


class GiftExpired(PaywallError):
    code, status, message = "gift_expired", 410, "This gift link has expired."


class GiftRevoked(PaywallError):
    code, status, message = "gift_revoked", 410, "The subscriber who shared it withdrew this link."


class GiftUsedUp(PaywallError):
    code, status = "gift_used_up", 410
    message = "This gift link has been opened by as many readers as it allows."


@dataclass(frozen=True)
class GiftSettings:
    secret: str
    per_month: int
    ttl: timedelta
    max_readers: int
    url_template: str
    site_url: str

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> GiftSettings:
        return cls(
            secret=str(config["SECRET_KEY"]),
            per_month=int(config["GIFTS_PER_MONTH"]),
            ttl=timedelta(days=float(config["GIFT_TTL_DAYS"])),
            max_readers=int(config["GIFT_MAX_READERS"]),
            url_template=str(config["GIFT_URL"]),
            site_url=str(config["SITE_URL"]).rstrip("/"),
        )


@dataclass(frozen=True)
class Given:
    gift: Gift
    url: str
    remaining: int


def state_of(gift: Gift, readers: int, max_readers: int, now: datetime) -> str:
    if gift.revoked_at is not None:
        return "revoked"
    if gift.expires_at <= now:
        return "expired"
    return "used_up" if readers >= max_readers else "active"


class GiftService:
    def __init__(
        self,
        session: DbSession,
        settings: GiftSettings,
        access_for: Callable[[Account], Access],
        lock_account: Callable[[str], Account],
    ) -> None:
        self.session = session
        self.settings = settings
        self.access_for = access_for
        self.lock_account = lock_account
        # A salt of its own: no other signed value of the service is a valid gift token.
        self.signer = URLSafeSerializer(settings.secret, salt="paywall.gift")

    # -- links -------------------------------------------------------------------------------
    def token_for(self, gift: Gift) -> str:
        return str(self.signer.dumps([gift.id, gift.article]))

    def url_for(self, gift: Gift) -> str:
        return self.settings.url_template.format(
            site_url=self.settings.site_url, article=gift.article, token=self.token_for(gift)
        )

    # -- the giver ---------------------------------------------------------------------------
    def used_this_month(self, account_id: str, now: datetime) -> int:
        count = self.session.scalar(
            select(func.count())
            .select_from(Gift)
            .where(Gift.giver_id == account_id, Gift.month == month_of(now))
        )
        return int(count or 0)

    def give(self, account: Account, article: str, now: datetime | None = None) -> Given:
        """A new gift link for ``article``. The account row is locked first, so two gifts made
        at once are counted one after the other and never pass the monthly limit."""
        now = now or utcnow()
        if PREMIUM_FEATURE not in self.access_for(account).features:
            raise PremiumRequired()
        self.lock_account(account.id)
        used = self.used_this_month(account.id, now)
        limit = self.settings.per_month
        if used >= limit:
            resets_at = next_month_start(now)
            raise GiftLimitReached(
                f"You have shared your {limit} gift articles this month. More from "
                f"{resets_at.date().isoformat()}.",
                extra={"limit": limit, "resets_at": resets_at.isoformat()},
            )
        gift = Gift(
            giver_id=account.id,
            article=article,
            month=month_of(now),
            created_at=now,
            expires_at=now + self.settings.ttl,
        )
        self.session.add(gift)
        self.session.flush()
        return Given(gift, self.url_for(gift), limit - used - 1)

    def listing(self, account: Account, now: datetime | None = None) -> list[dict[str, Any]]:
        """The giver's gifts, newest first, each with its link, readers and state."""
        now = now or utcnow()
        rows = self.session.execute(
            select(Gift, func.count(GiftReader.visitor))
            .outerjoin(GiftReader, GiftReader.gift_id == Gift.id)
            .where(Gift.giver_id == account.id)
            .group_by(Gift.id)
            .order_by(Gift.created_at.desc(), Gift.id)
        ).all()
        return [
            {
                "id": gift.id,
                "article": gift.article,
                "url": self.url_for(gift),
                "created_at": gift.created_at.isoformat(),
                "expires_at": gift.expires_at.isoformat(),
                "revoked_at": gift.revoked_at.isoformat() if gift.revoked_at else None,
                "readers": int(readers),
                "state": state_of(gift, int(readers), self.settings.max_readers, now),
            }
            for gift, readers in rows
        ]

    def remaining(self, account: Account, now: datetime | None = None) -> int:
        now = now or utcnow()
        return max(self.settings.per_month - self.used_this_month(account.id, now), 0)

    def revoke(self, account: Account, gift_id: str, now: datetime | None = None) -> Gift:
        """End one of the reader's own gifts now (anyone else's is not found)."""
        gift = self.session.get(Gift, gift_id)
        if gift is None or gift.giver_id != account.id:
            raise NotFound("No such gift.", code="unknown_gift")
        if gift.revoked_at is None:
            gift.revoked_at = now or utcnow()
            self.session.flush()
        return gift

    # -- the recipient -----------------------------------------------------------------------
    def open(self, token: str, article: str, visitor: str, now: datetime | None = None) -> Gift:
        """Check a gift link opened on ``article`` by the browser ``visitor``; a browser not
        seen before takes one of the link's reader places. Raises the reason it cannot."""
        now = now or utcnow()
        try:
            payload = self.signer.loads(token)
        except BadSignature as exc:
            raise GiftInvalid() from exc
        if not (
            isinstance(payload, list)
            and len(payload) == 2
            and all(isinstance(part, str) for part in payload)
        ):
            raise GiftInvalid()
        gift_id, signed_article = payload
        if signed_article != article:
            raise GiftWrongArticle()
        # Lock the gift, so concurrent new readers are counted one after the other.
        gift = self.session.scalar(select(Gift).where(Gift.id == gift_id).with_for_update())
        if gift is None or gift.article != article:
            raise GiftInvalid()
        if gift.revoked_at is not None:
            raise GiftRevoked()
        if gift.expires_at <= now:
            raise GiftExpired()
        if self.session.get(GiftReader, (gift.id, visitor)) is not None:
            return gift
        readers = self.session.scalar(
            select(func.count()).select_from(GiftReader).where(GiftReader.gift_id == gift.id)
        )
        if int(readers or 0) >= self.settings.max_readers:
            raise GiftUsedUp()
        self.session.add(GiftReader(gift_id=gift.id, visitor=visitor, opened_at=now))
        self.session.flush()
        return gift


def gift_service() -> GiftService:
    from flask import current_app, g

    from paywall.billing.services import billing_service
    from paywall.devices.services import device_service
    from paywall.extensions import db

    if "gift_service" not in g:
        g.gift_service = GiftService(
            db.session,
            GiftSettings.from_config(current_app.config),
            billing_service().access_for,
            device_service().lock_account,
        )
    return g.gift_service  # type: ignore[no-any-return]
