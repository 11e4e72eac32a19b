"""PostgreSQL connections cut in the middle of a webhook and of a login: 5xx, no partial rows;
after recovery the redelivered webhook applies once and logins work without a restart.

Connections are cut with ``pg_terminate_backend`` from a second connection at the moment the
request writes, so only this test's connection dies (other suites share the server)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy import event, func, select

from paywall.billing.models import StripeEvent, Subscription
from paywall.devices.models import DeviceSession
from paywall.extensions import db
from tests.conftest import PASSWORD, PG_URL, AuthActions, Stripe

pytestmark = pytest.mark.skipif(not PG_URL, reason="needs PAYWALL_TEST_DATABASE_URL")


@pytest.fixture
def database_url(database_url: str) -> str:
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: SQLite has no connections to cut")
    return database_url


@contextmanager
def cut_connection_on(app: Flask, statement_prefix: str) -> Iterator[list[int]]:
    """Terminate the request's backend when it is about to run ``statement_prefix``."""
    killer = sa.create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    killed: list[int] = []

    def before(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith(statement_prefix) and not killed:
            pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
            with killer.begin() as admin:
                admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            killed.append(pid)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", before)
    try:
        yield killed
    finally:
        event.remove(engine, "before_cursor_execute", before)
        killer.dispose()


def rows(app: Flask, model: Any) -> int:
    with app.app_context():
        return int(db.session.scalar(select(func.count()).select_from(model)) or 0)


def test_login_during_an_outage_is_5xx_writes_nothing_and_recovers(
    app: Flask, auth: AuthActions, reader: str
) -> None:
    with cut_connection_on(app, "INSERT INTO DEVICE_SESSIONS") as killed:
        _browser, response = auth.log_in()
    assert killed, "the connection was not cut"
    assert response.status_code == 500
    assert response.get_json()["error"] == {
        "code": "internal_error",
        "message": "Something went wrong on our side.",
    }
    assert rows(app, DeviceSession) == 0
    _browser, again = auth.log_in()
    assert again.status_code == 201
    assert rows(app, DeviceSession) == 1


def test_webhook_during_an_outage_is_5xx_and_the_redelivery_applies_once(
    billing_app: Flask, billing_auth: AuthActions, stripe_actions: Stripe, standin: Any
) -> None:
    billing_auth.sign_up()
    browser = billing_auth.browser()
    stripe_actions.deliver()
    stripe_actions.subscribe(browser)
    deliveries = standin.take_deliveries()
    created = next(d for d in deliveries if d.type == "customer.subscription.created")
    client = billing_app.test_client()
    headers = {
        "Stripe-Signature": created.headers["Stripe-Signature"],
        "Content-Type": "application/json",
    }
    with cut_connection_on(billing_app, "INSERT INTO BILLING_SUBSCRIPTIONS") as killed:
        failed = client.post("/api/v1/stripe/webhook", data=created.payload, headers=headers)
    assert killed
    assert failed.status_code == 500
    assert rows(billing_app, Subscription) == 0
    with billing_app.app_context():  # kept as failed (never lost), or not at all if that failed
        stored = db.session.get(StripeEvent, created.event_id)
        assert stored is None or stored.status == "failed"
    redelivered = client.post("/api/v1/stripe/webhook", data=created.payload, headers=headers)
    assert redelivered.status_code == 200
    assert redelivered.get_json()["outcome"] == "processed"
    again = client.post("/api/v1/stripe/webhook", data=created.payload, headers=headers)
    assert again.get_json()["outcome"] == "duplicate"
    assert rows(billing_app, Subscription) == 1
    account = browser.get("/api/v1/account").get_json()
    assert "premium_content" in account["entitlements"]["features"]
    _b, login = billing_auth.log_in(password=PASSWORD)
    assert login.status_code == 201


def test_token_refresh_retries_once_on_a_connection_cut_before_its_select(
    app: Flask, auth: AuthActions, reader: str
) -> None:
    """The pool does not ping on checkout; the refresh's one-statement read finds the dead
    connection, the pool is renewed and the read runs again: 200, no failed request."""
    browser = auth.browser()
    assert browser.post("/api/v1/entitlements/token").status_code == 200  # first use recorded
    with cut_connection_on(app, "SELECT DEVICE_SESSIONS.ID") as killed:
        response = browser.post("/api/v1/entitlements/token")
    assert killed, "the connection was not cut"
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["token"]
