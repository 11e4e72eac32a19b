"""Login storms: 20 logins of one account at once, and logins racing sign-outs, 50 times over:
never more active sessions than the cap, no orphan rows, no 500."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

from flask import Flask
from sqlalchemy import func, select, update

from paywall.accounts.models import Account
from paywall.clock import utcnow
from paywall.devices.models import DeviceSession
from paywall.extensions import db
from tests.conftest import PASSWORD, AuthActions
from tests.functional.test_device_cap_concurrency import active_count, race_logins_and_sign_outs

ROUNDS = 50


def end_all_sessions(app: Flask) -> None:
    with app.app_context():
        db.session.execute(update(DeviceSession).values(ended_at=utcnow(), end_reason="signed_out"))
        db.session.commit()


def orphans(app: Flask) -> int:
    with app.app_context():
        return int(
            db.session.scalar(
                select(func.count())
                .select_from(DeviceSession)
                .outerjoin(Account, Account.id == DeviceSession.account_id)
                .where(Account.id.is_(None))
            )
            or 0
        )


def test_twenty_logins_at_once_fifty_times(app: Flask, auth: AuthActions, reader: str) -> None:
    with ThreadPoolExecutor(max_workers=20) as pool:
        for round_ in range(ROUNDS):
            end_all_sessions(app)
            barrier = Barrier(20)

            def login(i: int, barrier: Barrier = barrier) -> int:
                client = app.test_client()
                barrier.wait()
                return client.post(
                    "/api/v1/sessions", json={"email": "reader@example.com", "password": PASSWORD}
                ).status_code

            statuses = list(pool.map(login, range(20)))
            assert statuses.count(201) == 5 and statuses.count(409) == 15, (round_, statuses)
            assert active_count(app) == 5
    assert orphans(app) == 0


def test_logins_racing_sign_outs_fifty_times(app: Flask, auth: AuthActions, reader: str) -> None:
    for round_ in range(ROUNDS):
        statuses = race_logins_and_sign_outs(app, auth, round_)
        assert 500 not in statuses, (round_, statuses)
        assert active_count(app) <= 5, round_
    assert orphans(app) == 0
