"""``flask notifications ...``: publish a story (operators, the demo), deliver, keys."""

from __future__ import annotations

import json
import time

import click
from flask import Flask

from paywall.errors import PaywallError
from paywall.extensions import db
from paywall.notifications.push import new_vapid_pem
from paywall.notifications.services import story_service


def init_app(app: Flask) -> None:
    @app.cli.group("notifications")
    def notifications_cli() -> None:
        """Story notifications."""

    @notifications_cli.command("publish")
    @click.option("--id", "story_id", required=True, help="The CMS's id of the story.")
    @click.option("--title", required=True)
    @click.option("--url", required=True, help="A page of the site (PAYWALL_SITE_URL).")
    @click.option("--summary", default=None)
    @click.option("--topic", "topics", multiple=True, help="Repeat for several topics.")
    @click.option("--urgency", type=click.Choice(["normal", "high"]), default="normal")
    @click.option(
        "--wait", type=float, default=0.0, help="Seconds to wait for the workers to finish."
    )
    def publish(
        story_id: str,
        title: str,
        url: str,
        summary: str | None,
        topics: tuple[str, ...],
        urgency: str,
        wait: float,
    ) -> None:
        """Publish a story (as POST /api/v1/stories does): the workers deliver it. Prints its
        counts, after waiting up to --wait seconds for the fan-out to finish."""
        data = {
            "id": story_id,
            "title": title,
            "url": url,
            "summary": summary,
            "topics": list(topics),
            "urgency": urgency,
        }
        try:
            _story, created = story_service().publish(data)
        except PaywallError as exc:
            raise click.ClickException(f"{exc.code}: {exc.message} {exc.extra or ''}") from exc
        db.session.commit()
        if not created:
            click.echo(f"story {story_id} exists: nothing new is sent")
        deadline = time.monotonic() + wait
        while True:
            described = story_service().describe(story_service().get(story_id))
            db.session.rollback()  # the next look sees what the workers committed
            if described["status"] == "sent" or time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        click.echo(json.dumps(described["counts"]))

    @notifications_cli.command("sweep")
    @click.option("--older-than", type=float, default=60.0, help="Seconds since publishing.")
    def sweep(older_than: float) -> None:
        """Queue again the fan-out of every story not finished (for a cron job, or after a
        job was given up): the story row is the durable record, and delivering again sends
        nothing twice."""
        from datetime import timedelta

        from paywall.notifications.services import PLAN_STORY
        from paywall.queue import defer

        stories = story_service().unfinished(timedelta(seconds=older_than))
        for story_id in stories:
            defer(PLAN_STORY, story_id)
        db.session.commit()
        click.echo(f"swept {len(stories)} story(ies)")

    @notifications_cli.command("status")
    @click.argument("story_id")
    def status(story_id: str) -> None:
        """A story's delivery counts."""
        click.echo(json.dumps(story_service().describe(story_service().get(story_id)), indent=2))

    @notifications_cli.command("generate-vapid-key")
    def generate_vapid_key() -> None:
        """Print a new VAPID private key (PEM) for PAYWALL_VAPID_PRIVATE_KEY."""
        click.echo(new_vapid_pem(), nl=False)
