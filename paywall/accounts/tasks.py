"""Accounts' background work."""

from __future__ import annotations

from paywall.accounts.services import SEND_RESET_LINK, account_service
from paywall.queue import task


@task(SEND_RESET_LINK)
def send_reset_link(email: str) -> bool:
    """Email a reset link if ``email`` (normalised) has an account; the job commits."""
    return account_service().send_reset_link(email)
