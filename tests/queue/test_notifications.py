"""A story's fan-out on real workers: published through the API, planned and delivered by
workers, and still one message per subscription when a worker is killed mid-fan-out."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from paywall.extensions import db
from paywall.notifications.models import Story, StoryDelivery
from paywall.queue import Job
from push_standin import PushStandIn
from tests.conftest import Stripe
from tests.push_readers import add_push_readers
from tests.queue.test_queue import wait_until

PUBLISHER_KEY = "pk_test_" + secrets.token_hex(24)
CMS = {"Authorization": f"Bearer {PUBLISHER_KEY}"}
READERS = 40
THREADS = 4  # the workers' --concurrency (tests/queue/conftest.py)


@pytest.fixture
def push() -> Iterator[PushStandIn]:
    with PushStandIn() as server:
        yield server


@pytest.fixture
def app_config(app_config: dict[str, Any], push: PushStandIn) -> dict[str, Any]:
    return {
        **app_config,
        "PUSH_ALLOWED_ORIGINS": [push.url],
        "PUBLISHER_API_KEYS": [PUBLISHER_KEY],
        "PUSH_TIMEOUT": 30,
        "NOTIFICATION_BATCH_SIZE": 5,
        "NOTIFICATION_CLAIM_LEASE": 3,  # a dead worker's claimed messages go again after 3 s
    }


def add_premium_readers(app: Flask, push: PushStandIn, price_id: str, count: int) -> list[str]:
    """Premium readers with one signed-in device and one push subscription each; returns
    the endpoints."""
    return add_push_readers(app, push, count, price_id)


def publish(app: Flask) -> None:
    body = {
        "id": "story-1",
        "title": "Parliament votes on the budget",
        "url": "https://news.test/politics/budget-vote",
        "topics": ["politics"],
    }
    response = app.test_client().post("/api/v1/stories", json=body, headers=CMS)
    assert response.status_code == 202, response.get_json()


def story_sent(app: Flask) -> bool:
    with app.app_context():
        story = db.session.get(Story, "story-1")
        done = story is not None and story.status == "sent"
        db.session.remove()
        return done


def delivered(app: Flask) -> dict[str, int]:
    with app.app_context():
        rows = db.session.execute(
            select(StoryDelivery.status, func.count()).group_by(StoryDelivery.status)
        ).all()
        db.session.remove()
        return {status: int(n) for status, n in rows}


@pytest.fixture
def premium_price(stripe_actions: Stripe, standin: Any) -> str:
    stripe_actions.deliver()  # the catalogue's creation events
    price = next(p for p in standin.objects("price") if p.get("lookup_key") == "premium_monthly")
    return str(price["id"])


def test_a_worker_delivers_a_published_story_in_batches(
    billing_app: Flask, push: PushStandIn, premium_price: str, start_worker: Any
) -> None:
    endpoints = add_premium_readers(billing_app, push, premium_price, 12)
    publish(billing_app)
    assert sum(push.posts(e) for e in endpoints) == 0  # the request sent nothing
    start_worker(billing_app)
    wait_until(lambda: story_sent(billing_app), timeout=120)
    assert [push.posts(e) for e in endpoints] == [1] * 12
    assert [m.json()["title"] for e in endpoints for m in push.messages(e)] == [
        "Parliament votes on the budget"
    ] * 12

    def jobs() -> list[tuple[str, str | None]]:
        with billing_app.app_context():
            rows = db.session.execute(
                select(Job.task, Job.outcome)
                .where(Job.task.like("notifications.%"))
                .order_by(Job.id)
            ).all()
            db.session.remove()
        return [(str(task), outcome) for task, outcome in rows]

    # The last batch marks the story sent before the worker records that batch's job as done.
    wait_until(lambda: all(outcome == "done" for _task, outcome in jobs()), timeout=60)
    assert jobs() == [("notifications.plan_story", "done")] + [
        ("notifications.deliver_batch", "done")
    ] * 3  # 12 subscriptions in batches of 5


def test_worker_killed_mid_fan_out_still_one_message_per_subscription(
    billing_app: Flask, push: PushStandIn, premium_price: str, start_worker: Any
) -> None:
    endpoints = add_premium_readers(billing_app, push, premium_price, READERS)
    push.delay = 0.25  # a slow push service: the worker is caught with messages in flight
    publish(billing_app)
    first = start_worker(billing_app)
    wait_until(lambda: sum(push.posts(e) for e in endpoints) >= READERS // 4, timeout=120)
    first.kill()  # SIGKILL: no acknowledgement, claimed rows left "sending"
    at_kill = sum(push.posts(e) for e in endpoints)
    assert at_kill < READERS, "the worker finished before it was killed: nothing was tested"
    assert not story_sent(billing_app)
    push.delay = 0.0

    start_worker(billing_app, beat=True)  # redelivery (Redis) or the sweep brings the jobs back
    wait_until(lambda: story_sent(billing_app), timeout=180)

    # Counted at the push service: every subscription holds exactly one message of the story.
    held = {e: push.messages(e) for e in endpoints}
    assert {e: len(m) for e, m in held.items()} == {e: 1 for e in endpoints}
    assert all(m[0].json()["story_id"] == "story-1" for m in held.values())
    # A message the killed worker had on the wire but not recorded is sent once more, under
    # the same Topic, and replaces the copy held (RFC 8030 §5.4): never shown twice. Only
    # messages in flight at the kill can be sent again, and each at most once more.
    posts = {e: push.posts(e) for e in endpoints}
    again = [e for e, n in posts.items() if n > 1]
    assert all(posts[e] == 2 and held[e][0].replaced == 1 for e in again), posts
    assert len(again) <= THREADS
    assert delivered(billing_app) == {"delivered": READERS}
