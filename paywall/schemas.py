"""Schemas shared across domains: the error body, for the OpenAPI document."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import marshmallow as ma

F = TypeVar("F", bound=Callable[..., Any])


class ErrorDetailSchema(ma.Schema):
    code = ma.fields.String(required=True)
    message = ma.fields.String(required=True)
    fields = ma.fields.Dict(  # type: ignore[assignment]
        metadata={"description": "Field errors, on 422"}
    )


class ApiErrorSchema(ma.Schema):
    """The one error body of the API."""

    error = ma.fields.Nested(ErrorDetailSchema, required=True)
    reason = ma.fields.String(
        metadata={"description": "On 401 session_*: why the session ended (e.g. signed_out)"}
    )


ERROR_DESCRIPTIONS = {
    400: "bad_request: the body is not valid JSON, or the request carries NUL bytes, lone "
    "surrogates, too deep JSON or huge numbers (refused before any view)",
    401: "unauthorized, or session_evicted / session_revoked / session_expired",
    403: "csrf_failed: a cookie-authenticated write from another site; or the operation's own "
    "refusal (premium_required, gift_limit_reached, gift_invalid, gift_wrong_article)",
    404: "not_found",
    409: "conflict",
    410: "gone: gift_expired, gift_revoked, gift_used_up",
    413: "payload_too_large",
    422: "validation_error, with field errors",
    429: "rate_limited, with Retry-After",
    500: "internal_error",
    502: "payment_provider_error: Stripe refused the request",
    503: "payment_provider_unavailable: Stripe could not be reached; safe to retry",
}

#: What any JSON-body write can answer besides its own statuses.
BODY_ERRORS = (400, 413, 422)


def api_errors(blp: Any, *statuses: int) -> Callable[[F], F]:
    """Document the error statuses an endpoint can answer, all with the one error body."""

    # paywall.hardening refuses malformed input on every request (400) before any view runs,
    # so every operation documents 400 whether or not it reads a body.
    every = sorted({400, *statuses})

    def decorate(view: F) -> F:
        for status in every:
            view = blp.alt_response(
                status, schema=ApiErrorSchema, description=ERROR_DESCRIPTIONS[status]
            )(view)
        return view

    return decorate
