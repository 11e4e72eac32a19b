"""Sends queued emails once the response is on its way, so mail never slows or shapes a response
(a reset for an unknown address must take as long as one for a known address)."""

from __future__ import annotations

import logging

import click
from flask import Flask, Response, g

from paywall.brand import html_email
from paywall.extensions import db
from paywall.outbox.services import send_pending, transport_for

log = logging.getLogger(__name__)


def init_app(app: Flask) -> None:
    @app.after_request
    def send_after_response(response: Response) -> Response:
        if g.pop("outbox_pending", False) and app.config.get("OUTBOX_SEND_AFTER_RESPONSE", True):
            response.call_on_close(lambda: deliver(app))
        return response

    @app.cli.group("outbox")
    def outbox_cli() -> None:
        """Outgoing email."""

    @outbox_cli.command("send")
    def send_command() -> None:
        """Send every queued email now (for a cron job or after an SMTP outage)."""
        click.echo(f"sent {deliver(app, limit=10_000)} email(s)")


def deliver(app: Flask, limit: int = 50) -> int:
    """Send queued emails in a fresh app context; never raises."""
    with app.app_context():
        try:
            return send_pending(
                db.session, transport_for(app), app.config["MAIL_FROM"], limit, html=html_email
            )
        except Exception:  # noqa: BLE001 - the worker and `flask outbox send` retry later
            log.exception("outbox delivery failed")
            db.session.rollback()
            return 0
        finally:
            db.session.remove()
