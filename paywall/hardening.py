"""Response headers every page and API answer carries, and refusal of hostile input before any
view sees it (deep JSON, huge integers, lone surrogates, NUL bytes), as a 4xx with the JSON
error body instead of a 500 from a library deep inside."""

from __future__ import annotations

import json
from typing import Any

from flask import Flask, Response, current_app, g, request

from paywall.errors import PaywallError

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate it
    "X-Content-Type-Options": "nosniff",
    # same-origin, not no-referrer: Flask-WTF checks the Referer of HTTPS form posts.
    "Referrer-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
}
MAX_JSON_DEPTH = 64


class HostileInput(PaywallError):
    code, status, message = "bad_request", 400, "The request is not acceptable."


def _check_strings(value: Any) -> None:
    """Walk the decoded body without recursion: refuse NUL and lone surrogates, and depth."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise HostileInput("The request body is nested too deeply.")
        if isinstance(item, str):
            if "\x00" in item:
                raise HostileInput("Text may not contain NUL characters.")
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise HostileInput("Text must be valid Unicode.") from exc
        elif isinstance(item, dict):
            stack.extend((k, depth + 1) for k in item)
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)


def check_request() -> None:
    if "\x00" in request.path or any("\x00" in v for v in request.args.values()):
        raise HostileInput("The address may not contain NUL characters.")
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    if request.mimetype == "application/x-www-form-urlencoded" and any(
        "\x00" in v for v in request.form.values()
    ):
        raise HostileInput("Text may not contain NUL characters.")
    if request.is_json and request.path != "/api/v1/stripe/webhook":
        raw = request.get_data(cache=True)
        if not raw:
            return
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError) as exc:  # also >4,300-digit integers
            raise HostileInput("The request body is not valid JSON.") from exc
        _check_strings(body)


def set_headers(response: Response) -> Response:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if not current_app.config["DEMO"]:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    # Who is signed in must never be cached by a browser or a proxy.
    cookie = current_app.config["DEVICE_COOKIE_NAME"]
    if (
        g.get("device_session") is not None
        or request.headers.get("Authorization")
        or request.cookies.get(cookie)
        or any(cookie + "=" in h for h in response.headers.getlist("Set-Cookie"))
    ):
        response.headers["Cache-Control"] = "no-store"
    response.headers["Server"] = "paywall"  # no product or version
    return response


def init_app(app: Flask) -> None:
    app.before_request(check_request)
    app.after_request(set_headers)
