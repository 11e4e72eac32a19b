"""``flask access grant|revoke|list``: access granted by hand, audited (who, when, why)."""

from __future__ import annotations

import getpass
from datetime import UTC, datetime

import click
from flask import Flask
from flask.cli import AppGroup

from paywall.errors import PaywallError

access_cli = AppGroup("access", help="Grant access by hand (press, schools, complaints).")


def _until(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter("use a date like 2027-01-31 (UTC)") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@access_cli.command("grant")
@click.argument("email")
@click.option("--features", required=True, help="comma list: premium_content,notifications")
@click.option("--until", "until", required=True, help="end date (UTC), e.g. 2027-01-31")
@click.option("--reason", required=True, help="why (kept in the audit trail)")
@click.option("--max-devices", type=int, default=None)
@click.option("--by", default=None, help="who grants (default: the operating-system user)")
def grant(
    email: str, features: str, until: str, reason: str, max_devices: int | None, by: str | None
) -> None:
    from paywall.extensions import db
    from paywall.grants.services import grant_service

    try:
        row = grant_service().grant(
            email,
            features=features.split(","),
            until=_until(until),
            reason=reason,
            by=by or getpass.getuser(),
            max_devices=max_devices,
        )
    except PaywallError as exc:
        db.session.rollback()
        raise click.ClickException(exc.message) from exc
    db.session.commit()
    click.echo(f"granted {','.join(row.features)} to {email} until {row.until.isoformat()}")


@access_cli.command("revoke")
@click.argument("email")
@click.option("--by", default=None, help="who revokes (default: the operating-system user)")
def revoke(email: str, by: str | None) -> None:
    from paywall.extensions import db
    from paywall.grants.services import grant_service

    try:
        ended = grant_service().revoke(email, by=by or getpass.getuser())
    except PaywallError as exc:
        raise click.ClickException(exc.message) from exc
    db.session.commit()
    click.echo(f"revoked {len(ended)} grant(s) of {email}")


@access_cli.command("end-expired")
def end_expired() -> None:
    """Email readers whose grant reached its date (run from cron, e.g. hourly)."""
    from paywall.extensions import db
    from paywall.grants.services import grant_service

    rows = grant_service().end_expired()
    db.session.commit()
    click.echo(f"{len(rows)} ended grant(s) checked")


@access_cli.command("list")
def listing() -> None:
    from paywall.clock import utcnow
    from paywall.grants.services import grant_service

    now = utcnow()
    for row, email in grant_service().listing():
        state = (
            f"revoked {row.revoked_at.isoformat()} by {row.revoked_by}"
            if row.revoked_at
            else ("active" if row.active_at(now) else "ended")
        )
        click.echo(
            f"{email}\t{','.join(row.features)}\tmax_devices={row.max_devices or '-'}\t"
            f"until {row.until.isoformat()}\tby {row.granted_by} at {row.created_at.isoformat()}"
            f"\t{state}\t{row.reason}"
        )


def init_app(app: Flask) -> None:
    app.cli.add_command(access_cli)
