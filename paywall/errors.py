"""Typed domain errors and the one JSON error shape: ``{"error": {"code", "message"}}``."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify, render_template, request
from flask_limiter.errors import RateLimitExceeded
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class PaywallError(Exception):
    """An error a client can act on: a stable ``code``, a message, an HTTP status."""

    code = "error"
    status = 400
    message = "The request could not be completed."

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        status: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.message = message or self.message
        self.code = code or self.code
        self.status = status or self.status
        self.extra = extra or {}
        super().__init__(self.message)


class NotFound(PaywallError):
    code, status, message = "not_found", 404, "Not found."


class Conflict(PaywallError):
    code, status = "conflict", 409


class Unauthorized(PaywallError):
    code, status, message = "unauthorized", 401, "Sign in first."


class Forbidden(PaywallError):
    code, status, message = "forbidden", 403, "Not allowed."


class UpstreamError(PaywallError):
    """Stripe (or another service we depend on) failed; safe to retry."""

    code, status, message = "payment_provider_unavailable", 503, "Stripe is unavailable."


HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


def error_response(
    code: str, message: str, status: int, extra: dict[str, Any] | None = None
) -> Response:
    """The service's one JSON error body."""
    body: dict[str, Any] = {"error": {"code": code, "message": message}}
    if extra:
        fields = extra.pop("fields", None)
        if fields is not None:
            body["error"]["fields"] = fields
        body.update(extra)
    response = jsonify(body)
    response.status_code = status
    return response


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(PaywallError)
    def handle_paywall_error(exc: PaywallError) -> Response:
        if not wants_json():
            return Response(render_template("error.html", message=exc.message), status=exc.status)
        return error_response(exc.code, exc.message, exc.status, dict(exc.extra))

    from paywall.ratelimits import RateLimited

    @app.errorhandler(RateLimited)
    def handle_throttled(exc: RateLimited) -> Response:
        if wants_json():
            response = error_response(exc.code, exc.message, 429)
        else:
            # Say how long, and offer the way out that is not rate-limited with it.
            response = Response(
                render_template("locked.html", minutes=max(1, -(-exc.retry_after // 60))),
                status=429,
            )
        response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.errorhandler(RateLimitExceeded)
    def handle_rate_limited(exc: RateLimitExceeded) -> Response:
        from paywall import metrics

        metrics.RATE_LIMITED.labels(request.endpoint or "flask_limiter").inc()
        response = error_response(
            "rate_limited", "Too many attempts. Wait a little and try again.", 429
        )
        wait = _retry_after(exc)
        if not wants_json():
            # Say how long, and offer the way out that is not rate-limited with it.
            response = Response(
                render_template("locked.html", minutes=max(1, -(-wait // 60))), status=429
            )
        response.headers["Retry-After"] = str(wait)
        return response

    @app.errorhandler(HTTPException)
    def handle_http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        if not wants_json():
            return Response(render_template("error.html", message=exc.description), status=status)
        extra: dict[str, Any] = {}
        data = getattr(exc, "data", None)  # webargs / flask-smorest validation details
        message = exc.description or exc.name
        if status == 422 and isinstance(data, dict) and "messages" in data:
            messages = data["messages"]
            fields = messages.get("json", messages) if isinstance(messages, dict) else messages
            extra["fields"] = fields
            message = "Some fields are invalid."
        elif status == 400 and isinstance(data, dict) and "messages" in data:
            message = "The request body is not valid JSON."
        return error_response(HTTP_CODES.get(status, "error"), str(message), status, extra)

    @app.errorhandler(OperationalError)
    def handle_database_error(exc: OperationalError) -> Response:
        from paywall.database import is_timeout

        if not is_timeout(exc):
            return handle_unexpected(exc)
        log.warning("database statement or lock timeout", extra={"error": str(exc.orig)})
        message = "The service is busy. Try again in a moment."
        response = (
            error_response("database_busy", message, 503)
            if wants_json()
            else Response(render_template("error.html", message=message), status=503)
        )
        response.headers["Retry-After"] = "2"
        return response

    @app.errorhandler(Exception)
    def handle_unexpected(exc: Exception) -> Response:
        log.exception("unhandled error")
        if not wants_json():
            return Response(
                render_template("error.html", message="Something went wrong on our side."),
                status=500,
            )
        return error_response("internal_error", "Something went wrong on our side.", 500)


def _retry_after(exc: RateLimitExceeded) -> int:
    import time

    from paywall.extensions import limiter

    try:
        window = limiter.current_limit
        if window is not None:
            return max(1, int(window.reset_at - time.time()))
    except Exception:  # noqa: BLE001 - the header is best effort; the 429 is not
        log.debug("could not compute Retry-After", exc_info=True)
    return max(1, int(exc.limit.limit.get_expiry()))
