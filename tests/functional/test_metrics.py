"""GET /metrics: only with the bearer token, and the numbers move with what the service does."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from paywall import metrics
from paywall.extensions import db
from paywall.outbox.models import OutboxEmail
from paywall.queue import Job
from tests.conftest import PASSWORD, AuthActions, free_port
from tests.functional.test_billing_followthrough import event_of, post_event

TOKEN = secrets.token_hex(32)
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"METRICS_TOKEN": TOKEN}


def scrape(client: FlaskClient) -> Samples:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.data
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_are_404_without_the_setting(database_url: str, smtp_server: Any) -> None:
    from tests.conftest import make_app, truncate_all

    app = make_app(database_url, smtp_server[1])
    try:
        response = app.test_client().get("/metrics", headers={"Authorization": "Bearer x"})
        assert response.status_code == 404
        assert response.get_json()["error"]["code"] == "not_found"
    finally:
        truncate_all(app)


@pytest.mark.parametrize(
    "header", [None, "", "Bearer", f"Bearer {TOKEN[:-1]}", f"Basic {TOKEN}", f"bearer {TOKEN}x"]
)
def test_metrics_refuse_a_missing_or_wrong_token(client: FlaskClient, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "metrics_token_required"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert b"paywall_" not in response.data


def test_a_short_metrics_token_is_refused_at_start_up(database_url: str) -> None:
    from paywall import create_app
    from paywall.config import ConfigError
    from tests.conftest import base_config

    with pytest.raises(ConfigError, match="PAYWALL_METRICS_TOKEN"):
        create_app(base_config(database_url, 25, METRICS_TOKEN="short"))


def test_requests_are_counted_by_endpoint_and_status_with_latency(client: FlaskClient) -> None:
    before = scrape(client)
    for _ in range(3):
        assert client.get("/healthz").status_code == 200
    assert client.get("/no/such/page").status_code == 404
    after = scrape(client)
    ok = {"endpoint": "health.healthz", "method": "GET", "status": "200"}
    assert (
        value(after, "paywall_http_requests_total", **ok)
        - value(before, "paywall_http_requests_total", **ok)
        == 3
    )
    missing = {"endpoint": "unmatched", "method": "GET", "status": "404"}
    assert (
        value(after, "paywall_http_requests_total", **missing)
        - value(before, "paywall_http_requests_total", **missing)
        == 1
    )
    timed = {"endpoint": "health.healthz", "method": "GET"}
    name = "paywall_http_request_duration_seconds_count"
    assert value(after, name, **timed) - value(before, name, **timed) == 3
    assert value(after, "paywall_http_request_duration_seconds_sum", **timed) > 0


@pytest.mark.parametrize(
    "app_config", [{"METRICS_TOKEN": TOKEN, "MAX_DEVICES": 1, "DEVICE_POLICY": "evict_lru"}]
)
def test_logins_tokens_and_evictions_are_counted(
    client: FlaskClient, auth: AuthActions, reader: str
) -> None:
    before = scrape(client)
    _browser, wrong = auth.log_in(reader, "not the password")
    assert wrong.status_code == 401
    first = auth.browser(reader, "Laptop")
    auth.browser(reader, "Phone")  # the cap is 1: the laptop is pushed out
    assert first.post("/api/v1/entitlements/token").status_code == 401
    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("paywall_logins_total", outcome="success") == 2
    assert delta("paywall_logins_total", outcome="invalid_credentials") == 1
    assert delta("paywall_device_evictions_total", cause="login_lru") == 1
    phone = auth.browser(reader, "Tablet")
    assert phone.post("/api/v1/entitlements/token").status_code == 200
    assert (
        value(scrape(client), "paywall_entitlement_tokens_issued_total")
        - value(after, "paywall_entitlement_tokens_issued_total")
        == 1
    )


@pytest.mark.parametrize(
    "app_config",
    [{"METRICS_TOKEN": TOKEN, "RATELIMIT_ENABLED": True, "LOGIN_LIMIT_PER_ACCOUNT": "2 per hour"}],
)
def test_rate_limit_refusals_are_counted(
    client: FlaskClient, auth: AuthActions, reader: str
) -> None:
    before = scrape(client)
    codes = [auth.log_in(reader, "wrong")[1].status_code for _ in range(3)]
    assert codes == [401, 401, 429]
    after = scrape(client)
    refused = sum(
        v - before.get(k, 0.0) for k, v in after.items() if k[0] == "paywall_rate_limited_total"
    )
    assert refused == 1
    assert (
        value(after, "paywall_logins_total", outcome="rate_limited")
        - value(before, "paywall_logins_total", outcome="rate_limited")
        == 1
    )


def test_an_eviction_rolled_back_is_not_counted(app: Flask) -> None:
    child = metrics.EVICTIONS.labels("test_rollback")
    with app.app_context():
        start = child._value.get()
        db.session.scalars(select(Job.id)).all()
        metrics.count_on_commit(db.session, child)
        db.session.rollback()
        db.session.scalars(select(Job.id)).all()
        metrics.count_on_commit(db.session, child)
        with db.session.begin_nested():
            pass  # a savepoint released is not the commit
        assert child._value.get() == start
        db.session.commit()
        assert child._value.get() - start == 1
        db.session.remove()


@pytest.mark.parametrize("app_config", [{"METRICS_TOKEN": TOKEN}])
def test_webhooks_are_counted_by_type_and_outcome(billing_app: Flask, standin: Any) -> None:
    client = billing_app.test_client()
    before = scrape(client)
    ignored = event_of("balance.available", {"id": "txn_1", "object": "balance"})
    assert post_event(billing_app, standin, ignored).status_code == 200
    assert post_event(billing_app, standin, ignored).status_code == 200  # the redelivery
    forged = client.post(
        "/api/v1/stripe/webhook",
        data=b"{}",
        headers={"Stripe-Signature": "t=1,v1=00", "Content-Type": "application/json"},
    )
    assert forged.status_code == 400
    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("paywall_webhooks_total", type="balance.available", outcome="ignored") == 1
    assert delta("paywall_webhooks_total", type="balance.available", outcome="duplicate") == 1
    assert delta("paywall_webhooks_refused_total") == 1


def test_backlogs_and_dependencies_are_read_from_the_database(
    app: Flask, client: FlaskClient
) -> None:
    empty = scrape(client)
    assert value(empty, "paywall_outbox_unsent_emails") == 0
    assert value(empty, "paywall_queue_jobs_open", task="outbox.send_email") == 0
    assert value(empty, "paywall_dependency_up", dependency="database") == 1
    with app.app_context():
        # Rows as a stopped worker leaves them: recorded, never run.
        email = OutboxEmail(kind="test", to="a@example.com", subject="s", body="b")
        db.session.add(email)
        db.session.flush()
        db.session.add_all(
            [
                Job(task="outbox.send_email", args=[email.id]),
                Job(task="outbox.send_email", args=[email.id]),
                Job(
                    task="billing.reconcile",
                    args=[],
                    outcome="failed",
                    finished_at=email.created_at,
                ),
            ]
        )
        db.session.commit()
        db.session.remove()
    full = scrape(client)
    assert value(full, "paywall_outbox_unsent_emails") == 1
    assert value(full, "paywall_queue_jobs_open", task="outbox.send_email") == 2
    assert value(full, "paywall_queue_jobs_failed", task="billing.reconcile") == 1
    assert value(full, "paywall_queue_oldest_due_job_age_seconds", task="outbox.send_email") >= 0
    assert (
        "paywall_queue_oldest_due_job_age_seconds",
        frozenset({("task", "outbox.send_email")}),
    ) in full


def test_a_login_page_submission_counts_too(client: FlaskClient, reader: str) -> None:
    before = scrape(client)
    response = client.post("/login", data={"email": reader, "password": PASSWORD})
    assert response.status_code in (302, 303)
    after = scrape(client)
    assert (
        value(after, "paywall_logins_total", outcome="success")
        - value(before, "paywall_logins_total", outcome="success")
        == 1
    )


@pytest.mark.parametrize(
    "app_config",
    [
        {
            "METRICS_TOKEN": TOKEN,
            "CELERY_TASK_ALWAYS_EAGER": False,
            "CELERY_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0",  # nothing listens
        }
    ],
)
def test_an_unreachable_broker_reads_as_down(client: FlaskClient) -> None:
    page = scrape(client)
    assert value(page, "paywall_dependency_up", dependency="broker") == 0
    assert value(page, "paywall_dependency_up", dependency="database") == 1
