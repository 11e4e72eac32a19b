"""The fan-out's database work is per claimed chunk, not per message: a batch of 2N
subscriptions sends the same statements as a batch of N, plus the one UPDATE per push that
records the push service's answer (what bounds a killed worker's re-sends to the message in
flight). Counted with a SQLAlchemy event listener on the engine."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event

from paywall.extensions import db
from paywall.notifications.models import Story
from paywall.notifications.services import CLAIM_CHUNK, story_service
from push_standin import PushStandIn
from tests.conftest import Stripe
from tests.push_readers import add_push_readers

N = 6  # N and 2N subscriptions fit one claimed chunk: the count compared is per chunk
assert 2 * N <= CLAIM_CHUNK


@pytest.fixture
def push() -> Iterator[PushStandIn]:
    with PushStandIn() as server:
        yield server


@pytest.fixture
def app_config(push: PushStandIn) -> dict[str, Any]:
    return {"PUSH_ALLOWED_ORIGINS": [push.url], "NOTIFICATION_BATCH_SIZE": 100}


@pytest.fixture
def premium_price(stripe_actions: Stripe, standin: Any) -> str:
    stripe_actions.deliver()  # the catalogue's creation events
    price = next(p for p in standin.objects("price") if p.get("lookup_key") == "premium_monthly")
    return str(price["id"])


def add_readers(app: Flask, push: PushStandIn, count: int, price_id: str | None) -> None:
    add_push_readers(app, push, count, price_id)


_IN_LIST = re.compile(r"IN \((?:[^()]|\([^()]*\))*\)")


def statement_kind(sql: str) -> str | None:
    """The statement with its IN list's parameters collapsed (SQLite spells each one out);
    None for transaction control (SQLite's ``BEGIN``, one per commit)."""
    text = " ".join(sql.split())
    if text.upper().startswith(("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")):
        return None
    return _IN_LIST.sub("IN (…)", text)


def deliver_counting(app: Flask, story_id: str) -> tuple[list[str], dict[str, Any]]:
    """Plan a story over every subscription, then run its one batch; the SQL statements the
    batch sent and the story's counts."""
    with app.app_context():
        stories = story_service()
        db.session.add(Story(id=story_id, title="A story", url="https://news.test/a", topics=[]))
        db.session.commit()
        [batch] = stories.plan(story_id)
        db.session.commit()
        statements: list[str] = []

        def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            kind = statement_kind(statement)
            if kind is not None:
                statements.append(kind)

        event.listen(db.engine, "before_cursor_execute", record)
        try:
            stories.deliver_batch(story_id, batch, db.session.commit)
        finally:
            event.remove(db.engine, "before_cursor_execute", record)
        counts = stories.counts(story_id)
        db.session.remove()
    return statements, counts


def test_a_batch_sends_no_more_statements_per_message_than_the_answer_it_records(
    billing_app: Flask, push: PushStandIn, premium_price: str
) -> None:
    add_readers(billing_app, push, N, premium_price)
    at_n, counts_n = deliver_counting(billing_app, "story-n")
    add_readers(billing_app, push, N, premium_price)
    at_2n, counts_2n = deliver_counting(billing_app, "story-2n")
    assert (counts_n["delivered"], counts_2n["delivered"]) == (N, 2 * N), counts_n
    assert push.received() == 3 * N

    # N more messages add N statements, each the UPDATE recording one push's answer: the
    # claim, the load, the entitlement check and the rest are once per chunk.
    extra = Counter(at_2n) - Counter(at_n)
    assert sum(extra.values()) == len(at_2n) - len(at_n) == N, extra
    [(answer, times)] = extra.items()
    assert answer.lstrip().upper().startswith("UPDATE STORY_DELIVERIES"), answer
    assert times == N


def test_readers_who_lost_the_feature_cost_the_same_statements_whatever_their_number(
    billing_app: Flask, push: PushStandIn
) -> None:
    add_readers(billing_app, push, N, None)  # no subscription: no `notifications` feature
    at_n, counts_n = deliver_counting(billing_app, "story-n")
    add_readers(billing_app, push, N, None)
    at_2n, counts_2n = deliver_counting(billing_app, "story-2n")
    assert (counts_n["skipped"], counts_2n["skipped"]) == (N, 2 * N)
    assert push.received() == 0
    # Entitlement is computed for the chunk's readers at once and the skipped rows are
    # settled in one UPDATE: not one statement more for twice the readers.
    assert len(at_2n) == len(at_n), Counter(at_2n) - Counter(at_n)
