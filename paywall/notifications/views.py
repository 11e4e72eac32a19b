"""The notifications API (readers) and the stories API (the newsroom's CMS): thin views."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_login import current_user
from flask_smorest import Blueprint

from paywall.devices.auth import current_device, login_required
from paywall.extensions import db
from paywall.notifications.models import PushSubscription
from paywall.notifications.push import application_server_key
from paywall.notifications.schemas import (
    PreferencesSchema,
    PreferencesUpdateSchema,
    PushSubscriptionListSchema,
    PushSubscriptionRequestSchema,
    PushSubscriptionSchema,
    StoryQueuedSchema,
    StoryRequestSchema,
    StorySchema,
    TopicListSchema,
    VapidKeySchema,
)
from paywall.notifications.services import notification_service, story_service
from paywall.publishers.auth import PUBLISHER_SECURITY, publisher_required
from paywall.schemas import api_errors

blp = Blueprint("notifications", __name__, url_prefix="/api/v1", description="Story notifications")


def subscription_view(subscription: PushSubscription) -> dict[str, Any]:
    return {
        "id": subscription.id,
        "endpoint": subscription.endpoint,
        "topics": notification_service().effective_topics(subscription),
        "created_at": subscription.created_at.isoformat(),
    }


@blp.route("/notifications/vapid-key", methods=["GET"])
@blp.response(200, VapidKeySchema)
def vapid_key() -> dict[str, Any]:
    """The VAPID public key, the browser's ``applicationServerKey``."""
    return {"public_key": application_server_key(current_app.extensions["paywall.vapid"])}


@blp.route("/notifications/topics", methods=["GET"])
@blp.response(200, TopicListSchema)
def list_topics() -> dict[str, Any]:
    """The topics a reader can follow (``PAYWALL_NOTIFICATION_TOPICS``)."""
    return {
        "topics": [
            {"id": t, "name": t.replace("-", " ").replace("_", " ").title()}
            for t in current_app.config["NOTIFICATION_TOPICS"]
        ]
    }


@blp.route("/notifications/push-subscriptions", methods=["POST"])
@login_required
@blp.arguments(PushSubscriptionRequestSchema)
@blp.response(201, PushSubscriptionSchema)
@blp.alt_response(200, schema=PushSubscriptionSchema, description="the same endpoint again")
@api_errors(blp, 400, 401, 403, 413, 422)
def create_push_subscription(body: dict[str, Any]) -> Any:
    """Store this browser's push subscription for the current device session. 403
    ``feature_required`` without the notifications feature; 422 ``push_endpoint_not_allowed``
    for an endpoint outside ``PAYWALL_PUSH_ALLOWED_ORIGINS``."""
    subscription, created = notification_service().subscribe(
        current_user,
        current_device(),
        endpoint=body["endpoint"],
        p256dh=body["keys"]["p256dh"],
        auth=body["keys"]["auth"],
        expiration_time=body.get("expirationTime"),
        topics=body.get("topics"),
    )
    db.session.commit()
    return subscription_view(subscription), 201 if created else 200


@blp.route("/notifications/push-subscriptions", methods=["GET"])
@login_required
@blp.response(200, PushSubscriptionListSchema)
@api_errors(blp, 401)
def list_push_subscriptions() -> dict[str, Any]:
    """The reader's push subscriptions, on every device."""
    found = notification_service().subscriptions(current_user.id)
    return {"subscriptions": [subscription_view(s) for s in found]}


@blp.route("/notifications/push-subscriptions/<string:subscription_id>", methods=["DELETE"])
@login_required
@blp.response(204)
@api_errors(blp, 401, 403, 404)
def delete_push_subscription(subscription_id: str) -> None:
    """Stop notifications to one browser (another reader's id: 404)."""
    notification_service().unsubscribe(current_user.id, subscription_id)
    db.session.commit()


@blp.route("/notifications/preferences", methods=["GET"])
@login_required
@blp.response(200, PreferencesSchema)
@api_errors(blp, 401)
def get_preferences() -> dict[str, Any]:
    """The topics the reader follows (default: all) and email alerts (default: off)."""
    return notification_service().preferences(current_user.id)


@blp.route("/notifications/preferences", methods=["PUT"])
@login_required
@blp.arguments(PreferencesUpdateSchema)
@blp.response(200, PreferencesSchema)
@api_errors(blp, 400, 401, 403, 413, 422)
def put_preferences(body: dict[str, Any]) -> dict[str, Any]:
    """Change followed topics and email alerts (turning alerts on needs the feature)."""
    result = notification_service().set_preferences(
        current_user, email_alerts=body.get("email_alerts"), topics=body.get("topics")
    )
    db.session.commit()
    return result


@blp.route("/stories", methods=["POST"])
@publisher_required
@blp.doc(security=PUBLISHER_SECURITY)
@blp.arguments(StoryRequestSchema)
@blp.response(202, StoryQueuedSchema)
@blp.alt_response(200, schema=StoryQueuedSchema, description="the same id again: no new send")
@api_errors(blp, 400, 401, 413, 422)
def publish_story(body: dict[str, Any]) -> Any:
    """Notify the readers who follow the story's topics (the newsroom's CMS calls this)."""
    story, created = story_service().publish(body)
    answer = {"id": story.id, "status": story.status}  # as recorded, before a worker starts
    db.session.commit()  # sends the fan-out's first job to the queue
    return answer, 202 if created else 200


@blp.route("/stories/<string:story_id>", methods=["GET"])
@publisher_required
@blp.doc(security=PUBLISHER_SECURITY)
@blp.response(200, StorySchema)
@api_errors(blp, 401, 404)
def get_story(story_id: str) -> dict[str, Any]:
    """A story's delivery counts: queued, delivered, gone, failed, skipped."""
    stories = story_service()
    return stories.describe(stories.get(story_id))
