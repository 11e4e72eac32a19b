"""The entitlements API: issue a token, verify one online, and an auth_request-style check."""

from __future__ import annotations

from typing import Any

from flask import Response, request
from flask_login import current_user
from flask_smorest import Blueprint

from paywall import metrics
from paywall.devices.auth import (
    current_device,
    login_required,
    presented_token,
    rotated_session_value,
)
from paywall.entitlements.revocations import Cursor, revocation_state
from paywall.entitlements.schemas import (
    CheckHeadersSchema,
    IssuedTokenSchema,
    RevocationFeedArgsSchema,
    RevocationFeedSchema,
    VerifyRequestSchema,
    VerifyResultSchema,
)
from paywall.entitlements.services import entitlement_service
from paywall.entitlements.verifier import can_read
from paywall.publishers.auth import PUBLISHER_SECURITY, publisher_required
from paywall.schemas import api_errors

blp = Blueprint(
    "entitlements",
    __name__,
    url_prefix="/api/v1/entitlements",
    description="Entitlement tokens for the article frontend",
)

NO_STORE = {"Cache-Control": "no-store"}


@blp.route("/token", methods=["POST"])
@login_required
@blp.response(200, IssuedTokenSchema, headers=None)
@api_errors(blp, 401, 403)
def issue_token() -> tuple[dict[str, Any], int, dict[str, str]]:
    """A short-lived token for this device session, naming what the reader may read."""
    issued = entitlement_service().issue(current_user, current_device())
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
    if rotated and presented_token()[1] == "bearer":  # a cookie's value stays out of reach of JS
        body["session_token"] = rotated
    return body, 200, NO_STORE


@blp.route("/verify", methods=["POST"])
@blp.arguments(VerifyRequestSchema)
@blp.response(200, VerifyResultSchema)
@api_errors(blp, 400, 403, 413, 422)
def verify_token(body: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
    """Check a token online: signature, expiry, and that its session and features still hold."""
    claims, reason = entitlement_service().check_online(body["token"])
    if claims is None:
        return {"valid": False, "reason": reason}, 200, NO_STORE
    return {"valid": True, "claims": claims}, 200, NO_STORE


@blp.route("/check", methods=["GET"])
@blp.doc(security=[{"entitlementToken": []}])
@blp.arguments(CheckHeadersSchema, location="headers")
@blp.response(204)
@api_errors(blp, 401, 403, 422)
def check(headers: dict[str, Any]) -> Response:
    """For an edge proxy (nginx ``auth_request``): 204 entitled, 401 no or bad token, 403 valid
    but not entitled to ``X-Paywall-Access-Level`` (default premium)."""
    from paywall.errors import error_response

    token = headers.get("token")
    auth = request.headers.get("Authorization", "")
    if not token and auth[:7].lower() == "bearer ":
        token = auth[7:].strip()
    if not token:
        return error_response("unauthorized", "No entitlement token.", 401)
    claims, reason = entitlement_service().check_online(token)
    if claims is None:
        return error_response(f"token_{reason}", f"The token is {reason}.", 401)
    if not can_read(claims, headers["access_level"]):
        return error_response("not_entitled", "This reader may not read this article.", 403)
    return Response(status=204, headers=NO_STORE)


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
    found, after = revocation_state().wait(cursor, wait)
    body = {"revocations": [e.public() for e in found], "cursor": str(after)}
    return body, 200, NO_STORE
