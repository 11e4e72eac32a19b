"""The device-sessions JSON API: log in (one device), list, sign out."""

from __future__ import annotations

from typing import Any

from flask import after_this_request, current_app, request
from flask_login import current_user, login_required
from flask_smorest import Blueprint
from werkzeug.wrappers import Response

from paywall import ratelimits
from paywall.accounts.services import account_service
from paywall.devices.auth import current_device
from paywall.devices.models import DeviceSession
from paywall.devices.schemas import (
    DeviceLimitSchema,
    LoginSchema,
    NewSessionSchema,
    SessionListSchema,
)
from paywall.devices.services import describe, device_service
from paywall.extensions import db
from paywall.schemas import api_errors

blp = Blueprint("sessions", __name__, url_prefix="/api/v1", description="Device sessions")


def set_session_cookie(response: Response, raw_token: str) -> None:
    cfg = current_app.config
    response.set_cookie(
        cfg["DEVICE_COOKIE_NAME"],
        raw_token,
        max_age=int(cfg["SESSION_ABSOLUTE_LIFETIME"]),
        secure=bool(cfg["SESSION_COOKIE_SECURE"]),
        httponly=True,
        samesite="Lax",
        domain=cfg["DEVICE_COOKIE_DOMAIN"],
        path="/",
    )


def clear_session_cookie(response: Response) -> None:
    cfg = current_app.config
    response.delete_cookie(
        cfg["DEVICE_COOKIE_NAME"],
        path="/",
        domain=cfg["DEVICE_COOKIE_DOMAIN"],
        secure=bool(cfg["SESSION_COOKIE_SECURE"]),
        httponly=True,
        samesite="Lax",
    )


def log_in(body: dict[str, Any]) -> tuple[DeviceSession, str]:
    """Check the credentials and open a device session under the cap; commits. The attempt is
    charged to the rate limits before the password is checked."""
    with ratelimits.login_attempt(body["email"]):
        account = account_service().authenticate(body["email"], body["password"])
        device, raw = device_service().open_session(
            account,
            device_name=body.get("device_name"),
            user_agent=request.headers.get("User-Agent", ""),
            replace_session_id=body.get("replace_session_id"),
        )
        db.session.commit()
    return device, raw


@blp.route("/sessions", methods=["POST"])
@ratelimits.per_address("LOGIN_LIMIT_PER_ADDRESS", "login-address")
@blp.arguments(LoginSchema)
@blp.response(201, NewSessionSchema)
@blp.alt_response(409, schema=DeviceLimitSchema, description="device_limit_reached")
@api_errors(blp, 400, 401, 403, 413, 422, 429)
def create_session(body: dict[str, Any]) -> dict[str, Any]:
    """Log in one device. At the device limit: 409 with the devices, or evict (policy)."""
    device, raw = log_in(body)

    @after_this_request
    def add_cookie(response: Response) -> Response:
        set_session_cookie(response, raw)
        return response

    return {**describe(device, current_id=device.id), "token": raw}


@blp.route("/sessions", methods=["GET"])
@login_required
@blp.response(200, SessionListSchema)
@api_errors(blp, 401)
def list_sessions() -> dict[str, Any]:
    """The account's active device sessions, the current one marked."""
    devices = device_service()
    current = current_device()
    return {
        "sessions": [
            describe(s, current_id=current.id) for s in devices.active_sessions(current_user.id)
        ],
        "limit": devices.cap_for(current_user),
    }


@blp.route("/sessions/current", methods=["DELETE"])
@login_required
@blp.response(204)
@api_errors(blp, 401, 403)
def log_out() -> None:
    """Log this device out."""
    current = current_device()
    device_service().sign_out(current_user.id, current.id, current_id=current.id)
    db.session.commit()

    @after_this_request
    def drop_cookie(response: Response) -> Response:
        clear_session_cookie(response)
        return response


@blp.route("/sessions/<string:session_id>", methods=["DELETE"])
@login_required
@blp.response(204)
@api_errors(blp, 401, 403, 404)
def sign_out_device(session_id: str) -> None:
    """Sign one of the account's devices out; it gets 401 ``session_revoked`` next time."""
    current = current_device()
    device_service().sign_out(current_user.id, session_id, current_id=current.id)
    db.session.commit()
