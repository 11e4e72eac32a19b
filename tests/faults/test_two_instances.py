"""Two instances of the service (gunicorn with deploy/gunicorn.conf.py, one PostgreSQL, one Redis)
behind one nginx: racing logins keep the device cap, every webhook delivered twice (to either
instance) is stored and applied once, and each instance's /metrics counts its own share."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import func, select

from paywall.billing.models import StripeEvent
from paywall.clock import utcnow
from paywall.devices.models import DeviceSession
from paywall.extensions import db
from stripe_standin.webhooks import sign
from tests.conftest import PASSWORD, PG_URL, REDIS_URL, AuthActions, free_port
from tests.faults.test_processes import TOKEN, Master, scrape
from tests.functional.test_proxy import start_nginx

pytestmark = pytest.mark.skipif(
    not (PG_URL and REDIS_URL), reason="needs PAYWALL_TEST_DATABASE_URL and _REDIS_URL"
)


@pytest.fixture
def database_url(database_url: str) -> str:
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: two instances share one database server")
    return database_url


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"METRICS_TOKEN": TOKEN}


@pytest.fixture
def instances(
    app: Flask, tmp_path: Path, artifacts_dir: Path
) -> Iterator[tuple[list[Master], int]]:
    masters: list[Master] = []
    extra = {"PAYWALL_TRUSTED_PROXY_COUNT": "1", "PAYWALL_RATELIMIT_ENABLED": "false"}
    nginx = None
    try:
        for i in range(2):
            log = artifacts_dir / f"instance-{i}.log"
            log.unlink(missing_ok=True)
            masters.append(
                Master(app, free_port(), log, tmp_path / f"metrics-{i}", extra).start(workers=1)
            )
        conf = tmp_path / "nginx"
        conf.mkdir()
        nginx, port = start_nginx(conf, masters[0].port, also=[masters[1].port])
        yield masters, port
    finally:
        if nginx is not None:
            nginx.terminate()
            nginx.wait(timeout=10)
        for master in masters:
            master.stop()


def active_sessions(app: Flask) -> int:
    with app.app_context():
        count = db.session.scalar(
            select(func.count(DeviceSession.id)).where(
                DeviceSession.ended_at.is_(None), DeviceSession.expires_at > utcnow()
            )
        )
        db.session.remove()
        return int(count or 0)


def test_two_instances_behind_nginx_keep_the_cap_and_apply_each_webhook_once(
    app: Flask, auth: AuthActions, instances: tuple[list[Master], int]
) -> None:
    masters, port = instances
    url = f"http://127.0.0.1:{port}"
    auth.sign_up("racer@example.com")
    barrier = threading.Barrier(16)
    statuses: list[int] = []

    def log_in() -> None:
        barrier.wait(timeout=60)
        response = requests.post(
            url + "/api/v1/sessions",
            json={"email": "racer@example.com", "password": PASSWORD},
            timeout=60,
        )
        statuses.append(response.status_code)

    racers = [threading.Thread(target=log_in) for _ in range(16)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(timeout=120)
    assert sorted(statuses) == [201] * 5 + [409] * 11
    assert active_sessions(app) == 5

    secret = app.config["STRIPE_WEBHOOK_SECRET"][0]
    outcomes: list[str] = []
    for _ in range(20):
        payload = json.dumps(
            {
                "id": f"evt_two_{uuid.uuid4().hex}",
                "object": "event",
                "type": "balance.available",
                "created": int(time.time()),
                "data": {"object": {"id": "txn_1", "object": "balance"}},
            }
        ).encode()
        for _delivery in range(2):  # Stripe redelivers; nginx sends it to either instance
            response = requests.post(
                url + "/api/v1/stripe/webhook",
                data=payload,
                headers={
                    "Stripe-Signature": sign(payload, secret),
                    "Content-Type": "application/json",
                },
                timeout=30,
            )
            assert response.status_code == 200, response.text
            outcomes.append(response.json()["outcome"])
    assert sorted(outcomes) == ["duplicate"] * 20 + ["ignored"] * 20
    with app.app_context():
        assert db.session.scalar(select(func.count(StripeEvent.id))) == 20
        db.session.remove()

    pages = [scrape(m.url) for m in masters]  # each instance directly, as a scraper does

    def total(name: str, **labels: str) -> list[float]:
        key = (name, frozenset(labels.items()))
        return [page.get(key, 0.0) for page in pages]

    logins = total("paywall_logins_total", outcome="success")
    refused = total("paywall_logins_total", outcome="device_limit_reached")
    assert sum(logins) == 5 and sum(refused) == 11
    assert all(n > 0 for n in [a + b for a, b in zip(logins, refused, strict=True)])  # both served
    webhooks = total("paywall_webhooks_total", type="balance.available", outcome="duplicate")
    assert sum(webhooks) == 20
