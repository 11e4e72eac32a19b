"""Request and response schemas of the billing API."""

from __future__ import annotations

import marshmallow as ma


class PlanSchema(ma.Schema):
    lookup_key = ma.fields.String(required=True, metadata={"example": "premium_monthly"})
    name = ma.fields.String(required=True)
    amount = ma.fields.Integer(
        allow_none=True, metadata={"description": "In the currency's smallest unit (cents)"}
    )
    currency = ma.fields.String(required=True)
    interval = ma.fields.String(required=True)
    interval_count = ma.fields.Integer(required=True)
    entitlements = ma.fields.List(ma.fields.String(), required=True)
    max_devices = ma.fields.Integer(required=True)
    description = ma.fields.String(allow_none=True, metadata={"description": "The Product's"})
    price_text = ma.fields.String(required=True, metadata={"example": "$9 / month"})
    offer_text = ma.fields.String(required=True, metadata={"example": "$90 / year — 2 months free"})
    months_free = ma.fields.Integer(
        allow_none=True,
        metadata={"description": "Months saved against the product's shortest period"},
    )
    devices_text = ma.fields.String(required=True, metadata={"example": "Up to 5 devices at once"})
    features_text = ma.fields.List(
        ma.fields.String(),
        required=True,
        metadata={"description": "The entitlements in words (PAYWALL_FEATURE_LABELS)"},
    )
    current = ma.fields.Boolean(
        required=True, metadata={"description": "The signed-in reader's current plan"}
    )
    trial_period_days = ma.fields.Integer(
        allow_none=True,
        metadata={
            "description": "Free trial in days (the Price's metadata trial_period_days); "
            "null when the plan has none or the reader has subscribed before"
        },
    )
    trial_text = ma.fields.String(allow_none=True, metadata={"example": "14-day free trial"})
    promotion_codes = ma.fields.Boolean(
        metadata={
            "description": "Checkout accepts promotion codes (PAYWALL_CHECKOUT_PROMOTION_CODES)"
        }
    )


class PlanListSchema(ma.Schema):
    plans = ma.fields.List(ma.fields.Nested(PlanSchema), required=True)


class CheckoutRequestSchema(ma.Schema):
    plan = ma.fields.String(
        required=True,
        validate=ma.validate.Length(min=1, max=200),
        metadata={"example": "premium_monthly"},
    )


class PortalRequestSchema(ma.Schema):
    return_url = ma.fields.Url(
        metadata={
            "description": "Where the portal's Return link goes; "
            "must be on the service or the news site"
        }
    )


class UrlSchema(ma.Schema):
    url = ma.fields.String(required=True)


class WebhookResultSchema(ma.Schema):
    received = ma.fields.Boolean(required=True)
    outcome = ma.fields.String(required=True)


class PlanChangeQuerySchema(ma.Schema):
    plan = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=200))


class PlanChangeSchema(ma.Schema):
    plan = ma.fields.Nested(PlanSchema, required=True)
    signed_out = ma.fields.List(
        ma.fields.String(), required=True, metadata={"description": "Devices that will sign out"}
    )
    active_devices = ma.fields.Integer(required=True)
    new_limit = ma.fields.Integer(required=True)
    features_lost = ma.fields.List(ma.fields.String(), required=True)
    features_gained = ma.fields.List(ma.fields.String(), required=True)
    downgrade = ma.fields.Boolean(required=True)
    sentences = ma.fields.List(
        ma.fields.String(),
        required=True,
        metadata={"example": ["2 of your 5 devices will be signed out: Phone, Tablet."]},
    )


class InvoiceSchema(ma.Schema):
    id = ma.fields.String(required=True)
    number = ma.fields.String(allow_none=True)
    date = ma.fields.String(allow_none=True)
    amount = ma.fields.Integer(allow_none=True, metadata={"description": "Smallest unit"})
    amount_text = ma.fields.String(required=True, metadata={"example": "$9"})
    currency = ma.fields.String(allow_none=True)
    status = ma.fields.String(allow_none=True)
    hosted_invoice_url = ma.fields.String(allow_none=True)
    invoice_pdf = ma.fields.String(allow_none=True)


class InvoiceListSchema(ma.Schema):
    invoices = ma.fields.List(ma.fields.Nested(InvoiceSchema), required=True)
