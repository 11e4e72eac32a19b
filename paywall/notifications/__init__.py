"""Story notifications: Web Push and email alerts for readers with the ``notifications``
feature, tied to their device sessions, once per story and device."""

from __future__ import annotations

from flask import Flask

from paywall.config import ConfigError


def init_app(app: Flask) -> None:
    """Load the VAPID key (demo: generate one in ``instance/``), register API, pages, CLI."""
    from paywall.extensions import api, csrf
    from paywall.notifications import cli, pages, views
    from paywall.notifications.push import VapidKeyInvalid, demo_vapid_key, load_vapid_key

    cfg = app.config
    value = cfg.get("VAPID_PRIVATE_KEY")
    if not value and cfg["DEMO"]:  # demo mode only: DEBUG never stands for it
        value = cfg["VAPID_PRIVATE_KEY"] = demo_vapid_key(app.instance_path)
    if not value:
        raise ConfigError("PAYWALL_VAPID_PRIVATE_KEY is not set (see README: notifications)")
    try:
        app.extensions["paywall.vapid"] = load_vapid_key(str(value))
    except VapidKeyInvalid as exc:
        raise ConfigError(f"PAYWALL_VAPID_PRIVATE_KEY is not a P-256 private key: {exc}") from exc
    subject = str(cfg["VAPID_SUBJECT"])
    if not subject.startswith(("mailto:", "https:")):
        raise ConfigError("PAYWALL_VAPID_SUBJECT must be a mailto: or https: URL (RFC 8292)")
    api.register_blueprint(views.blp)
    csrf.exempt(views.blp)
    app.register_blueprint(pages.bp)
    csrf.exempt(pages.unsubscribe)
    cli.init_app(app)
