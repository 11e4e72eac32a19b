"""Fan-out jobs: plan a story's deliveries, then deliver them batch by batch. Each step commits
its own work and is safe to run twice or on two workers at once (see services)."""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, after_this_request, current_app

from paywall.extensions import db
from paywall.notifications.services import BatchResult, story_service

log = logging.getLogger(__name__)


def plan_story(story_id: str) -> list[int]:
    """Write the story's delivery rows (once); returns the batches to deliver."""
    batches = story_service().plan(story_id)
    db.session.commit()
    return batches


def deliver_batch(story_id: str, batch: int) -> BatchResult:
    """Send one batch; emails it queued become jobs sent to the queue when it commits."""
    return story_service().deliver_batch(story_id, batch, db.session.commit)


def run_story(app: Flask, story_id: str, *, wait: float = 0.0) -> None:
    """Plan and deliver a whole story in this process; retries due within ``wait`` seconds
    are waited for (the CLI and the demo; workers schedule retries instead)."""
    deadline = time.monotonic() + wait
    with app.app_context():
        try:
            pending = plan_story(story_id)
            while pending:
                due: list[float] = []
                for batch in pending:
                    result = deliver_batch(story_id, batch)
                    if result.retry_in is not None:
                        due.append(result.retry_in)
                if not due or time.monotonic() + min(due) > deadline:
                    break
                time.sleep(min(due))
                pending = story_service().pending_batches(story_id)
                db.session.commit()
        except Exception:
            log.exception("story fan-out failed", extra={"story_id": story_id})
            db.session.rollback()
            raise
        finally:
            db.session.remove()


def enqueue_story(story_id: str) -> None:
    """Start the story's fan-out once the request's transaction has committed and the
    response is on its way."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if not app.config["NOTIFICATION_START_AFTER_RESPONSE"]:
        return  # the sweep (or an operator) starts it

    @after_this_request
    def start(response: Response) -> Response:
        response.call_on_close(lambda: run_story(app, story_id))
        return response
