"""The meter API: the site asks, per metered article a signed-in reader opens, whether it may
send the full text."""

from __future__ import annotations

from typing import Any

from flask_login import current_user
from flask_smorest import Blueprint

from paywall.devices.auth import login_required
from paywall.extensions import db
from paywall.meter.schemas import MeterAnswerSchema, MeterReadSchema
from paywall.meter.services import meter_service
from paywall.schemas import api_errors

blp = Blueprint("meter", __name__, url_prefix="/api/v1/meter", description="Metered allowance")


@blp.route("/reads", methods=["POST"])
@login_required
@blp.arguments(MeterReadSchema)
@blp.response(200, MeterAnswerSchema)
@api_errors(blp, 400, 401, 403, 413, 422)
def record_read(body: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
    """Count a read of a metered article (the same article twice in a month counts once)."""
    answer = meter_service().read(current_user, body["article"])
    db.session.commit()
    return (
        {
            "allowed": answer.allowed,
            "remaining": answer.remaining,
            "limit": answer.limit,
            "resets_at": answer.resets_at.isoformat(),
            "metered": answer.metered,
        },
        200,
        {"Cache-Control": "no-store"},
    )
