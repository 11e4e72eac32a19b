"""Who is asking: the device session from the cookie or ``Authorization: Bearer``, and the CSRF
check for cookie-authenticated API calls.

flask-login's ``request_loader`` finds the account; the session itself is kept on ``g``. When
the value was rotated in this request the new value goes back as ``Set-Cookie`` to a cookie
client and in the ``Paywall-Session-Token`` header to a bearer client.
"""

from __future__ import annotations

from collections.abc import Callable
from copy import deepcopy
from typing import Any, TypeVar
from urllib.parse import urlsplit

import flask_login
from flask import Flask, current_app, g, redirect, request, url_for
from werkzeug.wrappers import Response

from paywall.accounts.models import Account
from paywall.devices.models import DeviceSession
from paywall.devices.services import SessionEnded, device_service
from paywall.errors import Forbidden, Unauthorized, wants_json
from paywall.extensions import db, login_manager

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: The OpenAPI security of an operation that needs a signed-in reader: the device session's
#: value as a bearer token, or the session cookie (either one).
READER_SECURITY: list[dict[str, list[str]]] = [{"readerSession": []}, {"readerCookie": []}]

F = TypeVar("F", bound=Callable[..., Any])


def login_required(view: F) -> F:
    """flask-login's ``login_required`` that also says so in the OpenAPI document, so clients
    (and schemathesis's ``ignored_auth`` check) know which operations need a reader."""
    return reader_security(flask_login.login_required(view))


def reader_security(view: F) -> F:
    """Say in the OpenAPI document that ``view`` needs a reader (for a view that checks the
    session itself, like the token refresh)."""
    apidoc = deepcopy(getattr(view, "_apidoc", {}))
    apidoc.setdefault("manual_doc", {}).setdefault("security", READER_SECURITY)
    view._apidoc = apidoc  # type: ignore[attr-defined]
    return view


#: The response header that carries a rotated session value to a bearer client.
SESSION_TOKEN_HEADER = "Paywall-Session-Token"  # noqa: S105 - a header name


def presented_token() -> tuple[str | None, str]:
    """The session value and where it came from ("bearer", "cookie" or "")."""
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip() or None, "bearer"
    cookie = request.cookies.get(current_app.config["DEVICE_COOKIE_NAME"])
    return (cookie, "cookie") if cookie else (None, "")


def rotated_session_value() -> str | None:
    """The value that replaced the presented one in this request, or None."""
    return g.get("rotated_session_value")  # type: ignore[no-any-return]


def current_session_value() -> str | None:
    """The session value this request's client holds from now on: the rotated value when the
    session was rotated in this request, else the one presented."""
    return rotated_session_value() or presented_token()[0]


def current_device() -> DeviceSession:
    """The signed-in device session; only valid after ``login_required``."""
    return g.device_session  # type: ignore[no-any-return]


def init_app(app: Flask) -> None:
    from paywall.extensions import api

    login_manager.init_app(app)
    api.spec.components.security_scheme(
        "readerSession",
        {"type": "http", "scheme": "bearer", "description": "a device session's value"},
    )
    api.spec.components.security_scheme(
        "entitlementToken",
        {
            "type": "http",
            "scheme": "bearer",
            "description": "an entitlement token (GET /entitlements/check; or X-Paywall-Token)",
        },
    )
    api.spec.components.security_scheme(
        "readerCookie",
        {"type": "apiKey", "in": "cookie", "name": app.config["DEVICE_COOKIE_NAME"]},
    )

    @login_manager.request_loader
    def load_from_request(_request: object) -> Account | None:
        token, _source = presented_token()
        if not token or len(token) > 200:
            return None
        try:
            device, account, new_value = device_service().authenticate(token)
        except SessionEnded as exc:
            g.auth_error = exc
            if db.session.info.pop("touched", False):
                db.session.commit()  # a reused value ended the session: keep that
            return None
        if db.session.info.pop("touched", False):
            db.session.commit()
        g.device_session = device
        g.rotated_session_value = new_value
        return account

    @app.after_request
    def deliver_rotated_value(response: Response) -> Response:
        """Hand a rotated session value to the client (unless the session ended meanwhile,
        e.g. this request logged it out)."""
        new_value = g.get("rotated_session_value")
        device = g.get("device_session")
        if not new_value or device is None or device.ended_at is not None:
            return response
        _token, source = presented_token()
        if source == "cookie":
            from paywall.devices.views import set_session_cookie

            set_session_cookie(response, new_value)
        else:
            response.headers[SESSION_TOKEN_HEADER] = new_value
        response.headers["Cache-Control"] = "no-store"
        return response

    @login_manager.unauthorized_handler
    def unauthorized() -> Response:
        error = g.get("auth_error")
        if wants_json():
            raise error or Unauthorized()
        # A device that was signed out is told why on the login page.
        reason = error.extra.get("reason") if error is not None else None
        return redirect(url_for("pages.login", next=request.full_path.rstrip("?"), reason=reason))

    @app.before_request
    def check_api_origin() -> None:
        """Refuse cross-site, cookie-authenticated API writes (OWASP CSRF cheat sheet:
        verifying origin with standard headers, plus Fetch Metadata)."""
        if request.method not in UNSAFE_METHODS or not request.path.startswith("/api/"):
            return
        _token, source = presented_token()
        if source != "cookie":
            return  # bearer tokens and anonymous calls are not ambient authority
        if not same_origin_request():
            raise Forbidden(
                "Cross-site request refused. Send requests from the site's own pages.",
                code="csrf_failed",
            )


def trusted_origins() -> set[str]:
    cfg = current_app.config
    urls = [cfg["PUBLIC_URL"], cfg["SITE_URL"], *cfg["TRUSTED_ORIGINS"]]
    return {_origin(url) for url in urls if url}


def same_origin_request() -> bool:
    origin = request.headers.get("Origin")
    if origin and origin != "null":
        return _origin(origin) in trusted_origins() or _origin(origin) == _origin(request.host_url)
    if origin == "null":
        return False
    site = request.headers.get("Sec-Fetch-Site")
    if site:
        return site in ("same-origin", "none")
    # Neither header: not a browser (browsers send Origin on every cross-origin POST).
    return True


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()
