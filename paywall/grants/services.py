"""Granting and revoking access by hand. Flushes; the CLI command commits."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import select

from paywall.accounts.models import Account
from paywall.accounts.passwords import normalise_email
from paywall.clock import utcnow
from paywall.devices.models import DeviceSession
from paywall.entitlements.revocations import GRANT_ENDED, record
from paywall.errors import NotFound, PaywallError
from paywall.grants.access import Grant
from paywall.grants.models import AccessGrant
from paywall.outbox.services import Outbox
from paywall.types import DbSession

KNOWN_FEATURES = ("premium_content", "notifications")


class GrantInvalid(PaywallError):
    code, status = "grant_invalid", 422


#: What ends the devices over a lowered cap: ``DeviceService.enforce_cap``, as after a plan
#: downgrade (least recently used first).
EnforceCap = Callable[[Account], list[DeviceSession]]


def _signed_out_text(victims: Sequence[DeviceSession]) -> str:
    if not victims:
        return ""
    listed = "\n".join(f"- {v.device_name}" for v in victims)
    return (
        f"\n\nYour account now allows fewer devices at once, so "
        f"{'these were' if len(victims) != 1 else 'this one was'} signed out "
        f"(the least recently used first):\n\n{listed}"
    )


class GrantService:
    def __init__(
        self,
        session: DbSession,
        outbox: Outbox | None = None,
        enforce_cap: EnforceCap | None = None,
    ) -> None:
        """``enforce_cap`` is needed by whatever ends or replaces grants (``grant_service()``
        wires it); reading grants (``grant_for``) does without."""
        self.session = session
        self.outbox = outbox or Outbox(session)
        self.enforce_cap = enforce_cap

    def _cap_devices(self, account: Account) -> list[DeviceSession]:
        """A grant that raised ``max_devices`` ended: sign out the overflow now, as a plan
        downgrade does, instead of leaving it until the devices next sign in."""
        if self.enforce_cap is None:
            raise RuntimeError("GrantService needs enforce_cap to end grants")
        return self.enforce_cap(account)

    def _tell_ended(
        self, row: AccessGrant, why: str, signed_out: Sequence[DeviceSession] = ()
    ) -> None:
        """The reader hears when granted access ends, once per grant (the outbox dedupes)."""
        account = self.session.get(Account, row.account_id)
        if account is None or account.deleted_at is not None:
            return
        self.outbox.enqueue(
            kind="grant_ended",
            to=account.email,
            subject="Your complimentary access has ended",
            body=(
                f"The access you were given ({', '.join(row.features)}) {why}."
                f"{_signed_out_text(signed_out)}\n\n"
                "You can keep reading with a subscription."
            ),
            dedupe_key=f"grant-ended:{row.id}",
        )

    def _close(self, row: AccessGrant, why: str, now: datetime) -> None:
        account = self.session.get(Account, row.account_id)
        victims = self._cap_devices(account) if account is not None else []
        self._tell_ended(row, why, victims)
        row.closed_at = now

    def end_expired(self, now: datetime | None = None) -> list[AccessGrant]:
        """Apply the end of every grant that reached its date and was not closed yet: sign out
        devices over the cap it raised, email the reader (access itself ended at the date:
        every access computation checks it). Safe to run again: each grant is closed once."""
        now = now or utcnow()
        rows = list(
            self.session.scalars(
                select(AccessGrant).where(
                    AccessGrant.revoked_at.is_(None),
                    AccessGrant.closed_at.is_(None),
                    AccessGrant.until <= now,
                )
            )
        )
        for row in rows:
            self._close(row, f"ended on {row.until.date().isoformat()}", now)
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
        replaced = self.active(account.id, now)
        lost: set[str] = set()
        for old in replaced:
            old.revoked_at, old.revoked_by, old.closed_at = now, f"{by} (replaced)", now
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
        if replaced:
            # The new grant may allow fewer devices than the one it replaces.
            victims = self._cap_devices(account)
            if victims:
                self.outbox.enqueue(
                    kind="devices_evicted",
                    to=account.email,
                    subject="Devices were signed out",
                    body="Your complimentary access changed." + _signed_out_text(victims).rstrip(),
                    dedupe_key=f"grant-replaced:{row.id}",
                )
        return row

    def revoke(self, email: str, *, by: str, now: datetime | None = None) -> list[AccessGrant]:
        now = now or utcnow()
        account = self._account(email)
        ended = self.active(account.id, now)
        for row in ended:
            row.revoked_at, row.revoked_by = now, by
        self.session.flush()  # the cap is computed without the revoked grants
        for row in ended:
            self._close(row, "was withdrawn", now)
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

    def grants_for(
        self, account_ids: Sequence[str], now: datetime | None = None
    ) -> dict[str, Grant]:
        """``grant_for`` of many readers in one query (the story fan-out's chunks)."""
        now = now or utcnow()
        best: dict[str, AccessGrant] = {}
        rows = self.session.scalars(
            select(AccessGrant).where(
                AccessGrant.account_id.in_(list(account_ids)),
                AccessGrant.revoked_at.is_(None),
                AccessGrant.until > now,
            )
        ).all()
        for row in rows:
            if not row.active_at(now):
                continue
            held = best.get(row.account_id)
            if held is None or row.until > held.until:
                best[row.account_id] = row
        return {
            account_id: Grant(tuple(row.features), row.max_devices, row.until)
            for account_id, row in best.items()
        }

    def listing(self) -> list[tuple[AccessGrant, str]]:
        return [
            (row, email)
            for row, email in self.session.execute(
                select(AccessGrant, Account.email)
                .join(Account, Account.id == AccessGrant.account_id)
                .order_by(AccessGrant.created_at)
            ).all()
        ]


def grant_service() -> GrantService:
    """A GrantService that can end grants: the device cap is enforced as billing does."""
    from paywall.devices.services import device_service
    from paywall.extensions import db

    return GrantService(db.session, enforce_cap=device_service().enforce_cap)
