"""Request and response schemas of the device-sessions API."""

from __future__ import annotations

import marshmallow as ma


class LoginSchema(ma.Schema):
    email = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=320))
    password = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=1024))
    device_name = ma.fields.String(validate=ma.validate.Length(min=1, max=100))
    replace_session_id = ma.fields.String(validate=ma.validate.Length(min=1, max=64))


class DeviceSessionSchema(ma.Schema):
    id = ma.fields.String(required=True)
    device_name = ma.fields.String(required=True)
    created_at = ma.fields.String(required=True)
    last_seen_at = ma.fields.String(required=True)
    current = ma.fields.Boolean(required=True)


class NewSessionSchema(DeviceSessionSchema):
    token = ma.fields.String(
        required=True,
        metadata={
            "description": "The session value, for clients without cookies: send it as "
            "`Authorization: Bearer <token>`. Browsers get it as an HttpOnly cookie."
        },
    )


class SessionListSchema(ma.Schema):
    sessions = ma.fields.List(ma.fields.Nested(DeviceSessionSchema), required=True)
    limit = ma.fields.Integer(required=True)


class DeviceLimitSchema(ma.Schema):
    error = ma.fields.Dict(required=True)
    devices = ma.fields.List(ma.fields.Nested(DeviceSessionSchema), required=True)
    limit = ma.fields.Integer(required=True)


class SignedOutSchema(ma.Schema):
    signed_out = ma.fields.Integer(
        required=True, metadata={"description": "How many other devices were signed out"}
    )
