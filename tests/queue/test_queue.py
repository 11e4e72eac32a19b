"""The durable pattern on real workers: recorded with the request, sent after commit, swept,
applied once when delivered twice or when a worker dies mid-task."""

from __future__ import annotations

import time
from typing import Any

from flask import Flask
from sqlalchemy import select

from paywall.extensions import db
from paywall.outbox.models import OutboxEmail
from paywall.outbox.services import Outbox
from paywall.queue import _PENDING, Job, defer
from tests.queue.conftest import Inbox


def queue_email(app: Flask, to: str, *, lose_send: bool = False) -> int:
    with app.test_request_context():
        Outbox(db.session).enqueue(kind="test", to=to, subject="hello", body="hi " + to)
        if lose_send:
            # A crash between commit and the send to the broker: only the row survives.
            db.session.info.pop(_PENDING)
        db.session.commit()
        job_id = db.session.scalars(select(Job.id).order_by(Job.id.desc())).first()
        db.session.remove()
    assert job_id is not None
    return int(job_id)


def job(app: Flask, job_id: int) -> Job:
    with app.app_context():
        row = db.session.get(Job, job_id)
        assert row is not None
        db.session.expunge(row)
        db.session.remove()
        return row


def wait_until(check: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_signup_email_is_sent_by_a_worker_not_the_request(
    app: Flask, inbox: Inbox, start_worker: Any
) -> None:
    response = app.test_client().post(
        "/api/v1/accounts", json={"email": "new@example.com", "password": "x" * 16}
    )
    assert response.status_code == 202
    time.sleep(0.5)
    assert inbox.count_to() == {}  # the request sent nothing itself
    start_worker(app)
    inbox.wait_for(1)

    def outcomes() -> list[str | None]:
        with app.app_context():
            return list(db.session.scalars(select(Job.outcome)).all())

    # The message reaches the inbox before the worker commits the job's outcome.
    wait_until(lambda: outcomes() == ["done"])


def test_rolled_back_work_is_never_run(app: Flask, inbox: Inbox, start_worker: Any) -> None:
    with app.test_request_context():
        Outbox(db.session).enqueue(kind="test", to="never@example.com", subject="s", body="b")
        db.session.rollback()
        db.session.remove()
    queue_email(app, "after@example.com")
    start_worker(app)
    inbox.wait_for(1)
    time.sleep(1)
    assert inbox.count_to() == {"after@example.com": 1}


def test_sweep_sends_work_whose_send_was_lost(app: Flask, inbox: Inbox, start_worker: Any) -> None:
    job_id = queue_email(app, "lost@example.com", lose_send=True)
    start_worker(app, beat=True)
    inbox.wait_for(1)
    assert inbox.count_to() == {"lost@example.com": 1}
    wait_until(lambda: job(app, job_id).outcome == "done")


def test_a_job_delivered_twice_applies_once(app: Flask, inbox: Inbox, start_worker: Any) -> None:
    job_id = queue_email(app, "twice@example.com")
    with app.app_context():
        task = app.extensions["celery"].tasks["outbox.send_email"]
        args = job(app, job_id).args
        for _ in range(3):  # redeliveries, as a broker may make
            task.apply_async(args=args, kwargs={"job_id": job_id})
    start_worker(app)
    inbox.wait_for(1)
    wait_until(lambda: job(app, job_id).outcome == "done")
    time.sleep(1.5)
    assert inbox.count_to() == {"twice@example.com": 1}
    assert job(app, job_id).attempts == 1


def test_worker_killed_mid_task_the_job_still_runs_once(
    app: Flask, inbox: Inbox, start_worker: Any
) -> None:
    inbox.hold.set()  # the SMTP server stalls in DATA: the worker is mid-send
    job_id = queue_email(app, "killed@example.com")
    first = start_worker(app)
    wait_until(
        lambda: (
            inbox.controller is not None
            and job(app, job_id).attempts == 0
            and _locked_or_started(app, job_id)
        )
    )
    first.kill()
    inbox.hold.clear()
    start_worker(app, beat=True)  # acks_late redelivery (Redis) or the sweep brings it back
    inbox.wait_for(1)
    wait_until(lambda: job(app, job_id).outcome == "done")
    time.sleep(1)
    assert inbox.count_to() == {"killed@example.com": 1}


def _locked_or_started(app: Flask, job_id: int) -> bool:
    # The worker holds the job's row (PostgreSQL: FOR UPDATE) while it talks to SMTP.
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            locked = (
                db.session.scalars(
                    select(Job.id).where(Job.id == job_id).with_for_update(skip_locked=True)
                ).first()
                is None
            )
            db.session.rollback()
            db.session.remove()
            return locked
        db.session.remove()
    time.sleep(2)  # SQLite: no row locks to observe; give the worker time to reach DATA
    return True


def test_defer_by_task_object_records_name_and_ids(app: Flask) -> None:
    from paywall.outbox.tasks import send_email

    with app.app_context():
        email = OutboxEmail(kind="t", to="a@example.com", subject="s", body="b")
        db.session.add(email)
        db.session.flush()
        recorded = defer(send_email, email.id)
        assert (recorded.task, recorded.args) == ("outbox.send_email", [email.id])
        db.session.rollback()
        assert db.session.scalars(select(Job)).all() == []
        db.session.remove()


def test_a_savepoint_released_does_not_send_the_outer_transactions_jobs(app: Flask) -> None:
    # SQLAlchemy fires after_commit for savepoints too; sending then would hand a worker a job
    # whose row is not committed yet (on SQLite it would also wait on the request's lock).
    with app.test_request_context():
        Outbox(db.session).enqueue(kind="test", to="early@example.com", subject="s", body="b")
        with db.session.begin_nested():
            pass
        assert [name for _id, name, _a, _c in db.session.info[_PENDING]] == ["outbox.send_email"]
        db.session.commit()
        assert _PENDING not in db.session.info
        db.session.remove()
