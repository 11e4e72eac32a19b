"""The five-device cap holds when logins race (Keycloak's 1,000-sessions-under-50 bug)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

from flask import Flask
from sqlalchemy import func, select

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


def test_logins_racing_sign_outs_never_exceed_the_cap(
    app: Flask, auth: AuthActions, reader: str
) -> None:
    for round_ in range(3):
        browsers = [auth.browser(name=f"R{round_}-{i}") for i in range(5 - active_count(app))]
        ids = [
            s["id"] for s in browsers[0].get("/api/v1/sessions").get_json()["sessions"]
        ] if browsers else []
        barrier = Barrier(10)

        def login(i: int) -> int:
            client = app.test_client()
            barrier.wait()
            return client.post(
                "/api/v1/sessions", json={"email": "reader@example.com", "password": PASSWORD}
            ).status_code

        def sign_out(i: int) -> int:
            barrier.wait()
            if i < len(ids) and browsers:
                return browsers[0].delete(f"/api/v1/sessions/{ids[i]}").status_code
            return 204

        with ThreadPoolExecutor(max_workers=10) as pool:
            results = list(pool.map(lambda i: login(i) if i % 2 else sign_out(i // 2), range(10)))
        assert 500 not in results
        assert active_count(app) <= 5
