"""The unsubscribe page that story alert emails link to (RFC 8058 one-click).

GET shows a button and changes nothing (link scanners open links); POST turns alerts off. Mail
providers POST ``List-Unsubscribe=One-Click`` without cookies or a form token: the signed token
in the URL is the authority, so the POST is exempt from CSRF.
"""

from __future__ import annotations

from flask import Blueprint, render_template, request
from werkzeug.wrappers import Response

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
