"""The unsubscribe page that story alert emails link to (RFC 8058 one-click).

GET shows a button and changes nothing (link scanners open links); POST turns alerts off. Mail
providers POST ``List-Unsubscribe=One-Click`` without cookies or a form token: the signed token
in the URL is the authority, so the POST is exempt from CSRF.
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from paywall.errors import PaywallError
from paywall.extensions import db
from paywall.notifications.services import notification_service

bp = Blueprint("notification_pages", __name__, template_folder="templates")


@bp.route("/notifications/unsubscribe", methods=["GET", "POST"])
def unsubscribe() -> Response | str:
    token = request.args.get("token", "")
    if request.method == "GET":
        return render_template("unsubscribe.html", token=token)
    if not notification_service().unsubscribe_email(token):
        return Response(
            render_template(
                "message.html",
                title="Link not valid",
                message="This unsubscribe link is not valid. Turn alerts off on your account page.",
            ),
            status=400,
        )
    db.session.commit()
    return render_template(
        "message.html",
        title="Unsubscribed",
        message="You will get no more story alert emails. Push notifications are unchanged.",
    )


@bp.route("/account/notifications", methods=["GET", "POST"])
@login_required
def preferences() -> Response | str | tuple[str, int]:
    """The reader's notification preferences as a form (the same rules as the API)."""
    service = notification_service()
    error = None
    if request.method == "POST":
        try:
            service.set_preferences(
                current_user,
                email_alerts=request.form.get("email_alerts") == "on",
                topics=request.form.getlist("topics"),
            )
        except PaywallError as exc:
            db.session.rollback()
            error = exc.message
        else:
            db.session.commit()
            flash("Your notification preferences are saved.")
            return redirect(url_for("notification_pages.preferences"))
    return render_template(
        "notification_preferences.html",
        prefs=service.preferences(current_user.id),
        topics=list(service.settings.topics),
        allowed=service.has_feature(current_user),
        error=error,
    ), (422 if error else 200)
