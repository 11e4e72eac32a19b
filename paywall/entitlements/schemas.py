"""Schemas of the entitlements API."""

from __future__ import annotations

import marshmallow as ma


class GrantSchema(ma.Schema):
    plan = ma.fields.String(allow_none=True, required=True)
    features = ma.fields.List(ma.fields.String(), required=True)
    max_devices = ma.fields.Integer(required=True)


class IssuedTokenSchema(ma.Schema):
    token = ma.fields.String(required=True)
    expires_at = ma.fields.String(required=True)
    entitlements = ma.fields.Nested(GrantSchema, required=True)
    session_token = ma.fields.String(
        metadata={
            "description": "The rotated session value, when the session was rotated in "
            "this request (also in the Paywall-Session-Token header); use it from now on."
        }
    )


class VerifyRequestSchema(ma.Schema):
    token = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=4000))
    session = ma.fields.String(
        validate=ma.validate.Length(min=1, max=200),
        metadata={
            "description": "The device session value the token came with: if given, a "
            "token issued for another session is refused (reason wrong_session)."
        },
    )


class VerifyResultSchema(ma.Schema):
    valid = ma.fields.Boolean(required=True)
    claims = ma.fields.Dict()
    reason = ma.fields.String(metadata={"enum": ["expired", "invalid", "revoked", "wrong_session"]})


class CheckHeadersSchema(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE

    token = ma.fields.String(
        data_key="X-Paywall-Token",
        metadata={"description": "The entitlement token (or send Authorization: Bearer)."},
    )
    session = ma.fields.String(
        data_key="X-Paywall-Session",
        metadata={
            "description": "The device session value the token was issued for (or send "
            "the session cookie)."
        },
    )
    access_level = ma.fields.String(
        data_key="X-Paywall-Access-Level",
        load_default="premium",
        validate=ma.validate.OneOf(["free", "registered", "premium"]),
    )


class RevocationFeedArgsSchema(ma.Schema):
    after = ma.fields.String(
        load_default=None,
        validate=ma.validate.Length(max=20000),
        metadata={"description": "The cursor of the previous answer; empty: from the start."},
    )
    wait = ma.fields.Float(
        load_default=0,
        validate=ma.validate.Range(min=0, max=30),
        metadata={"description": "Seconds to wait for something new (a long poll), at most 30."},
    )


class RevocationSchema(ma.Schema):
    id = ma.fields.String(required=True)
    event = ma.fields.String(
        required=True, metadata={"enum": ["session.ended", "entitlement.changed"]}
    )
    sub = ma.fields.String(required=True)
    sid = ma.fields.String(metadata={"description": "Set when one device session ended."})
    not_before = ma.fields.Integer(
        required=True,
        metadata={
            "description": "Unix seconds: the account's tokens with an earlier iat are "
            "refused; a session's tokens are all refused."
        },
    )
    reason = ma.fields.String(required=True)


class RevocationFeedSchema(ma.Schema):
    revocations = ma.fields.List(ma.fields.Nested(RevocationSchema), required=True)
    cursor = ma.fields.String(required=True)
