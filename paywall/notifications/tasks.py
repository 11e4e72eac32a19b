"""A story's fan-out on the job queue: one job plans it, one job per batch delivers it.

- ``plan_story`` writes the delivery rows (once: the story row is locked and marked planned)
  and records a ``deliver_batch`` job per batch with work, all in the job's transaction: a
  worker that dies while planning leaves nothing half-written, and the job runs again.
- ``deliver_batch`` claims and sends a few rows at a time (see ``StoryService``), committing
  each claim and each answer, so a second run, or a second worker on the same batch, sends
  nothing already answered. When the batch still has rows to retry, or rows claimed by a
  worker that may have died, it records its own next run for when they fall due.

Several workers on several hosts share one story: its batches are separate jobs.
"""

from __future__ import annotations

import logging
import time

from flask import Flask

from paywall.extensions import db
from paywall.notifications.services import (
    DELIVER_BATCH,
    PLAN_STORY,
    BatchResult,
    story_service,
)
from paywall.queue import defer, task

log = logging.getLogger(__name__)

#: A batch's next run waits at least this long: a job runs no sooner than one second before
#: its time, so a shorter wait would run it again before anything is due.
MIN_FOLLOW_UP = 2.0


@task(PLAN_STORY)
def plan_story(story_id: str) -> int:
    """Plan the story (once) and record one delivery job per batch with work; returns how
    many. Planning again (an operator's sweep) plans nothing and queues what is left."""
    batches = story_service().plan(story_id)
    for batch in batches:
        defer(DELIVER_BATCH, story_id, batch)
    return len(batches)


@task(DELIVER_BATCH)
def deliver_batch(story_id: str, batch: int) -> int:
    """Send what is due in one batch; returns how many were delivered."""
    result = story_service().deliver_batch(story_id, batch, db.session.commit)
    if result.retry_in is not None:
        defer(DELIVER_BATCH, story_id, batch, delay=max(MIN_FOLLOW_UP, result.retry_in))
    return result.delivered


def run_story(app: Flask, story_id: str, *, wait: float = 0.0) -> None:
    """Plan and deliver a whole story in this process, without the queue (tests and
    benchmarks); retries due within ``wait`` seconds are waited for."""
    deadline = time.monotonic() + wait
    with app.app_context():
        try:
            stories = story_service()
            pending = stories.plan(story_id)
            db.session.commit()
            while pending:
                due: list[float] = []
                for batch in pending:
                    result: BatchResult = stories.deliver_batch(story_id, batch, db.session.commit)
                    if result.retry_in is not None:
                        due.append(result.retry_in)
                if not due or time.monotonic() + min(due) > deadline:
                    break
                time.sleep(min(due))
                pending = stories.pending_batches(story_id)
                db.session.commit()
        except Exception:
            log.exception("story fan-out failed", extra={"story_id": story_id})
            db.session.rollback()
            raise
        finally:
            db.session.remove()
