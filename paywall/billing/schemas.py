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
