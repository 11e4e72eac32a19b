"""Request and response schemas of the accounts API (they also generate its OpenAPI)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from paywall.accounts.passwords import (
    MAX_LENGTH,
    MIN_LENGTH,
    PasswordPolicyError,
    check_policy,
    normalise_email,
)


class EmailField(ma.fields.String):
    """An email address, syntax-checked and normalised (lower case, IDNA)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        raw = super()._deserialize(value, attr, data, **kwargs)
        if len(raw) > 320:
            raise ma.ValidationError("Email address is too long.")
        try:
            return normalise_email(raw)
        except ValueError as exc:
            raise ma.ValidationError("Enter a valid email address.") from exc


class NewPasswordField(ma.fields.String):
    """A password that meets the policy (length, not common)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        raw = super()._deserialize(value, attr, data, **kwargs)
        try:
            check_policy(raw)
        except PasswordPolicyError as exc:
            raise ma.ValidationError(str(exc)) from exc
        return raw


PASSWORD_DOC = {"minLength": MIN_LENGTH, "maxLength": MAX_LENGTH}


class SignupSchema(ma.Schema):
    email = EmailField(required=True, metadata={"format": "email"})
    password = NewPasswordField(required=True, metadata=PASSWORD_DOC)

    @ma.validates_schema
    def password_is_not_email(self, data: dict[str, Any], **_: Any) -> None:
        if data["password"].lower() == data["email"]:
            raise ma.ValidationError("Do not use your email address as your password.", "password")


class AcceptedSchema(ma.Schema):
    status = ma.fields.String(required=True, metadata={"example": "accepted"})
    message = ma.fields.String(required=True)


class TokenSchema(ma.Schema):
    token = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=2000))


class ResetRequestSchema(ma.Schema):
    email = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=320))


class ResetConfirmSchema(ma.Schema):
    token = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=2000))
    password = NewPasswordField(required=True, metadata=PASSWORD_DOC)


class PaymentMethodSchema(ma.Schema):
    type = ma.fields.String(allow_none=True, metadata={"example": "card"})
    brand = ma.fields.String(allow_none=True, metadata={"example": "visa"})
    last4 = ma.fields.String(allow_none=True, metadata={"example": "4242"})
    exp_month = ma.fields.Integer(allow_none=True)
    exp_year = ma.fields.Integer(allow_none=True)


class SubscriptionSchema(ma.Schema):
    plan = ma.fields.String(allow_none=True)
    plan_name = ma.fields.String(allow_none=True)
    status = ma.fields.String(required=True)
    current_period_end = ma.fields.String(allow_none=True)
    cancel_at_period_end = ma.fields.Boolean()
    access_until = ma.fields.String(allow_none=True)
    price_text = ma.fields.String(allow_none=True, metadata={"example": "$9 / month"})
    amount = ma.fields.Integer(allow_none=True)
    currency = ma.fields.String(allow_none=True)
    interval = ma.fields.String(allow_none=True)
    renews_at = ma.fields.String(allow_none=True, metadata={"description": "Next renewal"})
    ends_at = ma.fields.String(
        allow_none=True, metadata={"description": "Canceled: access ends then"}
    )
    ended_at = ma.fields.String(allow_none=True, metadata={"description": "When it ended"})
    payment_method = ma.fields.Nested(PaymentMethodSchema, allow_none=True)


class EntitlementsSchema(ma.Schema):
    plan = ma.fields.String(allow_none=True)
    features = ma.fields.List(ma.fields.String(), required=True)
    max_devices = ma.fields.Integer(required=True)
    reason = ma.fields.String()


class GrantedSchema(ma.Schema):
    features = ma.fields.List(ma.fields.String(), required=True)
    features_text = ma.fields.List(ma.fields.String(), required=True)
    max_devices = ma.fields.Integer(allow_none=True)
    until = ma.fields.String(required=True, metadata={"description": "ISO 8601, UTC"})


class AccountSchema(ma.Schema):
    id = ma.fields.String(required=True)
    email = ma.fields.String(required=True)
    email_verified = ma.fields.Boolean(required=True)
    created_at = ma.fields.String(required=True)
    subscription = ma.fields.Nested(SubscriptionSchema, allow_none=True)
    entitlements = ma.fields.Nested(EntitlementsSchema)
    granted = ma.fields.Nested(
        GrantedSchema,
        allow_none=True,
        metadata={"description": "Access granted by hand (flask access grant), if active"},
    )


class PasswordChangeSchema(ma.Schema):
    current_password = ma.fields.String(
        required=True, validate=ma.validate.Length(min=1, max=MAX_LENGTH)
    )
    new_password = NewPasswordField(required=True, metadata=PASSWORD_DOC)


class PasswordChangedSchema(ma.Schema):
    signed_out_devices = ma.fields.Integer(required=True)


class EmailChangeSchema(ma.Schema):
    new_email = EmailField(required=True, metadata={"format": "email"})
    password = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=MAX_LENGTH))


class PasswordConfirmSchema(ma.Schema):
    password = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=MAX_LENGTH))


class DeletedSchema(ma.Schema):
    status = ma.fields.String(required=True, metadata={"example": "deleted"})
    message = ma.fields.String(required=True)


class ExportSchema(ma.Schema):
    class Meta:
        unknown = ma.INCLUDE

    account = ma.fields.Dict(required=True)
    devices = ma.fields.List(ma.fields.Dict())
    subscriptions = ma.fields.List(ma.fields.Dict())
    invoices = ma.fields.Raw()
    emails = ma.fields.List(ma.fields.Dict())
    billing_customer = ma.fields.String(allow_none=True)
