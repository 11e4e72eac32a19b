"""Billing's background work."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import select

from paywall.accounts.models import Account
from paywall.billing.models import Subscription
from paywall.billing.services import LIVE_STATUSES, billing_service
from paywall.billing.webhooks import ENFORCE_CAPS, replay
from paywall.extensions import db
from paywall.queue import defer, task


@task(ENFORCE_CAPS)
def enforce_caps(after_account_id: str) -> int:
    """Evict overflow devices of one batch of live subscribers (account ids after
    ``after_account_id``; "" = from the start), then queue the next batch. Evicting is
    idempotent, so a redelivered batch changes nothing; returns the batch's size."""
    size = int(current_app.config["CAP_ENFORCEMENT_BATCH"])
    query = (
        select(Subscription.account_id)
        .where(Subscription.status.in_(LIVE_STATUSES))
        .distinct()
        .order_by(Subscription.account_id)
        .limit(size)
    )
    if after_account_id:
        query = query.where(Subscription.account_id > after_account_id)
    account_ids = db.session.scalars(query).all()
    devices = billing_service().devices
    for account in db.session.scalars(select(Account).where(Account.id.in_(account_ids))):
        devices.enforce_cap(account)
    if len(account_ids) == size:
        defer(ENFORCE_CAPS, account_ids[-1])
    return len(account_ids)


@task("billing.reconcile", acks_late=False)
def reconcile() -> int:
    """What ``flask billing reconcile`` does, on the beat schedule; returns changes made."""
    billing = billing_service()
    changes = billing.reconcile()
    replay(db.session, billing, statuses=("orphaned",))
    db.session.commit()
    return len(changes)
