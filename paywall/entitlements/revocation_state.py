"""What the online checks ask about revocation: ``is_revoked(sub, sid, iat) -> reason | None``.

The revocation feed (``paywall/entitlements/revocations.py``, issue 9 §3) provides a state kept
fresh per process with no query per token. Until it is in place, ``DatabaseState`` answers the
same question the way the service always has: by reading the device session and the reader's
access for each token (an ended session or a lost feature is refused at once).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Protocol

from sqlalchemy import select

from paywall.accounts.models import Account
from paywall.billing.services import BillingService
from paywall.clock import utcnow
from paywall.devices.models import DeviceSession
from paywall.devices.services import DevicePolicy, end_code
from paywall.types import DbSession


class RevocationState(Protocol):
    def is_revoked(self, sub: str, sid: str, iat: int) -> str | None:
        """Why tokens of this account/session issued at ``iat`` are refused, or None."""


class NothingRevoked:
    def is_revoked(self, sub: str, sid: str, iat: int) -> str | None:
        return None


class DatabaseState:
    """Interim: one look at the database per token (replaced by the feed's state)."""

    def __init__(self, session: DbSession, billing: BillingService, policy: DevicePolicy) -> None:
        self.session = session
        self.billing = billing
        self.policy = policy

    def is_revoked(
        self, sub: str, sid: str, iat: int, features: Collection[str] = ()
    ) -> str | None:
        device = self.session.scalar(select(DeviceSession).where(DeviceSession.id == sid))
        if device is None or device.account_id != sub:
            return "session_ended"
        if end_code(device, utcnow(), self.policy) is not None:
            return "session_ended"
        account = self.session.get(Account, sub)
        if account is None:
            return "account_deleted"
        if not set(features) <= set(self.billing.access_for(account).features):
            return "access_lowered"
        return None


def revoked_reason(state: RevocationState, claims: Mapping[str, Any]) -> str | None:
    """Ask ``state`` about a verified token's claims."""
    if isinstance(state, DatabaseState):
        return state.is_revoked(
            claims["sub"], claims["sid"], int(claims["iat"]), claims.get("features") or ()
        )
    return state.is_revoked(claims["sub"], claims["sid"], int(claims["iat"]))


def revocation_state() -> RevocationState:
    """The state for this request's online checks."""
    from flask import current_app

    from paywall.billing.services import billing_service
    from paywall.extensions import db

    return DatabaseState(
        db.session, billing_service(), DevicePolicy.from_config(current_app.config)
    )
