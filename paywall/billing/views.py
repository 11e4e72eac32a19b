"""The billing JSON API and the Stripe webhook endpoint: thin views over the services."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from flask import current_app, request
from flask_login import current_user
from flask_smorest import Blueprint

from paywall import metrics
from paywall.billing.gateway import SignatureInvalid, StripeGateway
from paywall.billing.schemas import (
    CheckoutRequestSchema,
    InvoiceListSchema,
    PlanChangeQuerySchema,
    PlanChangeSchema,
    PlanListSchema,
    PortalRequestSchema,
    UrlSchema,
    WebhookResultSchema,
)
from paywall.billing.services import billing_service
from paywall.billing.webhooks import WebhookService
from paywall.devices.auth import login_required
from paywall.errors import PaywallError
from paywall.extensions import db
from paywall.schemas import api_errors

log = logging.getLogger(__name__)
blp = Blueprint("billing", __name__, url_prefix="/api/v1", description="Plans and billing")


@blp.route("/plans", methods=["GET"])
@blp.response(200, PlanListSchema)
@api_errors(blp, 503)
def list_plans() -> dict[str, Any]:
    """The plans compared: price in words, devices, features, the reader's current plan."""
    reader = current_user if current_user.is_authenticated else None
    plans = billing_service().compare_plans_or_unavailable(reader)
    db.session.commit()
    return {"plans": plans}


@blp.route("/plans/change-preview", methods=["GET"])
@login_required
@blp.arguments(PlanChangeQuerySchema, location="query")
@blp.response(200, PlanChangeSchema)
@api_errors(blp, 401, 404, 409, 422, 503)
def plan_change_preview(query: dict[str, str]) -> dict[str, Any]:
    """What switching to ``plan`` would do: which devices sign out, which features stop."""
    preview = billing_service().describe_change(current_user, query["plan"])
    db.session.commit()
    return preview


@blp.route("/billing/invoices", methods=["GET"])
@login_required
@blp.response(200, InvoiceListSchema)
@api_errors(blp, 401, 502, 503)
def list_invoices() -> dict[str, Any]:
    """The reader's invoices, read from Stripe: number, date, amount, status, and Stripe's
    hosted invoice page and PDF."""
    return {"invoices": billing_service().invoices(current_user)}


@blp.route("/billing/checkout", methods=["POST"])
@login_required
@blp.arguments(CheckoutRequestSchema)
@blp.response(201, UrlSchema)
@api_errors(blp, 400, 401, 403, 404, 409, 413, 422, 502, 503)
def checkout(body: dict[str, Any]) -> dict[str, str]:
    """Start Stripe Checkout for a plan; open the returned URL."""
    url = billing_service().checkout(current_user, body["plan"])
    db.session.commit()
    return {"url": url}


@blp.route("/billing/portal", methods=["POST"])
@login_required
@blp.arguments(PortalRequestSchema)
@blp.response(201, UrlSchema)
@api_errors(blp, 400, 401, 403, 404, 413, 422, 502, 503)
def portal(body: dict[str, Any]) -> dict[str, str]:
    """Open Stripe's billing portal (cancel, change plan, update card, invoices)."""
    return_url = body.get("return_url")
    if return_url and not allowed_return_url(return_url):
        raise PaywallError(
            "return_url must be on this service or the news site.",
            code="validation_error",
            status=422,
            extra={"fields": {"return_url": ["Not an allowed address."]}},
        )
    url = billing_service().portal(current_user, return_url)
    db.session.commit()
    return {"url": url}


def allowed_return_url(url: str) -> bool:
    target = urlsplit(url)
    for allowed in (current_app.config["PUBLIC_URL"], current_app.config["SITE_URL"]):
        base = urlsplit(allowed)
        if (target.scheme, target.netloc) == (base.scheme, base.netloc):
            return True
    return False


@blp.route("/stripe/webhook", methods=["POST"])
@blp.response(200, WebhookResultSchema)
@api_errors(blp, 400, 413, 500)
def stripe_webhook() -> dict[str, Any]:
    """Stripe's webhook endpoint: verifies the signature on the raw body, stores the event
    once and applies it in the same transaction."""
    request.max_content_length = current_app.config["WEBHOOK_MAX_CONTENT_LENGTH"]
    payload = request.get_data(cache=False)
    try:
        event = StripeGateway.verify_event(
            payload,
            request.headers.get("Stripe-Signature"),
            current_app.config["STRIPE_WEBHOOK_SECRET"],
        )
    except SignatureInvalid as exc:
        log.warning("webhook refused", extra={"reason": str(exc)})
        metrics.WEBHOOKS_REFUSED.inc()
        raise PaywallError(
            "The Stripe-Signature header does not verify.", code="invalid_signature", status=400
        ) from exc
    service = WebhookService(db.session, billing_service())
    try:
        outcome = service.receive(event)
        db.session.commit()
    except Exception as exc:
        db.session.rollback()
        metrics.WEBHOOKS.labels(str(event.get("type", "")), "failed").inc()
        log.exception("webhook failed", extra={"event_id": event["id"], "type": event.get("type")})
        try:
            service.record_failure(event, f"{type(exc).__name__}: {exc}")
            db.session.commit()
        except Exception:  # noqa: BLE001 - the database may be the thing that is down
            db.session.rollback()
            log.exception("could not record the failed event", extra={"event_id": event["id"]})
        raise PaywallError(
            "The event could not be applied; Stripe will retry it.",
            code="webhook_failed",
            status=500,
        ) from exc
    metrics.WEBHOOKS.labels(str(event.get("type", "")), outcome).inc()
    return {"received": True, "outcome": outcome}
