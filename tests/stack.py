"""The whole system on loopback: the service and the news site served over real HTTP, wired to
the Stripe stand-in, which delivers signed webhooks to the service by HTTP as Stripe does."""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from typing import Any

from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from tests.conftest import STANDIN_API_KEY, STANDIN_WEBHOOK_SECRET, make_app


@dataclass
class Served:
    app: Flask
    server: BaseWSGIServer
    thread: threading.Thread

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=5)


def serve(app: Flask) -> Served:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return Served(app, server, thread)


@dataclass
class LiveStack:
    service: Served
    site: Served
    standin: Any
    keys: list[str] = field(default_factory=list)  # the service's signing keys (PEM)
    publisher_key: str = ""

    def stop(self) -> None:
        watcher = self.site.app.extensions.get("revocation_watcher")
        if watcher is not None:
            watcher.stop()
        self.site.stop()
        self.service.stop()
        self.standin.webhook_url = None


def start_stack(database_url: str, smtp_port: int, standin: Any, **overrides: Any) -> LiveStack:
    """Service + site on free ports; the site verifies tokens with the service's JWKS."""
    from article_site import create_app as create_site
    from paywall.entitlements.keys import generate_pem

    keys = [generate_pem()]
    # The site follows the revocation feed with the first publisher key.
    publisher_keys = overrides.pop("PUBLISHER_API_KEYS", None) or [secrets.token_urlsafe(32)]
    # Bind first so the service knows its own public URL (links in emails, Checkout return).
    placeholder = make_server("127.0.0.1", 0, Flask("placeholder"))
    port = placeholder.server_port
    placeholder.server_close()
    site_placeholder = make_server("127.0.0.1", 0, Flask("placeholder"))
    site_port = site_placeholder.server_port
    site_placeholder.server_close()
    service_app = make_app(
        database_url,
        smtp_port,
        PUBLIC_URL=f"http://127.0.0.1:{port}",
        SITE_URL=f"http://127.0.0.1:{site_port}",
        SESSION_COOKIE_SECURE=False,
        ENTITLEMENT_SIGNING_KEYS=keys,
        STRIPE_API_KEY=STANDIN_API_KEY,
        STRIPE_WEBHOOK_SECRET=[STANDIN_WEBHOOK_SECRET],
        STRIPE_API_BASE=standin.url,
        WTF_CSRF_ENABLED=True,
        PUBLISHER_API_KEYS=publisher_keys,
        **overrides,
    )
    runner = service_app.test_cli_runner()
    result = runner.invoke(args=["billing", "create-demo-catalogue"])
    assert result.exit_code == 0, result.output
    service = _serve_on(service_app, port)
    standin.webhook_url = service.url + "/api/v1/stripe/webhook"
    site_app = create_site(
        {
            "PAYWALL_URL": service.url,
            "SITE_URL": f"http://127.0.0.1:{site_port}",
            "SECRET_KEY": secrets.token_hex(16),
            "TESTING": True,
            "PUBLISHER_KEY": publisher_keys[0],
        }
    )
    site = _serve_on(site_app, site_port)
    return LiveStack(service, site, standin, keys, publisher_keys[0])


def _serve_on(app: Flask, port: int) -> Served:
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return Served(app, server, thread)
