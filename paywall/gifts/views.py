"""The gift-link API: a subscriber makes, lists and revokes links; the site checks a link a
reader opened (no account needed: the signed link is the permission)."""

from __future__ import annotations

from typing import Any

from flask_login import current_user
from flask_smorest import Blueprint

from paywall.clock import utcnow
from paywall.devices.auth import login_required
from paywall.extensions import db
from paywall.gifts.schemas import (
    GiftListSchema,
    GivenSchema,
    GiveSchema,
    OpenedGiftSchema,
    OpenGiftSchema,
)
from paywall.gifts.services import gift_service
from paywall.meter.services import next_month_start
from paywall.schemas import api_errors

blp = Blueprint("gifts", __name__, url_prefix="/api/v1/gifts", description="Gift links")

NO_STORE = {"Cache-Control": "no-store"}


@blp.route("", methods=["POST"])
@login_required
@blp.arguments(GiveSchema)
@blp.response(201, GivenSchema)
@api_errors(blp, 401, 403, 413, 422)
def give(body: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
    """Make a gift link for one article (readers with premium_content; 403 premium_required,
    or gift_limit_reached past PAYWALL_GIFTS_PER_MONTH this month)."""
    given = gift_service().give(current_user, body["article"])
    db.session.commit()
    return (
        {
            "id": given.gift.id,
            "url": given.url,
            "expires_at": given.gift.expires_at.isoformat(),
            "remaining": given.remaining,
        },
        201,
        NO_STORE,
    )


@blp.route("", methods=["GET"])
@login_required
@blp.response(200, GiftListSchema)
@api_errors(blp, 401)
def listing() -> tuple[dict[str, Any], int, dict[str, str]]:
    """The reader's gift links, newest first, and how many are left this month."""
    gifts = gift_service()
    now = utcnow()
    return (
        {
            "gifts": gifts.listing(current_user, now),
            "remaining": gifts.remaining(current_user, now),
            "limit": gifts.settings.per_month,
            "resets_at": next_month_start(now).isoformat(),
        },
        200,
        NO_STORE,
    )


@blp.route("/<gift_id>", methods=["DELETE"])
@login_required
@blp.response(204)
@api_errors(blp, 401, 403, 404)
def revoke(gift_id: str) -> None:
    """Withdraw one of the reader's gift links: it opens nothing from now on."""
    gift_service().revoke(current_user, gift_id)
    db.session.commit()


@blp.route("/open", methods=["POST"])
@blp.arguments(OpenGiftSchema)
@blp.response(200, OpenedGiftSchema)
@api_errors(blp, 403, 410, 413, 422)
def open_gift(body: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
    """Check a gift link opened on an article (the site asks, server to server): 403
    gift_invalid (tampered) or gift_wrong_article; 410 gift_expired, gift_revoked, gift_used_up."""
    gift = gift_service().open(body["token"], body["article"], body["visitor"])
    db.session.commit()
    return {"article": gift.article, "expires_at": gift.expires_at.isoformat()}, 200, NO_STORE
