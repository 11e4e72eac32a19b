"""Stripe-shaped API errors.

Stripe answers every failure with ``{"error": {...}}`` and an HTTP status the SDK maps to its
typed exceptions: 400/404 -> ``InvalidRequestError`` (or ``IdempotencyError``), 401 ->
``AuthenticationError``, 402 -> ``CardError``, 5xx -> ``APIError``.
"""

from __future__ import annotations

from typing import Any


class StripeError(Exception):
    """An error the stand-in answers in Stripe's error shape."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        decline_code: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type
        self.code = code
        self.param = param
        self.decline_code = decline_code
        self.extra = extra or {}

    def to_dict(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code is not None:
            error["code"] = self.code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        if self.param is not None:
            error["param"] = self.param
        if self.decline_code is not None:
            error["decline_code"] = self.decline_code
        error.update(self.extra)
        return {"error": error}


def missing_param(name: str) -> StripeError:
    return StripeError(f"Missing required param: {name}.", code="parameter_missing", param=name)


def unknown_param(name: str) -> StripeError:
    return StripeError(f"Received unknown parameter: {name}", code="parameter_unknown", param=name)


def invalid(message: str, param: str | None = None, code: str | None = None) -> StripeError:
    return StripeError(message, code=code or "parameter_invalid", param=param)


def no_such(label: str, object_id: str, param: str | None = "id") -> StripeError:
    return StripeError(
        f"No such {label}: '{object_id}'", status=404, code="resource_missing", param=param
    )


def card_declined(
    message: str = "Your card was declined.",
    code: str = "card_declined",
    decline_code: str | None = "generic_decline",
    extra: dict[str, Any] | None = None,
) -> StripeError:
    return StripeError(
        message,
        status=402,
        type="card_error",
        code=code,
        decline_code=decline_code,
        extra=extra,
    )


def api_error(status: int = 500, message: str | None = None) -> StripeError:
    return StripeError(
        message or "An unknown error occurred (injected by the stand-in).",
        status=status,
        type="api_error",
    )
