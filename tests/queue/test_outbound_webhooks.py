"""Outbound webhooks on real workers: each revocation reaches every receiver signed per Standard
Webhooks (checked by the receiver with the same ``standardwebhooks`` package), with one stable
``webhook-id`` across retries, retried with backoff while a receiver fails, at least once."""

from __future__ import annotations

import base64
import json
import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from paywall.extensions import db
from paywall.queue import Job
from tests.conftest import PASSWORD
from tests.queue.test_queue import wait_until

SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


class Receiver:
    """An HTTP endpoint that verifies every delivery; it answers 503 to the first ``fail``."""

    def __init__(self, fail: int = 0) -> None:
        self.fail = fail
        self.attempts: list[dict[str, Any]] = []  # every request, verified or not
        self.accepted: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    payload = Webhook(SECRET).verify(body, headers)
                    verified = True
                except WebhookVerificationError:
                    payload, verified = None, False
                with outer.lock:
                    outer.attempts.append({"id": headers.get("webhook-id"), "ok": verified})
                    failing = outer.fail > 0
                    if failing:
                        outer.fail -= 1
                    elif verified:
                        outer.accepted.append({"id": headers["webhook-id"], "body": payload})
                self.send_response(503 if failing or not verified else 204)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/hooks"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def healthy() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver


@pytest.fixture
def flaky() -> Iterator[Receiver]:
    with Receiver(fail=3) as receiver:
        yield receiver


@pytest.fixture
def app_config(app_config: dict[str, Any], healthy: Receiver, flaky: Receiver) -> dict[str, Any]:
    return {
        **app_config,
        "OUTBOUND_WEBHOOK_URLS": [healthy.url, flaky.url],
        "OUTBOUND_WEBHOOK_SECRET": SECRET,
        "OUTBOUND_WEBHOOK_RETRY_SCHEDULE": [0.5, 1, 2, 4, 8, 16],
    }


def test_session_ended_reaches_every_receiver_signed_and_a_failing_one_after_retries(
    app: Flask, healthy: Receiver, flaky: Receiver, start_worker: Any
) -> None:
    client = app.test_client()
    assert (
        client.post(
            "/api/v1/accounts", json={"email": "hook@example.com", "password": PASSWORD}
        ).status_code
        == 202
    )
    browser = app.test_client()
    login = browser.post(
        "/api/v1/sessions", json={"email": "hook@example.com", "password": PASSWORD}
    )
    assert login.status_code == 201
    sid = login.get_json()["id"]
    assert browser.delete("/api/v1/sessions/current").status_code == 204
    start_worker(app)

    wait_until(lambda: len(healthy.accepted) == 1 and len(flaky.accepted) == 1, timeout=120)
    for receiver in (healthy, flaky):
        [got] = receiver.accepted
        assert got["body"]["type"] == "session.ended"
        assert got["body"]["data"]["sid"] == sid
        assert got["body"]["data"]["reason"] == "signed_out"
    assert healthy.accepted[0]["id"] == flaky.accepted[0]["id"]  # one message, one id
    # The flaky receiver saw 3 refused attempts then the delivery: every one signed, same id.
    assert [a["ok"] for a in flaky.attempts] == [True] * 4
    assert {a["id"] for a in flaky.attempts} == {flaky.accepted[0]["id"]}
    with app.app_context():
        jobs = db.session.scalars(select(Job).where(Job.task == "entitlements.deliver_webhook"))
        outcomes = sorted((j.args[1] == flaky.url, j.attempts, j.outcome) for j in jobs)
    assert outcomes == [(False, 1, "done"), (True, 4, "done")]


def test_a_forged_or_stale_delivery_does_not_verify() -> None:
    """The receiver's check is real: another secret or an old timestamp is refused."""
    from datetime import UTC, datetime, timedelta

    from paywall.entitlements.outbound import signed_request

    payload = {"type": "entitlement.changed", "data": {"sub": "a"}}
    body, headers = signed_request(SECRET, "msg_1", payload)
    assert Webhook(SECRET).verify(body, headers) == json.loads(body)
    other = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(body, headers)
    old_body, old_headers = signed_request(
        SECRET, "msg_1", payload, now=datetime.now(UTC) - timedelta(minutes=10)
    )
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(old_body, old_headers)
