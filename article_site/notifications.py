"""The site's side of story notifications: the "Get notified of new stories" control, the
service worker, and three small calls forwarded to the service with the reader's session
(server to server, as the devices page does), so the browser only talks to the site."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify, request

from article_site.paywall_client import PaywallClient

STATIC = Path(__file__).resolve().parent / "static"
FEATURE = "notifications"
PLANS_TTL = 300.0


def init_app(app: Flask, client: PaywallClient, reader: Any) -> None:
    def script(name: str, **headers: str) -> Response:
        response = Response((STATIC / name).read_text(), mimetype="text/javascript")
        response.headers["Cache-Control"] = "no-cache"
        response.headers.update(headers)
        return response

    @app.get("/sw.js")
    def service_worker() -> Response:
        # Served from the root so its scope is the whole site.
        return script("sw.js", **{"Service-Worker-Allowed": "/"})

    @app.get("/notifications.js")
    def notifications_script() -> Response:
        return script("notifications.js")

    @app.get("/notifications/state")
    def state() -> Response:
        current = reader()
        if current.session is None or not has_feature(current.claims):
            return jsonify({"feature": False})
        return jsonify(
            {
                "feature": True,
                "vapid_key": client.vapid_key(),
                "subscriptions": client.push_subscriptions(current.session),
            }
        )

    @app.post("/notifications/subscriptions")
    def subscribe() -> tuple[Response, int]:
        current = reader()
        if current.session is None:
            return jsonify({"error": {"code": "unauthorized", "message": "Log in first."}}), 401
        status, body = client.push_subscribe(current.session, request.get_json(silent=True) or {})
        return jsonify(body), status

    @app.delete("/notifications/subscriptions/<subscription_id>")
    def unsubscribe(subscription_id: str) -> tuple[str, int]:
        current = reader()
        if current.session is None:
            return "", 401
        return "", client.push_unsubscribe(current.session, subscription_id)

    @app.context_processor
    def notification_context() -> dict[str, Any]:
        return {"notify_feature": has_feature(reader().claims), "notify_plans": plans_with_it}

    cache: dict[str, Any] = {"at": 0.0, "names": []}

    def plans_with_it() -> list[str]:
        """Names of the plans that bring notifications, for readers without them (asked of
        the service at most every five minutes)."""
        if time.monotonic() - cache["at"] > PLANS_TTL or not cache["names"]:
            plans = client.plans()
            cache["names"] = sorted(
                {p["name"] for p in plans if FEATURE in p.get("entitlements", [])}
            )
            cache["at"] = time.monotonic()
        return list(cache["names"])


def has_feature(claims: dict[str, Any] | None) -> bool:
    return bool(claims) and FEATURE in (claims or {}).get("features", [])
