"""``flask outbox ...``: held email."""

from __future__ import annotations

from typing import Any

import click
from flask import Flask
from sqlalchemy import select

from paywall.extensions import db
from paywall.outbox.services import SEND_EMAIL
from paywall.queue import Job, run_job


def init_app(app: Flask) -> None:
    @app.cli.group("outbox")
    def outbox_cli() -> None:
        """Outgoing email."""

    @outbox_cli.command("send")
    def send_command() -> None:
        """Send every email not sent yet, now, here (after an SMTP outage: it skips the wait
        and brings back emails whose retries ran out)."""
        sent = failed = 0
        task = app.extensions["celery"].tasks[SEND_EMAIL]
        for job_id, args in held_jobs():
            run_job(task, job_id, tuple(args), {})
            job = db.session.get(Job, job_id)
            if job is not None and job.outcome == "done":
                sent += 1
            else:
                failed += 1
            db.session.rollback()
        click.echo(f"sent {sent} email(s), {failed} still held")


def held_jobs() -> list[tuple[int, list[Any]]]:
    """Email jobs not done, made due now; the given-up ones are opened again."""
    jobs = db.session.scalars(
        select(Job).where(
            Job.task == SEND_EMAIL, (Job.outcome.is_(None)) | (Job.outcome == "failed")
        )
    ).all()
    for job in jobs:
        job.finished_at = None
        job.outcome = None
        job.run_after = job.created_at
    ids = [(job.id, job.args) for job in jobs]
    db.session.commit()
    return ids
