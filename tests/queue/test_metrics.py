"""A worker's own metrics page: job and email counters from every pool process (prefork, with
prometheus-client's multiprocess mode), behind the metrics token."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import free_port
from tests.queue.conftest import Inbox
from tests.queue.test_queue import queue_email, wait_until

TOKEN = secrets.token_hex(32)
PORT = free_port()


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    return {**app_config, "METRICS_TOKEN": TOKEN, "WORKER_METRICS_ADDRESS": f"127.0.0.1:{PORT}"}


def scrape(token: str = TOKEN) -> requests.Response:
    return requests.get(
        f"http://127.0.0.1:{PORT}/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )


def samples() -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = scrape()
    assert response.status_code == 200, response.text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def page_up() -> bool:
    try:
        return scrape().status_code == 200
    except requests.RequestException:
        return False


def test_the_worker_counts_jobs_and_emails_across_its_pool(
    app: Flask, inbox: Inbox, start_worker: Any, tmp_path: Path
) -> None:
    start_worker(app, pool="prefork", env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")})
    wait_until(page_up)
    assert scrape("wrong" + TOKEN).status_code == 401
    for i in range(6):
        queue_email(app, f"reader{i}@example.com")
    inbox.wait_for(6)
    done = (
        "paywall_jobs_total",
        frozenset({"task": "outbox.send_email", "outcome": "done"}.items()),
    )
    wait_until(lambda: samples().get(done, 0.0) == 6)
    page = samples()
    assert page[("paywall_emails_total", frozenset({("outcome", "sent")}))] == 6
    timed = ("paywall_job_duration_seconds_count", frozenset({("task", "outbox.send_email")}))
    assert page[timed] == 6
    assert list((tmp_path / "metrics").glob("counter_*.db"))  # the pool processes wrote them
