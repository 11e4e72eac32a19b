"""Applying verified Stripe events: each stored once, in the same transaction as its effect.

Order does not matter: subscription-related events never apply the payload's snapshot; they
re-fetch the subscription from Stripe and store Stripe's current state, so any ordering of
checkout.session.completed / customer.subscription.* / invoice.* converges to what Stripe says.
https://docs.stripe.com/webhooks#event-ordering
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from paywall.accounts.models import Account
from paywall.billing import emails, wording
from paywall.billing.gateway import StripeRefused
from paywall.billing.models import StripeEvent, Subscription
from paywall.billing.services import BillingService, _id, from_unix
from paywall.clock import utcnow
from paywall.queue import defer
from paywall.types import DbSession

log = logging.getLogger(__name__)

#: The job that evicts overflow devices after a catalogue change (paywall.billing.tasks).
ENFORCE_CAPS = "billing.enforce_caps"

PROCESSED, IGNORED, ORPHANED, FAILED, DUPLICATE = (
    "processed",
    "ignored",
    "orphaned",
    "failed",
    "duplicate",
)
#: Stripe answered a re-fetch with a permanent 4xx (the object is gone): asking again cannot
#: help, so the event is answered 200 and kept out of automatic replay (``billing events``).
REJECTED = "rejected"
#: An orphaned event whose owner did not appear within ORPHAN_EVENT_TTL_DAYS.
EXPIRED = "expired"
#: Every ``product.*`` / ``price.*`` / ``plan.*`` event refreshes the plan cache.
CATALOGUE_PREFIXES = ("product", "price", "plan")


class NotOurs(Exception):
    """The event's object has no owner here (yet); kept for reconcile to apply later."""

    def __init__(self, customer_id: str | None) -> None:
        super().__init__(customer_id)
        self.customer_id = customer_id


class WebhookService:
    def __init__(self, session: DbSession, billing: BillingService) -> None:
        self.session = session
        self.billing = billing
        self.handlers: dict[str, Callable[[dict[str, Any], dict[str, Any]], None]] = {
            "checkout.session.completed": self._checkout_completed,
            "checkout.session.async_payment_succeeded": self._checkout_completed,
            "customer.subscription.created": self._subscription_changed,
            "customer.subscription.updated": self._subscription_changed,
            "customer.subscription.deleted": self._subscription_changed,
            "customer.subscription.paused": self._subscription_changed,
            "customer.subscription.resumed": self._subscription_changed,
            "customer.subscription.trial_will_end": self._trial_will_end,
            "invoice.upcoming": self._invoice_upcoming,
            "invoice.paid": self._invoice_paid,
            "invoice.payment_succeeded": self._invoice_changed,
            "invoice.payment_failed": self._invoice_payment_failed,
            "invoice.payment_action_required": self._invoice_action_required,
            "charge.refunded": self._charge_refunded,
            "charge.dispute.created": self._dispute_created,
            "charge.dispute.closed": self._dispute_closed,
            "charge.dispute.funds_reinstated": self._dispute_closed,
            "refund.failed": self._refund_changed,
            "refund.updated": self._refund_changed,
            "charge.refund.updated": self._refund_changed,
            "customer.deleted": self._customer_deleted,
        }

    def receive(self, event: dict[str, Any]) -> str:
        """Store and apply one verified event; returns its outcome. Raises on failure, after
        which the caller rolls back and calls ``record_failure``."""
        row = self._lock_event(event)
        if row is not None and row.status != FAILED:
            return DUPLICATE
        if row is None:
            row = new_row(event)
            try:
                with self.session.begin_nested():
                    self.session.add(row)
            except IntegrityError:
                # A concurrent delivery of the same event stored it first; wait for its
                # transaction, then treat ours as the duplicate it is.
                row = self._lock_event(event)
                if row is not None and row.status != FAILED:
                    return DUPLICATE
                assert row is not None  # noqa: S101
        else:
            row.attempts += 1
        row.status = self.apply(event)
        row.processed_at = utcnow()
        if row.status != REJECTED:
            row.error = None
        self.session.flush()
        return row.status

    def apply(self, event: dict[str, Any]) -> str:
        """The event's effect; returns processed, ignored or orphaned."""
        event_type = str(event.get("type", ""))
        obj = (event.get("data") or {}).get("object") or {}
        handler = self.handlers.get(event_type)
        if handler is None and event_type.split(".", 1)[0] in CATALOGUE_PREFIXES:
            handler = self._catalogue_changed
        if handler is None:
            return IGNORED
        try:
            with self.session.begin_nested():  # a refused event leaves nothing half-applied
                handler(event, obj)
        except NotOurs as exc:
            row = self.session.get(StripeEvent, event["id"])
            if row is not None:
                row.stripe_customer_id = exc.customer_id
            return ORPHANED
        except StripeRefused as exc:
            if not exc.permanent:
                raise
            log.warning(
                "webhook rejected: Stripe refused a re-fetch for good",
                extra={"event_id": event["id"], "type": event_type, "error": str(exc)},
            )
            row = self.session.get(StripeEvent, event["id"])
            if row is not None:
                row.error = f"Stripe {exc.status} {exc.code or ''}: {exc}"[:1000]
            return REJECTED
        return PROCESSED

    def record_failure(self, event: dict[str, Any], error: str) -> None:
        """After a rolled-back attempt: keep the event as failed so it is never lost;
        Stripe's retry (or ``flask billing replay-events``) applies it later."""
        row = self.session.get(StripeEvent, event["id"])
        if row is None:
            row = new_row(event)
            self.session.add(row)
        elif row.status != FAILED:
            return
        row.error = error[:1000]
        self.session.flush()

    def _lock_event(self, event: dict[str, Any]) -> StripeEvent | None:
        return self.session.scalar(
            select(StripeEvent)
            .where(StripeEvent.id == event["id"])
            .with_for_update()
            .execution_options(populate_existing=True)
        )

    # -- handlers ------------------------------------------------------------------------------
    def _sync(self, subscription_id: str | None, customer_id: str | None) -> None:
        if not subscription_id:
            if self.billing.owner_of_customer(customer_id) is None:
                raise NotOurs(customer_id)
            return
        if self.billing.sync_subscription(subscription_id) is None:
            raise NotOurs(customer_id)

    def _checkout_completed(self, _event: dict[str, Any], session: dict[str, Any]) -> None:
        if session.get("mode") != "subscription":
            return
        self._sync(_id(session.get("subscription")), _id(session.get("customer")))

    def _subscription_changed(self, _event: dict[str, Any], sub: dict[str, Any]) -> None:
        self._sync(sub.get("id"), _id(sub.get("customer")))

    def _invoice_changed(self, _event: dict[str, Any], invoice: dict[str, Any]) -> None:
        self._sync(invoice_subscription(invoice), _id(invoice.get("customer")))

    def _invoice_paid(self, event: dict[str, Any], invoice: dict[str, Any]) -> None:
        self._invoice_changed(event, invoice)
        account = self._owner(invoice)
        if account is not None:
            mail = emails.payment_received(
                wording.money(invoice.get("amount_paid") or 0, str(invoice.get("currency", ""))),
                str(invoice.get("number") or invoice.get("id")),
                invoice.get("hosted_invoice_url"),
            )
            self.billing._send(account, mail, f"invoice.paid:{invoice.get('id')}")

    def _invoice_payment_failed(self, event: dict[str, Any], invoice: dict[str, Any]) -> None:
        self._invoice_changed(event, invoice)
        account = self._owner(invoice)
        if account is not None:
            settings = self.billing.settings
            mail = emails.payment_failed(
                settings.public_url + "/billing/payment-method", settings.grace.days
            )
            key = f"invoice.payment_failed:{invoice.get('id')}:{invoice.get('attempt_count')}"
            self.billing._send(account, mail, key)

    def _invoice_action_required(self, event: dict[str, Any], invoice: dict[str, Any]) -> None:
        self._invoice_changed(event, invoice)
        account_id = self.billing.owner_of_customer(_id(invoice.get("customer")))
        if account_id:
            link = invoice.get("hosted_invoice_url") or self.billing.settings.public_url + "/"
            self.billing.notify(
                account_id,
                "payment_action_required",
                "Confirm your payment",
                f"Your bank asks you to confirm this payment. Open: {link}",
                dedupe_key=f"invoice.payment_action_required:{invoice.get('id')}",
            )

    def _trial_will_end(self, event: dict[str, Any], sub: dict[str, Any]) -> None:
        self._subscription_changed(event, sub)
        account = self._owner(sub)
        row = self.session.get(Subscription, sub.get("id"))
        if account is None or row is None:
            return
        plan = self.billing.plan_by_price(row.price_id)
        mail = emails.trial_ending(
            plan.name if plan else "premium",
            from_unix(sub.get("trial_end")) or row.current_period_end,
            wording.price_text(plan) if plan else "the plan's price",
            self.billing.settings.public_url + "/",
        )
        self.billing._send(account, mail, f"trial_will_end:{event['id']}")

    def _invoice_upcoming(self, event: dict[str, Any], invoice: dict[str, Any]) -> None:
        """Stripe sends it days before each renewal; only a yearly renewal merits an email
        (a monthly reader would get one every month)."""
        account = self._owner(invoice)
        sub_id = invoice_subscription(invoice)
        if account is None or not sub_id:
            return
        row = self.billing.sync_subscription(sub_id)
        plan = self.billing.plan_by_price(row.price_id) if row else None
        if row is None or plan is None or plan.interval != "year" or row.cancel_at_period_end:
            return
        when = from_unix(invoice.get("next_payment_attempt")) or row.current_period_end
        mail = emails.renewal_coming(
            plan.name,
            when,
            wording.money(invoice.get("amount_due") or plan.amount, plan.currency),
            self.billing.settings.public_url + "/",
        )
        self.billing._send(account, mail, f"invoice.upcoming:{sub_id}:{_iso_day(when)}")

    def _owner(self, obj: dict[str, Any]) -> Account | None:
        account_id = self.billing.owner_of_customer(_id(obj.get("customer")))
        return self.session.get(Account, account_id) if account_id else None

    def _our_charge(self, charge_id: Any) -> dict[str, Any]:
        """The charge as Stripe has it now (never the payload's snapshot)."""
        charge = self.billing.gateway.retrieve_charge(str(_id(charge_id)))
        if self.billing.owner_of_customer(_id(charge.get("customer"))) is None:
            raise NotOurs(_id(charge.get("customer")))
        return charge

    def _charge_refunded(self, _event: dict[str, Any], charge: dict[str, Any]) -> None:
        charge = self._our_charge(charge.get("id"))
        if fully_refunded(charge):
            self.billing.revoke_for_charge(charge, "refunded")

    def _dispute_created(self, _event: dict[str, Any], dispute: dict[str, Any]) -> None:
        self.billing.revoke_for_charge(self._our_charge(dispute.get("charge")), "disputed")

    def _dispute_closed(self, _event: dict[str, Any], dispute: dict[str, Any]) -> None:
        """charge.dispute.closed / funds_reinstated: a won dispute gives access back."""
        dispute = self.billing.gateway.retrieve_dispute(str(dispute.get("id")))
        charge = self._our_charge(dispute.get("charge"))
        if dispute.get("status") == "won" and not fully_refunded(charge):
            self.billing.restore_for_charge(charge, "disputed")

    def _refund_changed(self, _event: dict[str, Any], refund: dict[str, Any]) -> None:
        """refund.failed / refund.updated / charge.refund.updated: once the charge is no
        longer fully refunded (the refund failed or was cancelled), access comes back."""
        charge = self._our_charge(refund.get("charge"))
        if not fully_refunded(charge):
            self.billing.restore_for_charge(charge, "refunded")

    def _customer_deleted(self, _event: dict[str, Any], customer: dict[str, Any]) -> None:
        customer = self.billing.gateway.retrieve_customer(str(customer.get("id")))
        if customer.get("deleted"):
            self.billing.customer_deleted(str(customer["id"]))

    def _catalogue_changed(self, _event: dict[str, Any], _obj: dict[str, Any]) -> None:
        self.billing.sync_plans()
        # A plan's max_devices may have gone down. Evicting overflow devices touches every
        # subscriber, so it runs on the queue in batches and the webhook answers at once.
        defer(ENFORCE_CAPS, "", session=self.session)


def new_row(event: dict[str, Any]) -> StripeEvent:
    """A stored event, failed until its effect commits with it."""
    return StripeEvent(
        id=event["id"],
        type=str(event.get("type", "")),
        created=int(event.get("created") or 0),
        livemode=bool(event.get("livemode")),
        payload=json.dumps(event),
        status=FAILED,
    )


def fully_refunded(charge: dict[str, Any]) -> bool:
    return (
        bool(charge.get("refunded"))
        or (charge.get("amount_refunded") or 0) >= (charge.get("amount") or 0) > 0
    )


def invoice_subscription(invoice: dict[str, Any]) -> str | None:
    """The subscription an invoice bills (current API: under parent.subscription_details)."""
    parent = invoice.get("parent") or {}
    details = parent.get("subscription_details") or {}
    return _id(details.get("subscription"))  # no top-level invoice.subscription since basil


def replay(
    session: DbSession, billing: BillingService, statuses: tuple[str, ...] = (FAILED, ORPHANED)
) -> list[tuple[str, str]]:
    """Re-apply stored events (CLI ``replay-events``); returns (event id, outcome)."""
    service = WebhookService(session, billing)
    results = [
        _replay_one(session, service, row)
        for row in session.scalars(
            select(StripeEvent)
            .where(StripeEvent.status.in_(statuses))
            .order_by(StripeEvent.created)
        ).all()
    ]
    session.flush()
    return results


def replay_orphans(
    session: DbSession, billing: BillingService, ttl: timedelta
) -> list[tuple[str, str]]:
    """Reconcile's pass over orphaned events. Those kept longer than ``ttl`` expire; each
    other one is tried at most once, and only once its customer has an owner here: one
    lookup per customer per run, however many of its events wait."""
    service = WebhookService(session, billing)
    cutoff = utcnow() - ttl
    owned: dict[str, bool] = {}
    results = []
    for row in session.scalars(
        select(StripeEvent).where(StripeEvent.status == ORPHANED).order_by(StripeEvent.created)
    ).all():
        if row.received_at < cutoff:
            row.status = EXPIRED
            results.append((row.id, EXPIRED))
            continue
        customer = row.stripe_customer_id
        if customer is not None and customer not in owned:
            try:
                owned[customer] = billing.owner_of_customer(customer) is not None
            except Exception as exc:  # noqa: BLE001 - try this customer again next run
                log.warning("orphan owner lookup failed", extra={"error": str(exc)})
                owned[customer] = False
        if customer is not None and not owned[customer]:
            results.append((row.id, ORPHANED))
            continue
        results.append(_replay_one(session, service, row))
    session.flush()
    return results


def _replay_one(session: DbSession, service: WebhookService, row: StripeEvent) -> tuple[str, str]:
    event = json.loads(row.payload)
    try:
        with session.begin_nested():
            row.status = service.apply(event)
            row.attempts += 1
            row.processed_at = utcnow()
            if row.status != REJECTED:
                row.error = None
    except Exception as exc:  # noqa: BLE001 - report and continue with the next event
        row.error = str(exc)[:1000]
        return row.id, f"failed: {exc}"
    return row.id, row.status


def _iso_day(value: Any) -> str:
    return value.date().isoformat() if value else "-"
