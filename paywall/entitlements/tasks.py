"""Entitlements' background work: outbound webhooks, the revocation sweep and purge."""

from __future__ import annotations

from typing import Any

from flask import current_app

from paywall.entitlements import outbound, revocations
from paywall.extensions import db
from paywall.queue import RetryLater, task


@task(outbound.TASK, retry_schedule_setting="OUTBOUND_WEBHOOK_RETRY_SCHEDULE")
def deliver_webhook(msg_id: str, url: str, payload: dict[str, Any]) -> int:
    """Deliver one signed webhook; a refusal or a network error retries with backoff."""
    try:
        return outbound.deliver(current_app.config["OUTBOUND_WEBHOOK_SECRET"], msg_id, url, payload)
    except outbound.DeliveryFailed as exc:
        raise RetryLater(str(exc)) from exc


@task("entitlements.revocations_sweep", acks_late=False)
def sweep() -> int:
    """Record sessions and access that ended by the clock (every REVOCATION_SWEEP_INTERVAL)."""
    count = revocations.sweep(db.session)
    db.session.commit()
    return count


@task("entitlements.revocations_purge", acks_late=False)
def purge() -> int:
    deleted = revocations.purge(db.session)
    db.session.commit()
    return deleted
