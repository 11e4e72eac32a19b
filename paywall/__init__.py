"""The paywall service: reader accounts, device-capped sessions, Stripe billing, entitlements."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: config, extensions, blueprints, error handlers. Never touches the schema:
    run ``flask --app wsgi db upgrade`` (``make run`` does)."""
    app = Flask(__name__, instance_relative_config=True)
    from paywall.config import load_config

    load_config(app, test_config)

    from paywall import brand, database, logs
    from paywall.errors import register_error_handlers
    from paywall.extensions import api, csrf, db, limiter, migrate

    logs.configure_logging(app)
    brand.init_app(app)
    db.init_app(app)
    with app.app_context():
        database.configure_engine(db.engine)
    migrate.init_app(app, db, directory=_migrations_dir())
    limiter.init_app(app)
    csrf.init_app(app)
    api.init_app(app)
    from paywall.publishers import auth as publisher_auth

    publisher_auth.init_app(app)

    from paywall import queue
    from paywall.accounts import pages
    from paywall.accounts import views as account_views
    from paywall.devices import auth
    from paywall.devices import views as session_views
    from paywall.health import bp as health_bp
    from paywall.outbox import cli as outbox_cli

    auth.init_app(app)
    from paywall.devices import cli as device_cli

    device_cli.init_app(app)
    queue.init_app(app)
    outbox_cli.init_app(app)
    app.register_blueprint(health_bp)
    app.register_blueprint(pages.bp)
    for blueprint in (account_views.blp, session_views.blp):
        api.register_blueprint(blueprint)
        csrf.exempt(blueprint)  # the JSON API checks Origin / Sec-Fetch-Site instead
    _register_billing(app)
    from paywall import notifications

    notifications.init_app(app)
    register_error_handlers(app)
    return app


def _register_billing(app: Flask) -> None:
    """Billing plugs into accounts and devices here, the one place that knows both."""
    from paywall.billing import cli, pages
    from paywall.billing import views as billing_views
    from paywall.billing.services import billing_service
    from paywall.extensions import api, csrf

    api.register_blueprint(billing_views.blp)
    csrf.exempt(billing_views.blp)
    app.register_blueprint(pages.bp)
    cli.init_app(app)
    from paywall.entitlements import views as entitlement_views

    api.register_blueprint(entitlement_views.blp)
    csrf.exempt(entitlement_views.blp)
    app.extensions["paywall.describe_account"] = lambda a: billing_service().describe_account(a)
    app.extensions["paywall.device_cap"] = lambda a: billing_service().cap_for(a)
    app.extensions["paywall.list_plans"] = _plans_or_nothing
    app.extensions["paywall.list_invoices"] = lambda a: billing_service().invoices(a)
    app.extensions["paywall.erase_account"] = lambda a: billing_service().erase(a)
    app.extensions["paywall.export_account"] = _export_account


def _export_account(account: Any) -> dict[str, Any]:
    from sqlalchemy import select

    from paywall.billing.services import billing_service
    from paywall.devices.models import DeviceSession
    from paywall.devices.services import describe
    from paywall.extensions import db

    sessions = db.session.scalars(
        select(DeviceSession).where(DeviceSession.account_id == account.id)
    ).all()
    devices = [
        {
            **describe(s),
            "ended_at": s.ended_at.isoformat() if s.ended_at else None,
            "end_reason": s.end_reason,
            "user_agent": s.user_agent,
        }
        for s in sessions
    ]
    return {"devices": devices, **billing_service().export(account)}


def _plans_or_nothing() -> list[Any]:
    from paywall.billing.services import billing_service
    from paywall.errors import UpstreamError

    try:
        return billing_service()._stripe(billing_service().plans)
    except UpstreamError:
        return []


def _migrations_dir() -> str:
    from pathlib import Path

    return str(Path(__file__).resolve().parent.parent / "migrations")
