"""The device-sessions JSON API: log in (one device), list, sign out."""

from __future__ import annotations

from typing import Any

from flask import after_this_request, current_app, request
from flask_login import current_user
from flask_smorest import Blueprint
from werkzeug.wrappers import Response

from paywall import metrics, ratelimits
from paywall.accounts.models import Account
from paywall.accounts.services import account_service
from paywall.devices import emails
from paywall.devices.auth import current_device, login_required
from paywall.devices.models import DeviceSession
from paywall.devices.schemas import (
    DeviceLimitSchema,
    LoginSchema,
    NewSessionSchema,
    SessionListSchema,
    SignedOutSchema,
)
from paywall.devices.services import describe, device_service
from paywall.errors import PaywallError
from paywall.extensions import db
from paywall.outbox.services import Outbox
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
    try:
        with ratelimits.login_attempt(body["email"]):
            account = account_service().authenticate(body["email"], body["password"])
            device, raw = device_service().open_session(
                account,
                verified_changed_at=account.password_changed_at,
                device_name=body.get("device_name"),
                user_agent=request.headers.get("User-Agent", ""),
                replace_session_id=body.get("replace_session_id"),
            )
            tell_about_sign_in(account, device)
            db.session.commit()
    except PaywallError as exc:
        metrics.LOGINS.labels(exc.code).inc()
        raise
    metrics.LOGINS.labels("success").inc()
    return device, raw


def tell_about_sign_in(account: Account, device: DeviceSession) -> None:
    """Email the reader about a sign-in from a new device, and about any device it pushed
    out at the limit."""
    devices = device_service()
    outbox = Outbox(db.session)
    link = current_app.config["PUBLIC_URL"].rstrip("/") + "/devices"
    for victim in devices.evicted:
        mail = emails.device_evicted(victim.device_name, device.device_name, link)
        outbox.enqueue(to=account.email, dedupe_key=f"evicted:{victim.id}", **mail._asdict())
    if devices.is_new_device(device):
        mail = emails.new_device(device.device_name, device.created_at, link)
        outbox.enqueue(to=account.email, dedupe_key=f"new_device:{device.id}", **mail._asdict())


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


@blp.route("/sessions", methods=["DELETE"])
@login_required
@blp.response(200, SignedOutSchema)
@api_errors(blp, 401, 403)
def sign_out_others() -> dict[str, int]:
    """Sign out every other device (this one stays signed in)."""
    ended = device_service().sign_out_others(current_user.id, current_device().id)
    db.session.commit()
    return {"signed_out": ended}


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
