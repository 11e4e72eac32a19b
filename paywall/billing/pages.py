"""Browser entry points for billing: subscribe, manage billing, and the return from Checkout."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, request, session, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from paywall.billing.services import billing_service
from paywall.errors import PaywallError
from paywall.extensions import db

bp = Blueprint("billing_pages", __name__)


@bp.post("/billing/subscribe")
@login_required
def subscribe() -> Response:
    try:
        url = billing_service().checkout(
            current_user, request.form.get("plan", ""), return_to=session.get("after_checkout")
        )
    except PaywallError as exc:
        flash(exc.message)
        return redirect(url_for("pages.home"))
    db.session.commit()
    return redirect(url, code=303)


@bp.post("/billing/manage")
@login_required
def manage() -> Response:
    try:
        url = billing_service().portal(current_user, current_app.config["PUBLIC_URL"] + "/")
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
