"""The entitlements API: issue a token, verify one online, an auth_request-style check, and the
public keys (``/.well-known/jwks.json``)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Request, Response, current_app, jsonify, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_login import current_user
from flask_smorest import Blueprint as ApiBlueprint

from paywall import metrics
from paywall.billing.services import BillingSettings
from paywall.database import autocommit_read
from paywall.devices.auth import (
    current_device,
    current_session_value,
    presented_token,
    reader_security,
    rotated_session_value,
)
from paywall.devices.services import DevicePolicy
from paywall.entitlements.keys import signing_keys
from paywall.entitlements.revocations import Cursor, revocation_state
from paywall.entitlements.schemas import (
    CheckHeadersSchema,
    IssuedTokenSchema,
    RevocationFeedArgsSchema,
    RevocationFeedSchema,
    VerifyRequestSchema,
    VerifyResultSchema,
)
from paywall.entitlements.services import IssuedToken, entitlement_service
from paywall.entitlements.verifier import JWKS_MAX_AGE, can_read
from paywall.errors import Unauthorized
from paywall.extensions import db
from paywall.publishers.auth import PUBLISHER_SECURITY, publisher_required
from paywall.schemas import api_errors

blp = ApiBlueprint(
    "entitlements",
    __name__,
    url_prefix="/api/v1/entitlements",
    description="Entitlement tokens for the article frontend",
)
#: ``/.well-known/jwks.json``: outside the API prefix, where JOSE clients look for it.
well_known = Blueprint("well_known", __name__)

NO_STORE = {"Cache-Control": "no-store"}
CHECK_HEADERS = CheckHeadersSchema()
#: Paths that never read or write Flask's cookie session (``SessionlessPaths``): the edge
#: check and the token refresh (both authenticate by token or session value; the API's CSRF
#: defence is the Origin check in ``paywall.devices.auth``, not the cookie session).
SESSIONLESS_PATHS = frozenset({"/api/v1/entitlements/check", "/api/v1/entitlements/token"})


class SessionlessPaths(SecureCookieSessionInterface):
    """Flask's cookie session, except on ``SESSIONLESS_PATHS``: they decide from the token
    and the session value alone, so they skip decoding (and re-signing) the ``session``
    cookie on every page view behind the proxy and every token refresh."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if request.path in SESSIONLESS_PATHS:
            return self.make_null_session(app)  # type: ignore[return-value]
        return super().open_session(app, request)


@blp.route("/token", methods=["POST"])
@reader_security
@blp.response(200, IssuedTokenSchema, headers=None)
@api_errors(blp, 401, 403)
def issue_token() -> tuple[dict[str, Any], int, dict[str, str]]:
    """A short-lived token for this device session, naming what the reader may read and bound
    to the session value (``cnf.sth``)."""
    presented, source = presented_token()
    issued = quiet_refresh(presented) if presented and len(presented) <= 200 else None
    if issued is None:  # the full path: flask-login's loader runs ``authenticate``
        if not current_user.is_authenticated:
            return current_app.login_manager.unauthorized()  # type: ignore[attr-defined,no-any-return]
        session_value = current_session_value()
        if not session_value:
            raise Unauthorized()
        issued = entitlement_service().issue(current_user, current_device(), session_value)
    metrics.TOKENS.inc()
    access = issued.access
    body = {
        "token": issued.token,
        "expires_at": issued.expires_at.isoformat(),
        "entitlements": {
            "plan": access.plan,
            "features": list(access.features),
            "max_devices": access.max_devices,
        },
    }
    rotated = rotated_session_value()
    if rotated and source == "bearer":  # a cookie's value stays out of reach of JS
        body["session_token"] = rotated
    return body, 200, NO_STORE


def quiet_refresh(presented: str) -> IssuedToken | None:
    """The one-statement refresh (``EntitlementService.quiet_refresh``) on an autocommit
    connection, or None to take the full path."""
    cfg = current_app.config
    return autocommit_read(
        db.engine,
        lambda connection: entitlement_service().quiet_refresh(
            connection,
            presented,
            DevicePolicy.from_config(cfg),
            BillingSettings.from_config(cfg),
        ),
    )


@blp.route("/verify", methods=["POST"])
@publisher_required
@blp.doc(security=PUBLISHER_SECURITY)
@blp.arguments(VerifyRequestSchema)
@blp.response(200, VerifyResultSchema)
@api_errors(blp, 400, 401, 403, 413, 422)
def verify_token(body: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
    """For the publisher's servers: check a token online (signature, expiry, revocation) and,
    when ``session`` is given, that it came with the session it was issued for."""
    session = body.get("session")
    claims, reason = entitlement_service().check_online(
        body["token"], revocation_state(), session=session, bound=session is not None
    )
    if claims is None:
        return {"valid": False, "reason": reason}, 200, NO_STORE
    return {"valid": True, "claims": claims}, 200, NO_STORE


@blp.route("/check", methods=["GET"])
@blp.doc(security=[{"entitlementToken": []}])
@blp.arguments(CHECK_HEADERS, location="headers")  # one instance, not one per call
@blp.response(204)
@api_errors(blp, 401, 403, 422)
def check(headers: dict[str, Any]) -> Response:
    """For an edge proxy (nginx ``auth_request``): 204 entitled, 401 no, bad or revoked token or
    not presented with its session (``X-Paywall-Session`` or the session cookie), 403 valid but
    not entitled to ``X-Paywall-Access-Level`` (default premium)."""
    from paywall.errors import error_response

    token = headers.get("token")
    auth = request.headers.get("Authorization", "")
    if not token and auth[:7].lower() == "bearer ":
        token = auth[7:].strip()
    if not token:
        return error_response("unauthorized", "No entitlement token.", 401)
    session = headers.get("session") or request.cookies.get(
        current_app.config["DEVICE_COOKIE_NAME"]
    )
    claims, reason = entitlement_service().check_online(token, revocation_state(), session=session)
    if claims is None:
        return error_response(f"token_{reason}", f"The token is {reason}.", 401)
    if not can_read(claims, headers["access_level"]):
        return error_response("not_entitled", "This reader may not read this article.", 403)
    return Response(status=204, headers=NO_STORE)


@well_known.get("/.well-known/jwks.json")
def jwks() -> Response:
    """The public keys entitlement tokens are signed with (RFC 7517), newest first."""
    response = jsonify(signing_keys(current_app.config["ENTITLEMENT_SIGNING_KEYS"]).jwks())
    response.headers["Cache-Control"] = f"public, max-age={JWKS_MAX_AGE}"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


@blp.route("/revocations", methods=["GET"])
@publisher_required
@blp.doc(security=PUBLISHER_SECURITY)
@blp.arguments(RevocationFeedArgsSchema, location="query")
@blp.response(200, RevocationFeedSchema)
@api_errors(blp, 400, 401, 422)
def revocations(args: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
    """The revocation feed for frontends: revocations newer than ``after``. With ``wait``, a
    long poll: answers as soon as there is one, else empty after ``wait`` seconds. Answered from
    this process's state (no database connection is held while waiting)."""
    from flask import current_app

    cursor = Cursor.parse(args.get("after"))
    wait = min(float(args["wait"]), float(current_app.config["REVOCATION_MAX_WAIT"]))
    if _single_request_worker():
        wait = 0.0  # a sync worker would be held for the whole wait: answer now (a plain poll)
    found, after = revocation_state().wait(cursor, wait)
    body = {"revocations": [e.public() for e in found], "cursor": str(after)}
    return body, 200, NO_STORE


def _single_request_worker() -> bool:
    """A gunicorn sync worker (one request at a time): a long poll would starve the service.
    Long polls belong on ``paywall.entitlements.feed_server`` (README)."""
    environ = request.environ
    return str(environ.get("SERVER_SOFTWARE", "")).startswith("gunicorn") and not environ.get(
        "wsgi.multithread"
    )
