from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from paywall.meter.schemas import MeterReadSchema


class GiveSchema(MeterReadSchema):
    """``{"article": "<id>"}``: the article's id (its slug on the site)."""


class GivenSchema(ma.Schema):
    id = ma.fields.String(required=True)
    url = ma.fields.String(required=True, metadata={"description": "the link to share"})
    expires_at = ma.fields.String(required=True, metadata={"description": "ISO 8601, UTC"})
    remaining = ma.fields.Integer(required=True, metadata={"description": "gifts left this month"})


class GiftSchema(ma.Schema):
    id = ma.fields.String(required=True)
    article = ma.fields.String(required=True)
    url = ma.fields.String(required=True)
    created_at = ma.fields.String(required=True)
    expires_at = ma.fields.String(required=True)
    revoked_at = ma.fields.String(allow_none=True)
    readers = ma.fields.Integer(required=True, metadata={"description": "browsers that opened it"})
    state = ma.fields.String(
        required=True, metadata={"description": "active, expired, revoked or used_up"}
    )


class GiftListSchema(ma.Schema):
    gifts = ma.fields.List(ma.fields.Nested(GiftSchema), required=True)
    remaining = ma.fields.Integer(required=True)
    limit = ma.fields.Integer(required=True)
    resets_at = ma.fields.String(required=True)


class OpenGiftSchema(MeterReadSchema):
    token = ma.fields.String(
        required=True,
        validate=validate.Length(min=1, max=500),
        metadata={"description": "the gift link's gift= value"},
    )
    visitor = ma.fields.String(
        required=True,
        validate=validate.Regexp(r"^[A-Za-z0-9_-]{16,64}$"),
        metadata={"description": "the site's random id for this browser"},
    )


class OpenedGiftSchema(ma.Schema):
    article = ma.fields.String(required=True)
    expires_at = ma.fields.String(required=True)
