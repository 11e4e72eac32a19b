"""Billing's side of :class:`paywall.ports.Billing`: what accounts and devices may ask."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from paywall.accounts.models import Account
from paywall.billing.services import billing_service
from paywall.devices.models import DeviceSession
from paywall.devices.services import describe
from paywall.errors import UpstreamError
from paywall.extensions import db
from paywall.ports import Billing


class BillingHooks:
    def describe_account(self, account: Account) -> dict[str, Any]:
        return billing_service().describe_account(account)

    def device_cap(self, account: Account) -> int:
        return billing_service().cap_for(account)

    def list_plans(self) -> list[Any]:
        billing = billing_service()
        try:
            return billing._stripe(billing.plans)  # type: ignore[no-any-return]
        except UpstreamError:
            return []

    def list_invoices(self, account: Account) -> list[dict[str, Any]]:
        return billing_service().invoices(account)

    def erase_account(self, account: Account) -> None:
        billing_service().erase(account)

    def export_account(self, account: Account) -> dict[str, Any]:
        sessions = db.session.scalars(
            select(DeviceSession).where(DeviceSession.account_id == account.id)
        ).all()
        devices = [
            {
                **describe(s),
                "ended_at": s.ended_at.isoformat() if s.ended_at else None,
                "end_reason": s.end_reason,
                "user_agent": s.user_agent,
            }
            for s in sessions
        ]
        return {"devices": devices, **billing_service().export(account)}


if TYPE_CHECKING:
    _checked: Billing = BillingHooks()  # mypy: BillingHooks is the interface accounts use
