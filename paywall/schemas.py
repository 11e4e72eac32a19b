"""Schemas shared across domains: the error body, for the OpenAPI document."""

from __future__ import annotations

import marshmallow as ma


class ErrorDetailSchema(ma.Schema):
    code = ma.fields.String(required=True)
    message = ma.fields.String(required=True)
    fields = ma.fields.Dict(  # type: ignore[assignment]
        metadata={"description": "Field errors, on 422"}
    )


class ApiErrorSchema(ma.Schema):
    """The one error body of the API."""

    error = ma.fields.Nested(ErrorDetailSchema, required=True)
