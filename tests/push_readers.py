"""Readers with a signed-in device and a push subscription each, written straight to the
database (the opt-in API has its own tests): the fan-out tests' audience."""

from __future__ import annotations

import secrets
from datetime import timedelta

from flask import Flask

from paywall.accounts.models import Account
from paywall.billing.models import Subscription
from paywall.clock import utcnow
from paywall.devices.models import DeviceSession
from paywall.extensions import db
from paywall.notifications.models import PushSubscription
from paywall.notifications.services import endpoint_digest
from push_standin import PushStandIn


def add_push_readers(app: Flask, push: PushStandIn, count: int, price_id: str | None) -> list[str]:
    """``count`` readers with one live device session and one push subscription at ``push``
    each, and a live subscription to ``price_id`` when it is given; returns the endpoints."""
    now = utcnow()
    endpoints = []
    with app.app_context():
        for _ in range(count):
            account = Account(email=f"{secrets.token_hex(6)}@example.com", password_hash="x")
            db.session.add(account)
            db.session.flush()
            if price_id is not None:
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
            device = DeviceSession(
                account_id=account.id,
                token_digest=secrets.token_hex(32),
                device_name="Phone",
                last_seen_at=now,
                expires_at=now + timedelta(days=30),
            )
            db.session.add(device)
            db.session.flush()
            browser = push.new_subscription()
            db.session.add(
                PushSubscription(
                    account_id=account.id,
                    device_session_id=device.id,
                    endpoint=browser["endpoint"],
                    endpoint_digest=endpoint_digest(browser["endpoint"]),
                    p256dh=browser["keys"]["p256dh"],
                    auth=browser["keys"]["auth"],
                    created_at=now,
                )
            )
            endpoints.append(browser["endpoint"])
        db.session.commit()
        db.session.remove()
    return endpoints
