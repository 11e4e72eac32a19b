"""Billing's background work."""

from __future__ import annotations

from paywall.billing.services import billing_service
from paywall.billing.webhooks import replay
from paywall.extensions import db
from paywall.queue import task


@task("billing.reconcile", acks_late=False)
def reconcile() -> int:
    """What ``flask billing reconcile`` does, on the beat schedule; returns changes made."""
    billing = billing_service()
    changes = billing.reconcile()
    replay(db.session, billing, statuses=("orphaned",))
    db.session.commit()
    return len(changes)
