"""The five-device cap holds when logins race (Keycloak's 1,000-sessions-under-50 bug)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

from flask import Flask
from sqlalchemy import func, select, update

from paywall.clock import utcnow
from paywall.devices.models import DeviceSession
from paywall.extensions import db
from tests.conftest import PASSWORD, AuthActions


def active_count(app: Flask) -> int:
    with app.app_context():
        count = db.session.scalar(
            select(func.count()).select_from(DeviceSession).where(DeviceSession.ended_at.is_(None))
        )
        db.session.remove()
        return int(count or 0)


def race_logins(app: Flask, n: int) -> list[int]:
    barrier = Barrier(n)

    def one(i: int) -> int:
        client = app.test_client()
        barrier.wait()
        response = client.post(
            "/api/v1/sessions",
            json={"email": "reader@example.com", "password": PASSWORD, "device_name": f"D{i}"},
        )
        return response.status_code

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(one, range(n)))


def test_twenty_concurrent_logins_end_with_exactly_five_sessions(
    app: Flask, auth: AuthActions, reader: str
) -> None:
    statuses = race_logins(app, 20)
    assert sorted(set(statuses)) == [201, 409], statuses
    assert statuses.count(201) == 5
    assert statuses.count(409) == 15
    assert active_count(app) == 5


def race_logins_and_sign_outs(app: Flask, auth: AuthActions, round_: int) -> list[int]:
    """Fill the account to the cap, then race 5 logins against 5 sign-outs of its devices."""
    with app.app_context():
        db.session.execute(update(DeviceSession).values(ended_at=utcnow(), end_reason="signed_out"))
        db.session.commit()
    browsers = [auth.browser(name=f"R{round_}-{i}") for i in range(5)]
    owner = browsers[0]
    ids = [s["id"] for s in owner.get("/api/v1/sessions").get_json()["sessions"]]
    barrier = Barrier(10)

    def login(_: int) -> int:
        client = app.test_client()
        barrier.wait()
        return client.post(
            "/api/v1/sessions", json={"email": "reader@example.com", "password": PASSWORD}
        ).status_code

    def sign_out(i: int) -> int:
        client = app.test_client()
        client.set_cookie("paywall_session", owner.get_cookie("paywall_session").value)
        barrier.wait()
        return client.delete(f"/api/v1/sessions/{ids[i % len(ids)]}").status_code

    with ThreadPoolExecutor(max_workers=10) as pool:
        futures = [pool.submit(login if i % 2 else sign_out, i // 2) for i in range(10)]
        return [f.result() for f in futures]


def test_logins_racing_sign_outs_never_exceed_the_cap(
    app: Flask, auth: AuthActions, reader: str
) -> None:
    for round_ in range(3):
        statuses = race_logins_and_sign_outs(app, auth, round_)
        assert 500 not in statuses, statuses
        assert set(statuses) <= {201, 204, 401, 404, 409}, statuses
        assert active_count(app) <= 5
