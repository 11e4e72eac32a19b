"""Email on the queue: an SMTP outage under load loses and duplicates nothing; one message's
failures never spend another's attempts; ``outbox send`` sends what is held."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from paywall.extensions import db
from paywall.outbox.models import OutboxEmail
from paywall.queue import Job
from tests.queue.conftest import Inbox
from tests.queue.test_queue import queue_email, wait_until


def test_smtp_stopped_and_restarted_under_load_every_email_arrives_once(
    app: Flask, inbox: Inbox, start_worker: Any
) -> None:
    start_worker(app, beat=True)
    addresses = [f"reader{i}@example.com" for i in range(60)]

    def load() -> None:
        for address in addresses:
            queue_email(app, address)
            time.sleep(0.03)

    writer = threading.Thread(target=load)
    writer.start()
    inbox.wait_for(10)
    inbox.stop()  # the outage, while emails keep being queued
    time.sleep(2.5)
    inbox.start()
    writer.join()
    inbox.wait_for(len(addresses), timeout=120)
    with app.app_context():
        wait_until(lambda: _open_jobs(app) == 0)
        held = db.session.scalars(select(OutboxEmail).where(OutboxEmail.sent_at.is_(None))).all()
        assert held == []
        assert max(db.session.scalars(select(OutboxEmail.attempts))) > 1  # the outage was felt
        db.session.remove()
    time.sleep(1)
    assert inbox.count_to() == dict.fromkeys(addresses, 1)


def _open_jobs(app: Flask) -> int:
    with app.app_context():
        count = len(db.session.scalars(select(Job.id).where(Job.finished_at.is_(None))).all())
        db.session.remove()
        return count


@pytest.mark.parametrize("mail_schedule", [[0.2, 0.2, 0.2]])
def test_a_refused_email_spends_only_its_own_attempts(
    app: Flask, inbox: Inbox, start_worker: Any
) -> None:
    inbox.refuse = {"busy@example.com"}
    busy_job = queue_email(app, "busy@example.com")
    others = [f"ok{i}@example.com" for i in range(10)]
    for address in others:
        queue_email(app, address)
    start_worker(app)
    inbox.wait_for(len(others))

    def busy_outcome() -> str | None:
        with app.app_context():
            outcome = db.session.get(Job, busy_job).outcome
            db.session.remove()
            return outcome

    wait_until(lambda: busy_outcome() == "failed")
    with app.app_context():
        attempts = dict(db.session.execute(select(OutboxEmail.to, OutboxEmail.attempts)).all())
        db.session.remove()
    assert attempts == {"busy@example.com": 4, **dict.fromkeys(others, 1)}
    assert inbox.count_to() == dict.fromkeys(others, 1)


@pytest.mark.parametrize("mail_schedule", [[0.1]])
def test_outbox_send_sends_held_email_including_given_up(app: Flask, inbox: Inbox) -> None:
    inbox.stop()
    for i in range(3):
        queue_email(app, f"held{i}@example.com")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["outbox", "send"])
    assert result.exit_code == 0, result.output
    assert "sent 0 email(s), 3 still held" in result.output
    inbox.start()
    result = runner.invoke(args=["outbox", "send"])  # the retries ran out: it sends them anyway
    assert "sent 3 email(s), 0 still held" in result.output
    assert inbox.count_to() == {f"held{i}@example.com": 1 for i in range(3)}
    result = runner.invoke(args=["outbox", "send"])
    assert "sent 0 email(s), 0 still held" in result.output
