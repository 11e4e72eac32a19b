"""``flask devices ...``: housekeeping for device sessions."""

from __future__ import annotations

from datetime import timedelta

import click
from flask import Flask

from paywall.devices.services import device_service
from paywall.extensions import db


def init_app(app: Flask) -> None:
    @app.cli.group("devices")
    def devices_cli() -> None:
        """Device sessions."""

    @devices_cli.command("purge")
    @click.option("--older-than-days", default=30, show_default=True, type=click.IntRange(1))
    def purge(older_than_days: int) -> None:
        """Delete sessions that ended or expired more than N days ago (run it from cron)."""
        deleted = device_service().purge_ended(timedelta(days=older_than_days))
        db.session.commit()
        click.echo(f"deleted {deleted} ended session(s)")
