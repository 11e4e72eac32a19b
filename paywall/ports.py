"""What accounts and devices ask of billing, as one typed interface.

Billing provides it (``paywall.billing.hooks``) and ``create_app`` registers it; accounts and
devices call :func:`billing` and never import billing, so neither depends on Stripe."""

from __future__ import annotations

from typing import Any, Protocol

from flask import current_app

KEY = "paywall.billing"


class Billing(Protocol):
    def describe_account(self, account: Any) -> dict[str, Any]:
        """The reader as the account API shows it: subscription, entitlements, plan."""

    def device_cap(self, account: Any) -> int:
        """How many devices the reader's plan allows now."""

    def list_plans(self) -> list[Any]:
        """Plans to offer; empty when Stripe cannot be reached."""

    def list_invoices(self, account: Any) -> list[dict[str, Any]]:
        """The reader's invoices (raises PaywallError when Stripe cannot be reached)."""

    def erase_account(self, account: Any) -> None:
        """Billing's part of deleting an account."""

    def export_account(self, account: Any) -> dict[str, Any]:
        """Billing's (and devices') part of an account export."""


def billing() -> Billing:
    """The app's billing interface."""
    return current_app.extensions[KEY]  # type: ignore[no-any-return]
