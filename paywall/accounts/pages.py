"""Server-rendered pages for a browser: sign up, log in, forgot/reset password, verify, devices.

Forms carry Flask-WTF CSRF tokens; nothing changes state on GET.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required
from marshmallow import ValidationError
from werkzeug.wrappers import Response

from paywall import ratelimits
from paywall.accounts.links import RESET_PASSWORD, VERIFY_EMAIL
from paywall.accounts.schemas import (
    EmailChangeSchema,
    PasswordChangeSchema,
    ResetConfirmSchema,
    SignupSchema,
)
from paywall.accounts.services import InvalidCredentials, account_service
from paywall.devices.auth import current_device
from paywall.devices.services import DeviceLimitReached, describe, device_service
from paywall.devices.views import clear_session_cookie, log_in, set_session_cookie
from paywall.errors import PaywallError
from paywall.extensions import db
from paywall.ports import billing

bp = Blueprint("pages", __name__, template_folder="../templates")


def safe_next(target: str | None) -> str:
    """Where to go after login: a local path, a page of this service or of the news site;
    never elsewhere (no open redirect)."""
    if not target or any(ord(c) < 0x20 or ord(c) == 0x7F for c in target) or "\\" in target:
        # Browsers drop tabs and newlines from URLs ("/\t/evil" is "//evil"); CR/LF would
        # also break the Location header after the login committed.
        return url_for("pages.home")
    parts = urlsplit(target)
    if not parts.scheme and not parts.netloc and target.startswith("/"):
        # "//host" and "////host" are other sites to a browser, not local paths.
        return target if not target.startswith("//") else url_for("pages.home")
    for allowed in (current_app.config["SITE_URL"], current_app.config["PUBLIC_URL"]):
        base = urlsplit(allowed)
        if (parts.scheme, parts.netloc) == (base.scheme, base.netloc):
            return target
    return url_for("pages.home")


def _describe(account: Any) -> dict[str, Any]:
    return billing().describe_account(account)


@bp.get("/")
def home() -> str:
    # Where to send the reader after Checkout (the article they were reading): carried in the
    # subscribe forms, never stored by this GET (issue 11: a GET must not change state).
    after_checkout = safe_next(request.args["next"]) if request.args.get("next") else None
    if not current_user.is_authenticated:
        return render_template("home.html", account=None)
    account = _describe(current_user)
    invoices, invoices_error = None, None
    if account.get("subscription"):
        try:
            invoices = billing().list_invoices(current_user)
        except PaywallError:
            invoices, invoices_error = [], "Your invoices cannot be shown right now. Try later."
    return render_template(
        "home.html",
        account=account,
        site_url=current_app.config["SITE_URL"],
        plans=billing().list_plans(),
        invoices=invoices,
        invoices_error=invoices_error,
        after_checkout=after_checkout,
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
            account_service().sign_up(
                body["email"], body["password"], next_url=_kept_next(request.args.get("next"))
            )
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
        reason = SIGNED_OUT_REASONS.get(request.args.get("reason", ""))
        return render_template("login.html", next=target, email="", devices=None, reason=reason)
    form = request.form
    body = {
        "email": form.get("email", ""),
        "password": form.get("password", ""),
        "device_name": form.get("device_name") or None,
        "replace_session_id": form.get("replace_session_id") or None,
    }
    try:
        # Where to go is settled before anything is written: a bad ``next`` cannot fail
        # the request after the session was committed.
        destination = safe_next(target)
        _device, raw = log_in(body)
    except InvalidCredentials as exc:
        return render_template(
            "login.html",
            next=target,
            email=body["email"],
            devices=None,
            error=exc.message,
            errors={"password": [exc.message]},
        ), 401
    except ratelimits.RateLimited:
        raise  # the lock-out page, with Retry-After
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
    response = redirect(destination)
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
    try:
        account_service().check_link(token, RESET_PASSWORD)
    except PaywallError as exc:
        return _bad_link(exc, url_for("pages.forgot_password"), "Ask for a new link")
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
    target = _kept_next(request.values.get("next"))
    try:
        account_service().check_link(token, VERIFY_EMAIL)
    except PaywallError as exc:
        if current_user.is_authenticated and exc.code != "token_used":
            return _bad_link(exc, url_for("pages.home"), "Send a new link from your account")
        return _bad_link(exc, url_for("pages.login"), "Log in")
    if request.method == "GET":
        return render_template("verify.html", token=token, next=target)
    try:
        account_service().verify_email(token)
    except PaywallError as exc:
        return _bad_link(exc, url_for("pages.login"), "Log in")
    db.session.commit()
    return render_template(
        "message.html",
        title="Address confirmed",
        message="Thank you: your email address is confirmed.",
        link=target or url_for("pages.home"),
        link_text="Back to where you were" if target else "Your account",
    )


def _kept_next(target: str | None) -> str | None:
    """A return path worth keeping (validated), or None."""
    if not target:
        return None
    checked = safe_next(target)
    return checked if checked != url_for("pages.home") or target == checked else None


def _bad_link(exc: PaywallError, link: str, link_text: str) -> tuple[str, int]:
    """A used, expired or garbage link says so before asking for anything."""
    titles = {
        "token_expired": "This link has expired",
        "token_used": "This link was already used",
    }
    return render_template(
        "message.html",
        title=titles.get(exc.code, "This link is not valid"),
        message=exc.message
        + (" Links work once and for a limited time." if exc.code != "token_used" else ""),
        link=link,
        link_text=link_text,
    ), 400


SIGNED_OUT_REASONS = {
    "session_evicted": "You were signed out on this device because another device signed in "
    "at your account's device limit.",
    "evicted": "You were signed out on this device because another device signed in "
    "at your account's device limit.",
    "cap_lowered": "You were signed out on this device because your plan now allows fewer "
    "devices.",
    "revoked": "You were signed out on this device from another device.",
    "password_changed": "You were signed out on this device because your password was changed.",
    "expired": "Your session on this device expired. Log in again.",
    "account_deleted": "This account was deleted.",
    "session_reused": "You were signed out because this sign-in was copied and used on another "
    "device. Log in again, and change your password if that was not you.",
}


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


@bp.post("/devices/sign-out-others")
@login_required
def sign_out_others() -> Response:
    ended = device_service().sign_out_others(current_user.id, current_device().id)
    db.session.commit()
    flash(f"Signed out {ended} other device{'s' if ended != 1 else ''}.")
    return redirect(url_for("pages.devices"))


PASSWORD_LABELS = {"current_password": "Current password", "new_password": "New password"}
EMAIL_LABELS = {"new_email": "New email address", "password": "Password"}


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password() -> str | tuple[str, int] | Response:
    errors: dict[str, Any] = {}
    if request.method == "POST":
        try:
            body = PasswordChangeSchema().load(
                {
                    "current_password": request.form.get("current_password", ""),
                    "new_password": request.form.get("new_password", ""),
                }
            )
            ended = account_service().change_password(
                current_user,
                body["current_password"],
                body["new_password"],
                keep_session_id=current_device().id,
            )
        except ValidationError as exc:
            errors = exc.messages_dict
        except PaywallError as exc:
            errors = exc.extra.get("fields") or {"current_password": [exc.message]}
        else:
            db.session.commit()
            flash(
                f"Your password was changed. {ended} other device"
                f"{'s were' if ended != 1 else ' was'} signed out."
            )
            return redirect(url_for("pages.home"))
        return render_template("password.html", errors=errors, labels=PASSWORD_LABELS), 422
    return render_template("password.html", errors=errors, labels=PASSWORD_LABELS)


@bp.route("/account/email", methods=["GET", "POST"])
@login_required
def change_email() -> str | tuple[str, int]:
    errors: dict[str, Any] = {}
    new_email = request.form.get("new_email", "")
    if request.method == "POST":
        try:
            body = EmailChangeSchema().load(
                {"new_email": new_email, "password": request.form.get("password", "")}
            )
            account_service().request_email_change(
                current_user, body["new_email"], body["password"]
            )
        except ValidationError as exc:
            errors = exc.messages_dict
        except PaywallError as exc:
            errors = exc.extra.get("fields") or {"new_email": [exc.message]}
        else:
            db.session.commit()
            return render_template(
                "message.html",
                title="Check the new inbox",
                message=f"We sent a link to {body['new_email']}. Your address changes when you "
                "open it; until then you keep signing in with the current one.",
                link=url_for("pages.home"),
                link_text="Your account",
            )
        return render_template(
            "email.html", errors=errors, labels=EMAIL_LABELS, new_email=new_email
        ), 422
    return render_template("email.html", errors=errors, labels=EMAIL_LABELS, new_email="")


@bp.route("/confirm-email", methods=["GET", "POST"])
def confirm_email() -> str | tuple[str, int]:
    token = request.values.get("token", "")
    service = account_service()
    try:
        _account, new_email = service.check_email_change(token)
        if request.method == "POST":
            service.confirm_email_change(token)
    except PaywallError as exc:
        return _bad_link(exc, url_for("pages.home"), "Your account")
    if request.method == "GET":
        return render_template("confirm_email.html", token=token, new_email=new_email)
    db.session.commit()
    return render_template(
        "message.html",
        title="Address changed",
        message=f"You now sign in with {new_email}.",
        link=url_for("pages.home"),
        link_text="Your account",
    )


@bp.get("/account/export")
@login_required
def export_data() -> Response:
    data = account_service().export(current_user)
    db.session.commit()
    response = current_app.response_class(
        json.dumps(data, indent=2, ensure_ascii=False), mimetype="application/json"
    )
    response.headers["Content-Disposition"] = 'attachment; filename="my-account.json"'
    return response


@bp.route("/account/delete", methods=["GET", "POST"])
@login_required
def delete_account() -> str | tuple[str, int] | Response:
    errors: dict[str, Any] = {}
    if request.method == "POST":
        try:
            account_service().delete(current_user, request.form.get("password", ""))
        except PaywallError as exc:
            db.session.rollback()
            errors = exc.extra.get("fields") or {"password": [exc.message]}
            return render_template("delete.html", errors=errors), exc.status
        db.session.commit()
        response = current_app.make_response(
            render_template(
                "message.html",
                title="Your account was deleted",
                message="Your subscription is canceled, every device is signed out and your "
                "personal data is erased. Thank you for reading.",
                link=current_app.config["SITE_URL"] + "/",
                link_text="Back to the news",
            )
        )
        clear_session_cookie(response)
        return response
    return render_template("delete.html", errors=errors)
