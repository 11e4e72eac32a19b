from __future__ import annotations

import marshmallow as ma
from marshmallow import validate


class MeterReadSchema(ma.Schema):
    article = ma.fields.String(
        required=True,
        validate=validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$"),
        metadata={"description": "The article's id (its slug on the site)"},
    )


class MeterAnswerSchema(ma.Schema):
    allowed = ma.fields.Boolean(required=True)
    remaining = ma.fields.Integer(required=True)
    limit = ma.fields.Integer(required=True)
    resets_at = ma.fields.String(required=True, metadata={"description": "ISO 8601, UTC"})
    metered = ma.fields.Boolean(metadata={"description": "false for subscribers"})
