"""Server-rendered pages for a browser: sign up, log in, forgot/reset password, verify, devices.

Forms carry Flask-WTF CSRF tokens; nothing changes state on GET.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required
from marshmallow import ValidationError
from werkzeug.wrappers import Response

from paywall import ratelimits
from paywall.accounts.schemas import ResetConfirmSchema, SignupSchema
from paywall.accounts.services import InvalidCredentials, account_service
from paywall.devices.auth import current_device
from paywall.devices.services import DeviceLimitReached, describe, device_service
from paywall.devices.views import clear_session_cookie, log_in, set_session_cookie
from paywall.errors import PaywallError
from paywall.extensions import db

bp = Blueprint("pages", __name__, template_folder="../templates")


def safe_next(target: str | None) -> str:
    """Where to go after login: a local path, a page of this service or of the news site;
    never elsewhere (no open redirect)."""
    if not target:
        return url_for("pages.home")
    parts = urlsplit(target)
    if not parts.scheme and not parts.netloc and target.startswith("/") and "\\" not in target:
        return target
    for allowed in (current_app.config["SITE_URL"], current_app.config["PUBLIC_URL"]):
        base = urlsplit(allowed)
        if (parts.scheme, parts.netloc) == (base.scheme, base.netloc):
            return target
    return url_for("pages.home")


def _describe(account: Any) -> dict[str, Any]:
    return current_app.extensions["paywall.describe_account"](account)  # type: ignore[no-any-return]


@bp.get("/")
def home() -> str:
    if request.args.get("next"):
        # Where to send the reader after Checkout (the article they were reading).
        session["after_checkout"] = safe_next(request.args["next"])
    if not current_user.is_authenticated:
        return render_template("home.html", account=None)
    return render_template(
        "home.html",
        account=_describe(current_user),
        site_url=current_app.config["SITE_URL"],
        plans=current_app.extensions.get("paywall.list_plans", lambda: [])(),
    )


@bp.route("/signup", methods=["GET", "POST"])
@ratelimits.per_address("SIGNUP_LIMIT_PER_ADDRESS", "signup-address")
def signup() -> str | Response:
    errors: dict[str, Any] = {}
    if request.method == "POST":
        try:
            body = SignupSchema().load(
                {
                    "email": request.form.get("email", ""),
                    "password": request.form.get("password", ""),
                }
            )
        except ValidationError as exc:
            errors = exc.messages_dict
        else:
            account_service().sign_up(body["email"], body["password"])
            db.session.commit()
            return render_template(
                "message.html",
                title="Check your inbox",
                message="We sent a link to confirm your address. You can log in right away.",
                link=url_for("pages.login", next=request.args.get("next")),
                link_text="Log in",
            )
    return render_template(
        "signup.html",
        errors=errors,
        email=request.form.get("email", ""),
        next=request.args.get("next"),
    )


@bp.route("/login", methods=["GET", "POST"])
@ratelimits.per_address("LOGIN_LIMIT_PER_ADDRESS", "login-address")
def login() -> str | Response | tuple[str, int]:
    target = request.values.get("next")
    if request.method == "GET":
        reason = request.args.get("reason")
        return render_template("login.html", next=target, email="", devices=None, reason=reason)
    form = request.form
    body = {
        "email": form.get("email", ""),
        "password": form.get("password", ""),
        "device_name": form.get("device_name") or None,
        "replace_session_id": form.get("replace_session_id") or None,
    }
    try:
        _device, raw = log_in(body)
    except InvalidCredentials as exc:
        return render_template(
            "login.html", next=target, email=body["email"], devices=None, error=exc.message
        ), 401
    except DeviceLimitReached as exc:
        return render_template(
            "login.html",
            next=target,
            email=body["email"],
            devices=exc.extra["devices"],
            limit=exc.extra["limit"],
            error=exc.message,
        ), 409
    except PaywallError as exc:
        return render_template(
            "login.html", next=target, email=body["email"], devices=None, error=exc.message
        ), exc.status
    response = redirect(safe_next(target))
    set_session_cookie(response, raw)
    return response


@bp.post("/logout")
@login_required
def logout() -> Response:
    current = current_device()
    device_service().sign_out(current_user.id, current.id, current_id=current.id)
    db.session.commit()
    response = redirect(safe_next(request.form.get("next")))
    clear_session_cookie(response)
    return response


@bp.route("/forgot-password", methods=["GET", "POST"])
@ratelimits.per_address("RESET_LIMIT_PER_ADDRESS", "reset-address")
@ratelimits.per_account("RESET_LIMIT_PER_ACCOUNT", "reset-account")
def forgot_password() -> str:
    if request.method == "POST":
        account_service().request_reset(request.form.get("email", ""))
        db.session.commit()
        return render_template(
            "message.html",
            title="Check your inbox",
            message="If the address has an account, a reset link is on its way.",
        )
    return render_template("forgot.html")


@bp.route("/reset-password", methods=["GET", "POST"])
def reset_password() -> str | tuple[str, int]:
    token = request.values.get("token", "")
    if request.method == "GET":
        return render_template("reset.html", token=token, errors={})
    try:
        body = ResetConfirmSchema().load(
            {"token": token, "password": request.form.get("password", "")}
        )
        account_service().reset_password(body["token"], body["password"])
    except ValidationError as exc:
        return render_template("reset.html", token=token, errors=exc.messages_dict), 422
    except PaywallError as exc:
        return render_template(
            "message.html",
            title="Link not valid",
            message=exc.message,
            link=url_for("pages.forgot_password"),
            link_text="Ask for a new link",
        ), exc.status
    db.session.commit()
    return render_template(
        "message.html",
        title="Password changed",
        message="Your password was changed and every device signed out.",
        link=url_for("pages.login"),
        link_text="Log in",
    )


@bp.route("/verify-email", methods=["GET", "POST"])
def verify_email() -> str | tuple[str, int]:
    token = request.values.get("token", "")
    if request.method == "GET":
        return render_template("verify.html", token=token)
    try:
        account_service().verify_email(token)
    except PaywallError as exc:
        return render_template("message.html", title="Link not valid", message=exc.message), 400
    db.session.commit()
    return render_template(
        "message.html",
        title="Address confirmed",
        message="Thank you: your email address is confirmed.",
        link=url_for("pages.home"),
        link_text="Your account",
    )


@bp.post("/account/verification-email")
@login_required
def resend_verification() -> Response:
    if not current_user.email_verified:
        account_service().send_verification(current_user)
        db.session.commit()
    flash("A new confirmation link is on its way.")
    return redirect(url_for("pages.home"))


@bp.get("/devices")
@login_required
def devices() -> str:
    service = device_service()
    current = current_device()
    sessions = [
        describe(s, current_id=current.id) for s in service.active_sessions(current_user.id)
    ]
    return render_template("devices.html", sessions=sessions, limit=service.cap_for(current_user))


@bp.post("/devices/<string:session_id>/sign-out")
@login_required
def sign_out_device(session_id: str) -> Response:
    current = current_device()
    device_service().sign_out(current_user.id, session_id, current_id=current.id)
    db.session.commit()
    if session_id == current.id:
        response = redirect(url_for("pages.login"))
        clear_session_cookie(response)
        return response
    flash("That device was signed out.")
    return redirect(url_for("pages.devices"))
