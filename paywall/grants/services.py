"""Granting and revoking access by hand. Flushes; the CLI command commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select

from paywall.accounts.models import Account
from paywall.accounts.passwords import normalise_email
from paywall.clock import utcnow
from paywall.entitlements.revocations import GRANT_ENDED, record
from paywall.errors import NotFound, PaywallError
from paywall.grants.access import Grant
from paywall.grants.models import AccessGrant
from paywall.outbox.services import Outbox
from paywall.types import DbSession

KNOWN_FEATURES = ("premium_content", "notifications")


class GrantInvalid(PaywallError):
    code, status = "grant_invalid", 422


class GrantService:
    def __init__(self, session: DbSession, outbox: Outbox | None = None) -> None:
        self.session = session
        self.outbox = outbox or Outbox(session)

    def _tell_ended(self, row: AccessGrant, why: str) -> None:
        """The reader hears when granted access ends, once per grant (the outbox dedupes)."""
        account = self.session.get(Account, row.account_id)
        if account is None:
            return
        self.outbox.enqueue(
            kind="grant_ended",
            to=account.email,
            subject="Your complimentary access has ended",
            body=(
                f"The access you were given ({', '.join(row.features)}) {why}.\n\n"
                "You can keep reading with a subscription."
            ),
            dedupe_key=f"grant-ended:{row.id}",
        )

    def end_expired(self, now: datetime | None = None) -> list[AccessGrant]:
        """Email every reader whose grant reached its date (access already ended then: every
        access computation checks the date). Safe to run again: each grant is told once."""
        now = now or utcnow()
        rows = list(
            self.session.scalars(
                select(AccessGrant).where(
                    AccessGrant.revoked_at.is_(None), AccessGrant.until <= now
                )
            )
        )
        for row in rows:
            self._tell_ended(row, f"ended on {row.until.date().isoformat()}")
        self.session.flush()
        return rows

    def _account(self, email: str) -> Account:
        try:
            address = normalise_email(email)
        except ValueError as exc:
            raise NotFound(f"No account for {email}.", code="unknown_account") from exc
        account = self.session.scalar(select(Account).where(Account.email == address))
        if account is None:
            raise NotFound(f"No account for {email}.", code="unknown_account")
        return account

    def grant(
        self,
        email: str,
        *,
        features: Sequence[str],
        until: datetime,
        reason: str,
        by: str,
        max_devices: int | None = None,
        now: datetime | None = None,
    ) -> AccessGrant:
        """Grant ``features`` until ``until``; an earlier active grant of the reader ends now
        (one grant at a time, so the account shows one answer)."""
        now = now or utcnow()
        features = [f.strip() for f in features if f.strip()]
        unknown = [f for f in features if f not in KNOWN_FEATURES]
        if not features or unknown:
            raise GrantInvalid(f"Features must be some of {', '.join(KNOWN_FEATURES)}.")
        if until <= now:
            raise GrantInvalid("--until must be in the future.")
        if not reason.strip():
            raise GrantInvalid("--reason is required: say why access is granted.")
        if max_devices is not None and max_devices < 1:
            raise GrantInvalid("--max-devices must be a positive integer.")
        account = self._account(email)
        lost: set[str] = set()
        for old in self.active(account.id, now):
            old.revoked_at, old.revoked_by = now, f"{by} (replaced)"
            lost.update(f for f in old.features if f not in features)
        if lost:
            # Tokens naming the features the new grant drops stop working (the frontend
            # renews); a subscription may still give them, which the renewed token shows.
            record(self.session, sub=account.id, reason=GRANT_ENDED)
        row = AccessGrant(
            account_id=account.id,
            features=features,
            max_devices=max_devices,
            starts_at=now,
            until=until,
            reason=reason.strip(),
            granted_by=by,
            created_at=now,
        )
        self.session.add(row)
        self.session.flush()
        return row

    def revoke(self, email: str, *, by: str, now: datetime | None = None) -> list[AccessGrant]:
        now = now or utcnow()
        account = self._account(email)
        ended = self.active(account.id, now)
        for row in ended:
            row.revoked_at, row.revoked_by = now, by
            self._tell_ended(row, "was withdrawn")
        self.session.flush()
        if ended:
            record(self.session, sub=account.id, reason=GRANT_ENDED)
        return ended

    def active(self, account_id: str, now: datetime | None = None) -> list[AccessGrant]:
        now = now or utcnow()
        rows = self.session.scalars(
            select(AccessGrant).where(
                AccessGrant.account_id == account_id,
                AccessGrant.revoked_at.is_(None),
                AccessGrant.until > now,
            )
        ).all()
        return [row for row in rows if row.active_at(now)]

    def grant_for(self, account_id: str, now: datetime | None = None) -> Grant | None:
        """The reader's active grant, for the access computation."""
        rows = self.active(account_id, now)
        if not rows:
            return None
        row = max(rows, key=lambda r: r.until)
        return Grant(tuple(row.features), row.max_devices, row.until)

    def listing(self) -> list[tuple[AccessGrant, str]]:
        return [
            (row, email)
            for row, email in self.session.execute(
                select(AccessGrant, Account.email)
                .join(Account, Account.id == AccessGrant.account_id)
                .order_by(AccessGrant.created_at)
            ).all()
        ]
