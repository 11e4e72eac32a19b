"""A catalogue webhook (product.* / price.*) answers without touching subscribers; the device
caps are enforced afterwards by a worker, in batches."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event, func, select

from paywall.accounts.models import Account
from paywall.billing.models import Subscription
from paywall.clock import utcnow
from paywall.devices.models import DeviceSession
from paywall.extensions import db
from paywall.queue import Job
from tests.conftest import Stripe
from tests.queue.test_queue import wait_until


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    return {**app_config, "CAP_ENFORCEMENT_BATCH": 8}


def add_subscribers(app: Flask, price_id: str, count: int, devices: int = 4) -> None:
    """Readers on ``price_id`` with ``devices`` signed-in devices each, written directly."""
    now = utcnow()
    with app.app_context():
        for _ in range(count):
            account = Account(email=f"{secrets.token_hex(6)}@example.com", password_hash="x")
            db.session.add(account)
            db.session.flush()
            db.session.add(
                Subscription(
                    id="sub_" + secrets.token_hex(8),
                    account_id=account.id,
                    stripe_customer_id="cus_" + secrets.token_hex(8),
                    price_id=price_id,
                    status="active",
                    current_period_end=now + timedelta(days=20),
                )
            )
            for n in range(devices):
                db.session.add(
                    DeviceSession(
                        account_id=account.id,
                        token_digest=secrets.token_hex(32),
                        device_name=f"Device {n}",
                        last_seen_at=now - timedelta(minutes=n),
                        expires_at=now + timedelta(days=30),
                    )
                )
        db.session.commit()
        db.session.remove()


def lower_cap(stripe: Stripe, standin: Any, max_devices: int) -> int:
    """Lower Premium's device cap in Stripe; returns the SQL statements its webhook ran."""
    product = next(p for p in standin.objects("product") if p["name"] == "Premium")
    stripe.client.v1.products.update(
        product["id"], params={"metadata": {"max_devices": str(max_devices)}}
    )
    statements: list[str] = []
    with stripe.app.app_context():
        engine = db.engine

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(engine, "before_cursor_execute", count)
    try:
        stripe.deliver()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return len(statements)


def most_devices(app: Flask) -> int:
    with app.app_context():
        per_account = (
            select(func.count(DeviceSession.id))
            .where(DeviceSession.ended_at.is_(None))
            .group_by(DeviceSession.account_id)
        )
        result = max(db.session.scalars(per_account).all())
        db.session.remove()
        return int(result)


def test_catalogue_webhook_work_is_constant_and_caps_are_enforced_by_a_worker(
    billing_app: Flask, stripe_actions: Stripe, standin: Any, start_worker: Any
) -> None:
    stripe_actions.deliver()  # the catalogue's creation events
    price = next(p for p in standin.objects("price") if p.get("lookup_key") == "premium_monthly")
    add_subscribers(billing_app, price["id"], 3)
    few = lower_cap(stripe_actions, standin, 4)
    add_subscribers(billing_app, price["id"], 37)
    many = lower_cap(stripe_actions, standin, 2)
    assert many == few  # the webhook does the same work for 3 or 40 subscribers
    assert most_devices(billing_app) == 4  # nothing evicted inside the request

    start_worker(billing_app)

    def all_done() -> bool:
        with billing_app.app_context():
            open_jobs = db.session.scalar(
                select(func.count(Job.id)).where(Job.finished_at.is_(None))
            )
            db.session.remove()
            return open_jobs == 0

    wait_until(all_done, timeout=120)
    assert most_devices(billing_app) == 2
    with billing_app.app_context():
        outcomes = db.session.scalars(
            select(Job.outcome).where(Job.task == "billing.enforce_caps")
        ).all()
        db.session.remove()
    # Two catalogue changes: each walked 40 subscribers 8 at a time (5 full batches, 1 empty).
    assert set(outcomes) == {"done"} and len(outcomes) >= 2 * 6
