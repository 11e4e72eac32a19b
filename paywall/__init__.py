"""The paywall service: reader accounts, device-capped sessions, Stripe billing, entitlements."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

MIGRATIONS = str(Path(__file__).resolve().parent.parent / "migrations")


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: config, extensions, blueprints, CLI, error handlers. Never touches the
    schema: run ``flask --app wsgi db upgrade`` (``make run`` does)."""
    # Imported here, not at module level, so ``import paywall.<module>`` stays light.
    from paywall import (
        brand,
        database,
        hardening,
        logs,
        metrics,
        notifications,
        ports,
        queue,
        ratelimits,
    )
    from paywall.accounts import pages as account_pages
    from paywall.accounts import views as account_views
    from paywall.billing import cli as billing_cli
    from paywall.billing import pages as billing_pages
    from paywall.billing import views as billing_views
    from paywall.billing.hooks import BillingHooks
    from paywall.config import load_config
    from paywall.devices import auth as device_auth
    from paywall.devices import cli as device_cli
    from paywall.devices import views as session_views
    from paywall.entitlements import cli as entitlement_cli
    from paywall.entitlements import revocations as _revocations  # noqa: F401 - the table
    from paywall.entitlements import views as entitlement_views
    from paywall.errors import register_error_handlers
    from paywall.extensions import api, csrf, db, limiter, migrate
    from paywall.gifts import views as gift_views
    from paywall.grants import cli as grant_cli
    from paywall.grants import models as _grant_models  # noqa: F401 - the table, for Alembic
    from paywall.health import bp as health_bp
    from paywall.meter import views as meter_views
    from paywall.outbox import cli as outbox_cli
    from paywall.publishers import auth as publisher_auth

    app = Flask(__name__, instance_relative_config=True)
    # Config
    load_config(app, test_config)
    logs.configure_logging(app)
    # Extensions
    brand.init_app(app)
    db.init_app(app)
    database.init_app(app)
    migrate.init_app(app, db, directory=MIGRATIONS)
    limiter.init_app(app)
    ratelimits.init_app(app)
    hardening.init_app(app)
    csrf.init_app(app)
    api.init_app(app)
    queue.init_app(app)
    metrics.init_app(app)
    publisher_auth.init_app(app)
    device_auth.init_app(app)
    # Billing, as accounts and devices see it (paywall.ports)
    app.extensions[ports.KEY] = BillingHooks()
    # Blueprints: pages, then the JSON API (which checks Origin / Sec-Fetch-Site, not CSRF)
    app.register_blueprint(health_bp)
    app.register_blueprint(account_pages.bp)
    app.register_blueprint(billing_pages.bp)
    app.register_blueprint(entitlement_views.well_known)
    app.session_interface = entitlement_views.SessionlessPaths()
    for blueprint in (
        account_views.blp,
        session_views.blp,
        billing_views.blp,
        entitlement_views.blp,
        meter_views.blp,
        gift_views.blp,
    ):
        api.register_blueprint(blueprint)
        csrf.exempt(blueprint)
    notifications.init_app(app)
    # CLI
    device_cli.init_app(app)
    billing_cli.init_app(app)
    outbox_cli.init_app(app)
    grant_cli.init_app(app)
    entitlement_cli.init_app(app)
    # Error handlers, then the proxy middleware around everything
    register_error_handlers(app)
    _trust_proxies(app)
    return app


def _trust_proxies(app: Flask) -> None:
    """Behind N proxies, read the client's address, scheme and host N hops from the right of
    X-Forwarded-*; with 0 (the default) those headers are ignored, so nobody can spoof them."""
    hops = int(app.config["TRUSTED_PROXY_COUNT"])
    if hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops
        )
