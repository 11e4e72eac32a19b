"""Background work on Celery: recorded in the database with the request, run by workers.

The durable pattern (warehouse's TransactionAwareTask, plus a table):

1. ``defer(task, *ids)`` adds a :class:`Job` row in the caller's transaction. Nothing reaches
   the broker until that transaction commits, so a rolled-back request queues nothing.
2. After the commit the job is sent to the broker (an ``after_commit`` hook).
3. A worker runs it inside the Flask app context, holding the job's row lock; a redelivered copy
   (``acks_late``: a worker died mid-task) finds the row done, or locked, and does nothing. The
   task's own changes commit in the same transaction that marks the job done, so a database
   effect applies once.
4. The beat ``sweep`` sends again any job not done whose last send is older than
   ``QUEUE_REDELIVER_AFTER`` seconds: a crash between commit and send, or a lost broker, loses
   nothing.

A failed job is retried on its task's schedule (``retry_schedule_setting``, seconds between
attempts), and given up (``failed_at``) when the schedule runs out. See README "Background jobs".
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from celery import Celery, Task, shared_task
from celery.schedules import crontab
from flask import Flask, current_app, has_app_context
from sqlalchemy import JSON, Index, Integer, String, event, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from paywall import metrics
from paywall.clock import utcnow
from paywall.extensions import db
from paywall.types import DbSession, UTCDateTime

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

#: Settings that feed Celery: every ``CELERY_*`` key, lower-cased without the prefix
#: (``PAYWALL_CELERY_BROKER_URL`` -> ``broker_url``).
CELERY_PREFIX = "CELERY_"

DEFAULT_RETRY_SCHEDULE = [10, 60, 300, 1800, 3600, 6 * 3600]


class Job(db.Model):  # type: ignore[name-defined,misc]
    """One piece of background work: which task, with which ids, and how it went."""

    __tablename__ = "queue_jobs"
    __table_args__ = (Index("ix_queue_jobs_open", "finished_at", "run_after"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task: Mapped[str] = mapped_column(String(120))
    args: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    run_after: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # When it was last handed to the broker; NULL = the sweep sends it once run_after passes.
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500), default=None)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    outcome: Mapped[str | None] = mapped_column(String(20), default=None)  # done | failed


class RetryLater(Exception):  # noqa: N818 - it is an instruction, not an error
    """Raised by a task to keep its own changes (say, an attempt counter) and retry later."""


class AppTask(Task):  # type: ignore[misc]
    """Runs in a fresh app context of the Flask app; with ``job_id``, as a durable job."""

    abstract = True
    acks_late = True
    reject_on_worker_lost = True
    typing = False  # ``job_id`` rides along as a keyword the task function does not declare
    #: The setting listing seconds between attempts for this task's jobs.
    retry_schedule_setting = "QUEUE_RETRY_SCHEDULE"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        job_id = kwargs.pop("job_id", None)
        # Eager mode (tests, the CLI) runs in the caller's thread: use the caller's app.
        app = current_app._get_current_object() if has_app_context() else self.app.flask_app  # type: ignore[attr-defined]
        with app.app_context():
            try:
                if job_id is None:
                    return self.run(*args, **kwargs)
                return run_job(self, int(job_id), args, kwargs)
            finally:
                db.session.remove()


def task(name: str, **options: Any) -> Callable[[F], F]:
    """Declare a task (in ``paywall/<domain>/tasks.py``). Tasks take ids, never objects."""
    options.setdefault("base", AppTask)
    return shared_task(name=name, **options)  # type: ignore[no-any-return]


# -- recording and sending ----------------------------------------------------------------
_PENDING = "paywall.queue.pending"


def defer(
    task_obj: Any, *args: Any, session: DbSession | None = None, delay: float | None = None
) -> Job:
    """Record ``task_obj(*args)`` (a task, or its name) as a job in ``session``'s transaction;
    it is sent to the broker when that transaction commits. Arguments must be JSON: ids.
    ``delay``: run it no sooner than that many seconds from now (a wait longer than
    ``QUEUE_COUNTDOWN_LIMIT`` is left to the sweep, as a retry's is)."""
    session = session or db.session
    name = task_obj if isinstance(task_obj, str) else task_obj.name
    now = utcnow()
    run_after = now + timedelta(seconds=delay or 0)
    near = not delay or delay <= current_app.config["QUEUE_COUNTDOWN_LIMIT"]
    job = Job(task=name, args=list(args), run_after=run_after, sent_at=run_after if near else None)
    session.add(job)
    session.flush()
    if near:
        session.info.setdefault(_PENDING, []).append((job.id, name, list(args), delay or None))
    return job


@event.listens_for(Session, "after_commit")
def _send_after_commit(session: Session) -> None:
    if session.get_nested_transaction() is not None:
        return  # a savepoint released (SQLAlchemy fires this for those too): not yet
    pending = session.info.pop(_PENDING, None)
    if pending:
        for job_id, name, args, countdown in pending:
            _send(name, job_id, args, countdown)


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    # The rows are gone too; should the sends somehow happen, the task finds no job. A
    # savepoint's rollback keeps the list: jobs recorded outside it still stand.
    if session.get_nested_transaction() is None:
        session.info.pop(_PENDING, None)


def _send(name: str, job_id: int, args: list[Any], countdown: float | None = None) -> None:
    celery = current_app.extensions["celery"]
    try:
        celery.tasks[name].apply_async(
            args=args, kwargs={"job_id": job_id}, countdown=countdown, retry=False
        )
    except Exception:  # noqa: BLE001 - the broker is down: the sweep sends it later
        log.warning(
            "job not sent, the sweep will", extra={"job_id": job_id, "task": name}, exc_info=True
        )


# -- running ------------------------------------------------------------------------------
def run_job(task_obj: AppTask, job_id: int, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    session = db.session
    job = session.scalars(
        select(Job).where(Job.id == job_id).with_for_update(skip_locked=True)
    ).first()
    now = utcnow()
    if job is None or job.finished_at is not None or job.run_after > now + timedelta(seconds=1):
        # Done, rolled back, locked by the worker running it, or an early duplicate.
        session.rollback()
        metrics.JOBS.labels(task_obj.name, "skipped").inc()
        return None
    started = time.perf_counter()
    try:
        result = task_obj.run(*args, **kwargs)
    except RetryLater as exc:
        _schedule_retry(task_obj, job, str(exc))
        _observe(task_obj.name, started, job)
        return None
    except Exception as exc:
        log.exception("job failed", extra={"job_id": job_id, "task": job.task})
        session.rollback()
        job = session.get(Job, job_id)
        if job is None:
            return None
        _schedule_retry(task_obj, job, f"{type(exc).__name__}: {exc}")
        _observe(task_obj.name, started, job)
        return None
    job.attempts += 1
    job.finished_at = utcnow()
    job.outcome = "done"
    session.commit()
    _observe(task_obj.name, started, job)
    return result


def _observe(name: str, started: float, job: Job) -> None:
    metrics.JOB_SECONDS.labels(name).observe(time.perf_counter() - started)
    metrics.JOBS.labels(name, job.outcome or "retry").inc()


def _schedule_retry(task_obj: AppTask, job: Job, error: str) -> None:
    session = db.session
    schedule = retry_schedule(current_app.config, task_obj.retry_schedule_setting)
    job.attempts += 1
    job.last_error = error[:500]
    if job.attempts > len(schedule):
        job.finished_at = utcnow()
        job.outcome = "failed"
        log.error("job given up", extra={"job_id": job.id, "task": job.task})
        session.commit()
        return
    delay = schedule[job.attempts - 1]
    job.run_after = utcnow() + timedelta(seconds=delay)
    # Short waits go to the broker with a countdown; long ones are left for the sweep, so no
    # message sits in the broker for hours.
    near = delay <= current_app.config["QUEUE_COUNTDOWN_LIMIT"]
    job.sent_at = job.run_after if near else None
    if near:
        session.info.setdefault(_PENDING, []).append((job.id, job.task, job.args, delay))
    session.commit()


def retry_schedule(config: Any, setting: str) -> list[float]:
    value = config.get(setting) or DEFAULT_RETRY_SCHEDULE
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    return [float(v) for v in value]


# -- the sweep ----------------------------------------------------------------------------
def sweep(session: DbSession, limit: int = 1000) -> int:
    """Send again every open job that is due and was not sent recently; returns how many."""
    now = utcnow()
    stale = now - timedelta(seconds=current_app.config["QUEUE_REDELIVER_AFTER"])
    jobs = session.scalars(
        select(Job)
        .where(
            Job.finished_at.is_(None),
            Job.run_after <= now,
            (Job.sent_at.is_(None)) | (Job.sent_at <= stale),
        )
        .order_by(Job.run_after, Job.id)
        .limit(limit)
    ).all()
    for job in jobs:
        job.sent_at = now
        session.info.setdefault(_PENDING, []).append((job.id, job.task, job.args, None))
    session.commit()
    return len(jobs)


def purge_finished(session: DbSession, older_than: timedelta) -> int:
    """Delete jobs that finished more than ``older_than`` ago."""
    cutoff = utcnow() - older_than
    doomed = session.scalars(
        select(Job.id).where(Job.finished_at.is_not(None), Job.finished_at < cutoff)
    ).all()
    for start in range(0, len(doomed), 500):
        session.query(Job).filter(Job.id.in_(doomed[start : start + 500])).delete(
            synchronize_session=False
        )
    return len(doomed)


def backlog(session: DbSession) -> int:
    """Jobs recorded and not finished (a gauge for /metrics)."""
    from sqlalchemy import func

    return int(session.scalar(select(func.count(Job.id)).where(Job.finished_at.is_(None))) or 0)


@task("paywall.queue.sweep", acks_late=False)
def sweep_task() -> int:
    return sweep(db.session)


@task("paywall.queue.purge_finished", acks_late=False)
def purge_finished_task() -> int:
    deleted = purge_finished(
        db.session, timedelta(days=current_app.config["QUEUE_KEEP_FINISHED_DAYS"])
    )
    db.session.commit()
    return deleted


# -- the Celery app -----------------------------------------------------------------------
def init_app(app: Flask) -> Celery:
    """A Celery app configured from ``app.config``, stored as ``app.extensions["celery"]``."""
    celery = Celery(app.import_name, task_cls=AppTask)
    broker = broker_url(app)
    celery.conf.update(
        broker_url=broker,
        task_default_queue="paywall",
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
        # Redis redelivers a message no worker acknowledged after this long (a dead worker).
        # (The SQLAlchemy transport hands its options to create_engine: none there.)
        broker_transport_options=(
            {"visibility_timeout": app.config["QUEUE_VISIBILITY_TIMEOUT"]}
            if broker.startswith("redis")
            else {}
        ),
        beat_schedule=beat_schedule(app),
        timezone="UTC",
    )
    celery.conf.update(
        {
            key[len(CELERY_PREFIX) :].lower(): value
            for key, value in app.config.items()
            if key.startswith(CELERY_PREFIX) and value is not None
        }
    )
    celery.flask_app = app
    app.extensions["celery"] = celery
    _import_tasks()
    return celery


def broker_url(app: Flask) -> str:
    url = app.config.get("CELERY_BROKER_URL") or app.config.get("REDIS_URL")
    if url:
        return str(url)
    # No server needed: kombu's SQLAlchemy transport on a SQLite file (demo, single host).
    from paywall.instance import private_file

    return "sqla+sqlite:///" + str(private_file(app.instance_path + "/broker.sqlite3"))


def beat_schedule(app: Flask) -> dict[str, Any]:
    cfg = app.config
    return {
        "queue-sweep": {"task": "paywall.queue.sweep", "schedule": cfg["QUEUE_SWEEP_INTERVAL"]},
        "queue-purge": {"task": "paywall.queue.purge_finished", "schedule": crontab(0, 4)},
        "billing-reconcile": {"task": "billing.reconcile", "schedule": crontab(30, 3)},
        "devices-purge": {"task": "devices.purge", "schedule": crontab(0, 5)},
        "revocations-sweep": {
            "task": "entitlements.revocations_sweep",
            "schedule": float(cfg["REVOCATION_SWEEP_INTERVAL"]),
        },
        "revocations-purge": {"task": "entitlements.revocations_purge", "schedule": 60.0},
    }


def _import_tasks() -> None:
    # Importing registers each domain's shared tasks with every Celery app.
    import paywall.accounts.tasks
    import paywall.billing.tasks
    import paywall.devices.tasks
    import paywall.entitlements.tasks
    import paywall.notifications.tasks
    import paywall.outbox.tasks  # noqa: F401
