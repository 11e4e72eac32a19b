"""Browser entry points for billing: plans compared, a plan change previewed, subscribe, the
billing portal (also deep-linked to the card page), and the return from Checkout."""

from __future__ import annotations

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
from werkzeug.wrappers import Response

from paywall.accounts.pages import safe_next
from paywall.billing.services import billing_service
from paywall.errors import PaywallError
from paywall.extensions import db

bp = Blueprint("billing_pages", __name__, template_folder="../templates")


def _absolute(target: str) -> str:
    """Stripe needs absolute return URLs; ``safe_next`` may give a local path."""
    return (
        current_app.config["PUBLIC_URL"].rstrip("/") + target if target.startswith("/") else target
    )


@bp.get("/plans")
def plans() -> str | tuple[str, int]:
    # Where Checkout's return and cancel lead: the page the reader came from, carried in the
    # subscribe forms (a GET stores nothing).
    after_checkout = safe_next(request.args["next"]) if request.args.get("next") else None
    reader = current_user if current_user.is_authenticated else None
    try:
        offers = billing_service().compare_plans_or_unavailable(reader)
    except PaywallError as exc:
        return render_template(
            "plans.html", plans=[], error=exc.message, after_checkout=after_checkout
        ), exc.status
    db.session.commit()
    subscribed = any(p["current"] for p in offers)
    return render_template(
        "plans.html",
        plans=offers,
        subscribed=subscribed,
        error=None,
        after_checkout=after_checkout,
    )


@bp.get("/plans/change")
@login_required
def change_plan() -> str | Response | tuple[str, int]:
    lookup_key = request.args.get("plan", "")
    try:
        preview = billing_service().describe_change(current_user, lookup_key)
    except PaywallError as exc:
        flash(exc.message)
        return redirect(url_for("billing_pages.plans"))
    db.session.commit()
    return render_template("change_plan.html", preview=preview)


@bp.post("/plans/change")
@login_required
def confirm_change() -> Response:
    try:
        url = billing_service().portal_for_change(
            current_user, request.form.get("plan", ""), _absolute(url_for("pages.home"))
        )
    except PaywallError as exc:
        flash(exc.message)
        return redirect(url_for("billing_pages.plans"))
    db.session.commit()
    return redirect(url, code=303)


@bp.post("/billing/subscribe")
@login_required
def subscribe() -> Response:
    return_to = safe_next(request.form["next"]) if request.form.get("next") else None
    # The success return (``checkout_return``) sends the reader on to the same page.
    session.pop("after_checkout", None)
    if return_to:
        session["after_checkout"] = return_to
    try:
        url = billing_service().checkout(
            current_user, request.form.get("plan", ""), return_to=return_to
        )
    except PaywallError as exc:
        flash(exc.message)
        return redirect(url_for("pages.home"))
    db.session.commit()
    return redirect(url, code=303)


@bp.post("/billing/manage")
@login_required
def manage() -> Response:
    """The portal, whose Return link leads back to the page the reader came from."""
    back = _absolute(safe_next(request.form.get("next") or url_for("pages.home")))
    try:
        url = billing_service().portal(current_user, back)
    except PaywallError as exc:
        flash(exc.message)
        return redirect(url_for("pages.home"))
    db.session.commit()
    return redirect(url, code=303)


@bp.get("/billing/payment-method")
@login_required
def payment_method() -> str:
    """Where the failed-payment email points (a portal link would expire in the inbox)."""
    return render_template(
        "payment_method.html", account=billing_service().describe_account(current_user)
    )


@bp.post("/billing/payment-method")
@login_required
def update_payment_method() -> Response:
    try:
        url = billing_service().portal_for_payment_method(
            current_user, _absolute(url_for("pages.home"))
        )
    except PaywallError as exc:
        flash(exc.message)
        return redirect(url_for("pages.home"))
    db.session.commit()
    return redirect(url, code=303)


@bp.get("/billing/return")
@login_required
def checkout_return() -> Response:
    """Back from Checkout. The redirect itself grants nothing: we ask Stripe about the session
    (webhooks would get there too) and then send the reader on to the news site."""
    session_id = request.args.get("session_id", "")
    try:
        subscription = billing_service().complete_checkout(current_user, session_id)
        db.session.commit()
    except PaywallError as exc:
        db.session.rollback()
        flash(exc.message)
        return redirect(url_for("pages.home"))
    if subscription is None:
        flash("Your payment is not complete yet.")
        return redirect(url_for("pages.home"))
    target = session.pop("after_checkout", None) or current_app.config["SITE_URL"] + "/"
    return redirect(target, code=303)
