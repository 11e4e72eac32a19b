"""Liveness and readiness probes."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from paywall.extensions import db

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)


@bp.get("/healthz")
def healthz() -> Response:
    """The process is alive."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Each dependency and its state. 503 when the database does not answer, so a load balancer
    stops sending traffic; an unreachable rate-limit store degrades (limits are counted in the
    process meanwhile) but the service keeps answering."""
    checks = {"database": "ok"}
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        log.warning("readiness check failed", exc_info=True)
        db.session.rollback()
        checks["database"] = "unreachable"
    throttle = current_app.extensions.get("paywall.throttle")
    if throttle is not None:
        checks["rate_limit_store"] = throttle.check_store()
    if checks["database"] != "ok":
        status, code = "unavailable", 503
    elif any(state == "unreachable" for state in checks.values()):
        status, code = "degraded", 200
    else:
        status, code = "ok", 200
    # "database" at the top level too: what probes written for the first version read.
    return jsonify(status=status, database=checks["database"], checks=checks), code
