"""The accounts JSON API: thin views over ``AccountService``."""

from __future__ import annotations

from typing import Any

from flask import after_this_request
from flask_login import current_user
from flask_smorest import Blueprint
from werkzeug.wrappers import Response

from paywall import ratelimits
from paywall.accounts.schemas import (
    AcceptedSchema,
    AccountSchema,
    DeletedSchema,
    EmailChangeSchema,
    ExportSchema,
    PasswordChangedSchema,
    PasswordChangeSchema,
    PasswordConfirmSchema,
    ResetConfirmSchema,
    ResetRequestSchema,
    SignupSchema,
    TokenSchema,
)
from paywall.accounts.services import account_service
from paywall.devices.auth import current_device, login_required
from paywall.devices.views import clear_session_cookie
from paywall.extensions import db
from paywall.ports import billing
from paywall.schemas import api_errors

blp = Blueprint("accounts", __name__, url_prefix="/api/v1", description="Reader accounts")

ACCEPTED_SIGNUP = {
    "status": "accepted",
    "message": "Check your inbox: we sent a link to confirm the address.",
}


@blp.route("/accounts", methods=["POST"])
@ratelimits.per_address("SIGNUP_LIMIT_PER_ADDRESS", "signup-address")
@blp.arguments(SignupSchema)
@blp.response(202, AcceptedSchema)
@api_errors(blp, 400, 403, 413, 422, 429)
def sign_up(body: dict[str, Any]) -> dict[str, str]:
    """Sign up. The same 202 whether or not the address already has an account."""
    account_service().sign_up(body["email"], body["password"])
    db.session.commit()
    return ACCEPTED_SIGNUP


@blp.route("/account", methods=["GET"])
@login_required
@blp.response(200, AccountSchema)
@api_errors(blp, 401)
def get_account() -> dict[str, Any]:
    """The signed-in reader, their subscription and what it grants."""
    return billing().describe_account(current_user)


@blp.route("/account/verification-email", methods=["POST"])
@login_required
@blp.response(202, AcceptedSchema)
@api_errors(blp, 401, 403)
def resend_verification() -> dict[str, str]:
    """Send the verification link again."""
    if not current_user.email_verified:
        account_service().send_verification(current_user)
        db.session.commit()
    return {"status": "accepted", "message": "If the address is unverified, a link is on its way."}


@blp.route("/account/password", methods=["POST"])
@login_required
@blp.arguments(PasswordChangeSchema)
@blp.response(200, PasswordChangedSchema)
@api_errors(blp, 400, 401, 403, 413, 422, 429)
def change_password(body: dict[str, Any]) -> dict[str, int]:
    """Change the password (current one required); every other device is signed out."""
    ratelimits.password_change_attempt(current_user.id, current_device().id)
    ended = account_service().change_password(
        current_user,
        body["current_password"],
        body["new_password"],
        keep_session_id=current_device().id,
    )
    db.session.commit()
    return {"signed_out_devices": ended}


@blp.route("/account/email", methods=["POST"])
@login_required
@blp.arguments(EmailChangeSchema)
@blp.response(202, AcceptedSchema)
@api_errors(blp, 400, 401, 403, 413, 422)
def change_email(body: dict[str, Any]) -> dict[str, str]:
    """Change the sign-in address: a confirmation link goes to the new address, the old one
    is told; nothing changes until the link is opened."""
    account_service().request_email_change(current_user, body["new_email"], body["password"])
    db.session.commit()
    return {
        "status": "accepted",
        "message": "Open the link we sent to the new address to confirm it.",
    }


@blp.route("/account", methods=["DELETE"])
@login_required
@blp.arguments(PasswordConfirmSchema)
@blp.response(200, DeletedSchema)
@api_errors(blp, 400, 401, 403, 413, 422, 502, 503)
def delete_account(body: dict[str, Any]) -> Any:
    """Delete the account: cancels the subscription at Stripe, signs out every device and
    erases personal data (billing records finance must keep stay, anonymous)."""
    account_service().delete(current_user, body["password"])
    db.session.commit()

    @after_this_request
    def drop_cookie(response: Response) -> Response:
        clear_session_cookie(response)
        return response

    return {"status": "deleted", "message": "Your account was deleted."}


@blp.route("/account/export", methods=["GET"])
@login_required
@blp.response(200, ExportSchema)
@api_errors(blp, 401)
def export_account() -> Any:
    """Everything the service holds about the reader, as JSON (a download)."""
    data = account_service().export(current_user)
    db.session.commit()
    return data, 200, {"Content-Disposition": 'attachment; filename="my-account.json"'}


@blp.route("/email-verifications", methods=["POST"])
@blp.arguments(TokenSchema)
@blp.response(200, AccountSchema)
@api_errors(blp, 400, 403, 413, 422)
def verify_email(body: dict[str, Any]) -> dict[str, Any]:
    """Confirm an address with the token from the verification link."""
    account = account_service().verify_email(body["token"])
    db.session.commit()
    return billing().describe_account(account)


@blp.route("/password-resets", methods=["POST"])
@ratelimits.per_address("RESET_LIMIT_PER_ADDRESS", "reset-address")
@ratelimits.per_account("RESET_LIMIT_PER_ACCOUNT", "reset-account")
@blp.arguments(ResetRequestSchema)
@blp.response(202, AcceptedSchema)
@api_errors(blp, 400, 403, 413, 422, 429)
def request_reset(body: dict[str, Any]) -> dict[str, str]:
    """Email a reset link. The same 202 whether or not the address has an account."""
    account_service().request_reset(body["email"])
    db.session.commit()
    return {
        "status": "accepted",
        "message": "If the address has an account, a reset link is on its way.",
    }


@blp.route("/password-resets/confirm", methods=["POST"])
@blp.arguments(ResetConfirmSchema)
@blp.response(200, AcceptedSchema)
@api_errors(blp, 400, 403, 413, 422)
def confirm_reset(body: dict[str, Any]) -> dict[str, str]:
    """Set a new password from the reset link; signs out every device."""
    account_service().reset_password(body["token"], body["password"])
    db.session.commit()
    return {"status": "password_changed", "message": "Password changed. Sign in again."}
