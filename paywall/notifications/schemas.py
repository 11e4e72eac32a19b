"""Request and response schemas of the notifications and stories API."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from paywall.notifications.push import valid_client_keys

TOPIC = ma.fields.String(validate=ma.validate.Length(min=1, max=50))


class PushKeysSchema(ma.Schema):
    p256dh = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=100))
    auth = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=40))

    @ma.validates_schema
    def check_keys(self, data: dict[str, Any], **_kwargs: Any) -> None:
        problem = valid_client_keys(data["p256dh"], data["auth"])
        if problem:
            field = "auth" if problem.startswith("auth") else "p256dh"
            raise ma.ValidationError(problem, field_name=field)


class PushSubscriptionRequestSchema(ma.Schema):
    """The browser's ``PushSubscription.toJSON()``, plus the topics this device follows."""

    class Meta:
        unknown = ma.EXCLUDE  # browsers may add members to toJSON()

    # Any string: whether the service may POST there is the allowed-origins rule's answer.
    endpoint = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=2000))
    expirationTime = ma.fields.Integer(allow_none=True, load_default=None)  # noqa: N815
    keys = ma.fields.Nested(PushKeysSchema, required=True)
    topics = ma.fields.List(TOPIC, validate=ma.validate.Length(max=50))


class PushSubscriptionSchema(ma.Schema):
    id = ma.fields.String(required=True)
    endpoint = ma.fields.String(required=True)
    topics = ma.fields.List(ma.fields.String(), required=True)
    created_at = ma.fields.String(required=True)


class PushSubscriptionListSchema(ma.Schema):
    subscriptions = ma.fields.List(ma.fields.Nested(PushSubscriptionSchema), required=True)


class VapidKeySchema(ma.Schema):
    public_key = ma.fields.String(
        required=True,
        metadata={"description": "base64url uncompressed P-256 point: applicationServerKey"},
    )


class TopicSchema(ma.Schema):
    id = ma.fields.String(required=True)
    name = ma.fields.String(required=True)


class TopicListSchema(ma.Schema):
    topics = ma.fields.List(ma.fields.Nested(TopicSchema), required=True)


class PreferencesSchema(ma.Schema):
    email_alerts = ma.fields.Boolean(required=True)
    topics = ma.fields.List(TOPIC, required=True, validate=ma.validate.Length(max=50))


class PreferencesUpdateSchema(ma.Schema):
    email_alerts = ma.fields.Boolean()
    topics = ma.fields.List(TOPIC, validate=ma.validate.Length(max=50))


class StoryRequestSchema(ma.Schema):
    id = ma.fields.String(
        required=True,
        validate=[
            ma.validate.Length(min=1, max=100),
            ma.validate.Regexp(r"^[A-Za-z0-9._:-]+$", error="Letters, digits and . _ : - only."),
        ],
    )
    title = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=200))
    url = ma.fields.Url(required=True, require_tld=False, validate=ma.validate.Length(max=1000))
    summary = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=1000))
    topics = ma.fields.List(TOPIC, required=True, validate=ma.validate.Length(max=20))
    urgency = ma.fields.String(validate=ma.validate.OneOf(["normal", "high"]))


class StoryQueuedSchema(ma.Schema):
    id = ma.fields.String(required=True)
    status = ma.fields.String(required=True)


class DeliveryCountsSchema(ma.Schema):
    queued = ma.fields.Integer(required=True)
    delivered = ma.fields.Integer(required=True)
    gone = ma.fields.Integer(required=True)
    failed = ma.fields.Integer(required=True)
    skipped = ma.fields.Integer(required=True)


class StoryCountsSchema(DeliveryCountsSchema):
    push = ma.fields.Nested(DeliveryCountsSchema, required=True)
    email = ma.fields.Nested(DeliveryCountsSchema, required=True)


class StorySchema(ma.Schema):
    id = ma.fields.String(required=True)
    status = ma.fields.String(required=True, metadata={"description": "queued, sending, sent"})
    title = ma.fields.String(required=True)
    url = ma.fields.String(required=True)
    topics = ma.fields.List(ma.fields.String(), required=True)
    created_at = ma.fields.String(required=True)
    counts = ma.fields.Nested(StoryCountsSchema, required=True)
