"""Billing rules: plans, the reader's Stripe customer, checkout, portal, syncing subscriptions
from Stripe, refunds and disputes, reconcile. Flushes; the request (or CLI command) commits."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple
from urllib.parse import urlencode

from sqlalchemy import select

from paywall.accounts.models import Account
from paywall.billing import emails, wording
from paywall.billing.access import (
    Access,
    PlanGrant,
    SubscriptionState,
    access_from_subscription,
)
from paywall.billing.gateway import (
    API_VERSION,
    OWNER_KEY,
    StripeGateway,
    StripeRefused,
    StripeUnavailable,
    idempotency_key,
)
from paywall.billing.models import Customer, Plan, Subscription
from paywall.clock import utcnow
from paywall.devices.services import DeviceService, lru_first
from paywall.errors import Conflict, NotFound, PaywallError, UpstreamError
from paywall.grants.access import Grant, combine
from paywall.outbox.services import Outbox
from paywall.types import DbSession

log = logging.getLogger(__name__)

LIVE_STATUSES = ("active", "trialing", "past_due")
ENDED_STATUSES = ("canceled", "unpaid", "incomplete_expired")
CHECKOUT_REUSE_WINDOW = timedelta(minutes=30)
MAX_TRIAL_DAYS = 730  # https://docs.stripe.com/api/checkout/sessions/create (trial_period_days)


class PaymentProviderError(PaywallError):
    code, status, message = "payment_provider_error", 502, "Stripe refused the request."


@dataclass(frozen=True)
class BillingSettings:
    public_url: str
    site_url: str
    grace: timedelta
    default_max_devices: int
    refund_ends_access: bool
    dispute_ends_access: bool
    plans_ttl: timedelta
    feature_labels: dict[str, str] = field(default_factory=dict)
    promotion_codes: bool = False

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> BillingSettings:
        return cls(
            public_url=config["PUBLIC_URL"].rstrip("/"),
            site_url=config["SITE_URL"].rstrip("/"),
            grace=timedelta(days=float(config["PAST_DUE_GRACE_DAYS"])),
            default_max_devices=int(config["MAX_DEVICES"]),
            refund_ends_access=bool(config["REFUND_ENDS_ACCESS"]),
            dispute_ends_access=bool(config["DISPUTE_ENDS_ACCESS"]),
            plans_ttl=timedelta(seconds=int(config["PLANS_CACHE_TTL"])),
            feature_labels=dict(config.get("FEATURE_LABELS") or {}),
            promotion_codes=bool(config.get("CHECKOUT_PROMOTION_CODES")),
        )


def from_unix(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), UTC) if value else None


def plan_from_price(price: dict[str, Any]) -> dict[str, Any]:
    """The plan columns for a Stripe Price with its Product expanded."""
    product = price.get("product") or {}
    if isinstance(product, str):
        product = {"id": product}
    metadata = product.get("metadata") or {}
    features = [f.strip() for f in str(metadata.get("entitlements", "")).split(",") if f.strip()]
    raw_max = str(metadata.get("max_devices", "")).strip()
    recurring = price.get("recurring") or {}
    raw_trial = str((price.get("metadata") or {}).get("trial_period_days", "")).strip()
    return {
        "price_id": price["id"],
        "lookup_key": price.get("lookup_key"),
        "product_id": product.get("id", ""),
        "name": product.get("name") or price.get("nickname") or price.get("lookup_key") or "Plan",
        "description": product.get("description") or None,
        "amount": price.get("unit_amount"),
        "currency": price.get("currency", "usd"),
        "interval": recurring.get("interval", "month"),
        "interval_count": int(recurring.get("interval_count") or 1),
        "features": features,
        "max_devices": int(raw_max) if raw_max.isdigit() and int(raw_max) > 0 else None,
        # Checkout takes 1 to 730 days; anything else in the metadata means no trial.
        "trial_period_days": int(raw_trial)
        if raw_trial.isdigit() and 1 <= int(raw_trial) <= MAX_TRIAL_DAYS
        else None,
        "active": bool(price.get("active", True)) and bool(product.get("active", True)),
    }


def subscription_fields(data: dict[str, Any]) -> dict[str, Any]:
    """The columns we keep from a Stripe Subscription (current API: periods on the items)."""
    items = (data.get("items") or {}).get("data") or [{}]
    item = items[0]
    price = item.get("price") or {}
    period_end = item.get("current_period_end") or data.get("current_period_end")
    latest_invoice = data.get("latest_invoice")
    if isinstance(latest_invoice, dict):
        latest_invoice = latest_invoice.get("id")
    customer = data.get("customer")
    return {
        "stripe_customer_id": customer["id"] if isinstance(customer, dict) else customer,
        "price_id": price.get("id") if isinstance(price, dict) else price,
        "status": data["status"],
        "current_period_end": from_unix(period_end),
        "cancel_at_period_end": bool(data.get("cancel_at_period_end")),
        "cancel_at": from_unix(data.get("cancel_at")),
        "latest_invoice_id": latest_invoice,
        "default_payment_method": _id(data.get("default_payment_method")),
        "ended_at": from_unix(data.get("ended_at")),
    }


def current_of(subs: Sequence[Subscription]) -> Subscription | None:
    """Of a reader's subscriptions, the one that decides access: a live one if any, else the
    latest."""
    if not subs:
        return None
    return max(subs, key=lambda s: (s.status in LIVE_STATUSES, s.created_at, s.id))


class BillingService:
    """Every billing rule. Talks to Stripe only through ``StripeGateway``."""

    def __init__(
        self,
        session: DbSession,
        gateway: StripeGateway,
        devices: DeviceService,
        outbox: Outbox,
        settings: BillingSettings,
    ) -> None:
        self.session = session
        self.gateway = gateway
        self.devices = devices
        self.outbox = outbox
        self.settings = settings
        self._plans: dict[str, Plan] = {}  # plans read in this request, by price id

    # -- plans -------------------------------------------------------------------------------
    def plans(self) -> list[Plan]:
        """Active plans, from the local cache; refreshed from Stripe when stale or empty."""
        cached = list(self.session.scalars(select(Plan).order_by(Plan.amount)).all())
        fresh = cached and all(utcnow() - p.refreshed_at < self.settings.plans_ttl for p in cached)
        if not fresh:
            try:
                cached = self.sync_plans()
            except StripeUnavailable:
                if not cached:
                    raise
                log.warning("serving cached plans: Stripe unavailable")
        return sorted(
            (p for p in cached if p.active and p.lookup_key),
            key=lambda p: (p.amount or 0, p.lookup_key or ""),
        )

    def sync_plans(self) -> list[Plan]:
        """Re-read every recurring price from Stripe into the cache. A plan that loses a
        feature (its Product's ``entitlements`` edited) revokes its subscribers' tokens."""
        seen: set[str] = set()
        now = utcnow()
        had = {p.price_id: set(p.features or ()) for p in self.session.scalars(select(Plan))}
        lost: list[str] = []
        for price in self.gateway.list_recurring_prices():
            plan = self._upsert_plan(plan_from_price(price), now)
            seen.add(price["id"])
            if had.get(plan.price_id, set()) - set(plan.features or ()):
                lost.append(plan.price_id)
        if lost:
            self._plan_features_lost(lost)
        for stale in self.session.scalars(select(Plan).where(Plan.price_id.not_in(seen or {""}))):
            stale.active = False
            stale.refreshed_at = now
        self.session.flush()
        return list(self.session.scalars(select(Plan)).all())

    def _plan_features_lost(self, price_ids: list[str]) -> None:
        from paywall.entitlements.revocations import DOWNGRADED, record

        accounts = self.session.scalars(
            select(Subscription.account_id)
            .where(Subscription.price_id.in_(price_ids), Subscription.status.in_(LIVE_STATUSES))
            .distinct()
        ).all()
        for account_id in accounts:
            record(self.session, sub=account_id, reason=DOWNGRADED)

    def _upsert_plan(self, values: dict[str, Any], now: datetime) -> Plan:
        plan = self.session.get(Plan, values["price_id"])
        if plan is None:
            if values["lookup_key"]:
                # A lookup_key moved to a new price (transfer_lookup_key): free it first.
                for other in self.session.scalars(
                    select(Plan).where(Plan.lookup_key == values["lookup_key"])
                ):
                    other.lookup_key = None
            plan = Plan(**values, refreshed_at=now)
            self.session.add(plan)
        else:
            for key, value in values.items():
                setattr(plan, key, value)
            plan.refreshed_at = now
        self.session.flush()
        return plan

    def plan_by_lookup_key(self, lookup_key: str) -> Plan:
        for plan in self.plans():
            if plan.lookup_key == lookup_key:
                return plan
        raise NotFound(f"No plan called {lookup_key!r}.", code="unknown_plan")

    def plan_by_price(self, price_id: str | None) -> Plan | None:
        if not price_id:
            return None
        plan = self.session.get(Plan, price_id)
        if plan is None:
            self.sync_plans()
            plan = self.session.get(Plan, price_id)
        return plan

    def compare_plans(self, account: Account | None) -> list[dict[str, Any]]:
        """Every plan on sale in the reader's terms, the reader's current one marked."""
        plans = self.plans()
        current = self.current_plan(account) if account is not None else None
        trial = account is None or self.trial_eligible(account)
        return [self.plan_offer(p, plans, current, trial=trial) for p in plans]

    def trial_eligible(self, account: Account) -> bool:
        """One free trial per reader: only a reader who never subscribed gets the Price's
        trial (Stripe itself would start a new one at every Checkout)."""
        return (
            self.session.scalar(
                select(Subscription.id).where(Subscription.account_id == account.id).limit(1)
            )
            is None
        )

    def compare_plans_or_unavailable(self, account: Account | None) -> list[dict[str, Any]]:
        """``compare_plans`` with Stripe's failures as the API's typed errors."""
        return self._stripe(lambda: self.compare_plans(account))  # type: ignore[no-any-return]

    def describe_change(self, account: Account, lookup_key: str) -> dict[str, Any]:
        """``preview_change`` with the target plan, for the API and the page."""
        plans = self._stripe(self.plans)
        change = self._stripe(lambda: self.preview_change(account, lookup_key))
        target = next(p for p in plans if p.lookup_key == lookup_key)
        return {
            "plan": self.plan_offer(target, plans, self.current_plan(account)),
            "signed_out": list(change.signed_out),
            "active_devices": change.active_devices,
            "new_limit": change.new_limit,
            "features_lost": list(change.features_lost),
            "features_gained": list(change.features_gained),
            "downgrade": change.is_downgrade,
            "sentences": change.sentences(),
        }

    def plan_offer(
        self, plan: Plan, plans: list[Plan], current: Plan | None = None, trial: bool = True
    ) -> dict[str, Any]:
        labels = self.settings.feature_labels
        max_devices = plan.max_devices or self.settings.default_max_devices
        return {
            "lookup_key": plan.lookup_key,
            "name": plan.name,
            "description": plan.description,
            "amount": plan.amount,
            "currency": plan.currency,
            "interval": plan.interval,
            "interval_count": plan.interval_count,
            "entitlements": list(plan.features),
            "max_devices": max_devices,
            "price_text": wording.price_text(plan),
            "offer_text": wording.offer_text(plan, plans),
            "months_free": wording.months_free(plan, plans),
            "devices_text": wording.devices_text(max_devices),
            "features_text": wording.feature_words(plan.features, labels),
            "current": current is not None and current.price_id == plan.price_id,
            "trial_period_days": plan.trial_period_days if trial else None,
            "trial_text": wording.trial_text(plan.trial_period_days if trial else None),
            "promotion_codes": self.settings.promotion_codes,
        }

    def current_plan(self, account: Account) -> Plan | None:
        """The plan of the reader's live subscription, if any."""
        sub = self.current_subscription(account.id)
        if sub is None or sub.status not in LIVE_STATUSES:
            return None
        return self._plan(sub.price_id)

    def preview_change(self, account: Account, lookup_key: str) -> wording.PlanChange:
        """What switching to ``lookup_key`` would do: devices signed out, features lost."""
        plan = self.plan_by_lookup_key(lookup_key)
        current = self.current_plan(account)
        if current is None:
            raise Conflict("You have no subscription to change.", code="no_subscription")
        return wording.plan_change(
            current.features,
            plan,
            lru_first(self.devices.active_sessions(account.id)),
            self.settings.default_max_devices,
            self.settings.feature_labels,
        )

    # -- access ------------------------------------------------------------------------------
    def current_subscription(self, account_id: str) -> Subscription | None:
        """The subscription that decides access: a live one if any, else the latest."""
        rows = self.session.execute(
            select(Subscription, Plan)
            .outerjoin(Plan, Plan.price_id == Subscription.price_id)
            .where(Subscription.account_id == account_id)
        ).all()
        if not rows:
            return None
        # Hold the plans loaded with the subscriptions, so reading them next costs no query.
        self._plans.update({plan.price_id: plan for _sub, plan in rows if plan is not None})
        return current_of([sub for sub, _plan in rows])

    def _plan(self, price_id: str | None) -> Plan | None:
        if not price_id:
            return None
        plan = self._plans.get(price_id)
        return plan if plan is not None else self.session.get(Plan, price_id)

    def access_for(self, account: Account, now: datetime | None = None) -> Access:
        """What the reader may do now: the subscription combined with any grant (the better)."""
        return self.with_grant(
            account, self.access_of(self.current_subscription(account.id), now), now
        )

    def access_for_many(
        self, account_ids: Sequence[str], now: datetime | None = None
    ) -> dict[str, Access]:
        """``access_for`` of many readers in two queries (subscriptions with their plans, then
        grants), whatever their number: the story fan-out checks a claimed chunk at once."""
        from paywall.grants.access import combine
        from paywall.grants.services import GrantService

        ids = sorted(set(account_ids))
        if not ids:
            return {}
        now = now or utcnow()
        rows = self.session.execute(
            select(Subscription, Plan)
            .outerjoin(Plan, Plan.price_id == Subscription.price_id)
            .where(Subscription.account_id.in_(ids))
        ).all()
        self._plans.update({plan.price_id: plan for _sub, plan in rows if plan is not None})
        subs: dict[str, list[Subscription]] = {}
        for sub, _plan in rows:
            subs.setdefault(sub.account_id, []).append(sub)
        grants = GrantService(self.session).grants_for(ids, now)
        access = {}
        for account_id in ids:
            current = current_of(subs.get(account_id, []))
            access[account_id] = combine(self.access_of(current, now), grants.get(account_id))
        return access

    def with_grant(self, account: Account, access: Access, now: datetime | None = None) -> Access:
        from paywall.grants.access import combine
        from paywall.grants.services import GrantService

        return combine(access, GrantService(self.session).grant_for(account.id, now))

    def access_of(self, sub: Subscription | None, now: datetime | None = None) -> Access:
        """What ``sub`` (a reader's current subscription, or None) grants right now."""
        state = None
        if sub is not None:
            plan = self._plan(sub.price_id)
            state = SubscriptionState(
                status=sub.status,
                plan=PlanGrant(plan.lookup_key, plan.name, tuple(plan.features), plan.max_devices)
                if plan
                else None,
                current_period_end=sub.current_period_end,
                cancel_at_period_end=sub.cancel_at_period_end,
                past_due_since=sub.past_due_since,
                revoked_reason=sub.revoked_reason,
            )
        return access_from_subscription(
            state,
            now=now or utcnow(),
            grace=self.settings.grace,
            default_max_devices=self.settings.default_max_devices,
        )

    def cap_for(self, account: Account) -> int:
        return self.access_for(account).max_devices

    def describe_account(self, account: Account) -> dict[str, Any]:
        from paywall.grants.services import GrantService

        sub = self.current_subscription(account.id)
        access = self.with_grant(account, self.access_of(sub))
        plan = self._plan(sub.price_id) if sub else None
        grant = GrantService(self.session).grant_for(account.id)
        return {
            "id": account.id,
            "email": account.email,
            "email_verified": account.email_verified,
            "created_at": account.created_at.isoformat(),
            "subscription": None if sub is None else self._describe_subscription(sub, plan, access),
            "entitlements": {
                "plan": access.plan,
                "features": list(access.features),
                "max_devices": access.max_devices,
                "reason": access.reason,
            },
            # Access given by hand (issue 14), shown on the account page beside any plan.
            "granted": None
            if grant is None
            else {
                "features": list(grant.features),
                "features_text": wording.feature_words(
                    grant.features, self.settings.feature_labels
                ),
                "max_devices": grant.max_devices,
                "until": grant.until.isoformat(),
            },
        }

    def _describe_subscription(
        self, sub: Subscription, plan: Plan | None, access: Access
    ) -> dict[str, Any]:
        live = sub.status in LIVE_STATUSES
        ending = live and (sub.cancel_at_period_end or sub.cancel_at is not None)
        return {
            "plan": plan.lookup_key if plan else None,
            "plan_name": plan.name if plan else None,
            "status": sub.status,
            "current_period_end": _iso(sub.current_period_end),
            "cancel_at_period_end": sub.cancel_at_period_end,
            "access_until": _iso(access.until) if access.entitled else None,
            "price_text": wording.price_text(plan) if plan else None,
            "amount": plan.amount if plan else None,
            "currency": plan.currency if plan else None,
            "interval": plan.interval if plan else None,
            "renews_at": _iso(sub.current_period_end) if live and not ending else None,
            "ends_at": _iso(sub.cancel_at or sub.current_period_end) if ending else None,
            "ended_at": _iso(sub.ended_at or sub.current_period_end)
            if sub.status in ENDED_STATUSES
            else None,
            "payment_method": self.payment_method(sub) if live else None,
        }

    def payment_method(self, sub: Subscription) -> dict[str, Any] | None:
        """The card that pays ``sub`` (brand, last 4, expiry), or None; Stripe being down
        leaves it out rather than failing the whole account page."""
        if not sub.default_payment_method:
            return None
        try:
            pm = self.gateway.retrieve_payment_method(sub.default_payment_method)
        except (StripeUnavailable, StripeRefused):
            log.warning("payment method unavailable", extra={"subscription": sub.id})
            return None
        card = pm.get("card") or {}
        return {
            "type": pm.get("type"),
            "brand": card.get("display_brand") or card.get("brand"),
            "last4": card.get("last4"),
            "exp_month": card.get("exp_month"),
            "exp_year": card.get("exp_year"),
        }

    def invoices(self, account: Account) -> list[dict[str, Any]]:
        """The reader's invoices from Stripe, newest first (drafts left out)."""
        customer = self.session.get(Customer, account.id)
        if customer is None or customer.deleted_at is not None:
            return []
        rows = self._stripe(lambda: self.gateway.list_invoices(customer.stripe_customer_id))
        return [
            {
                "id": inv["id"],
                "number": inv.get("number"),
                "date": _iso(from_unix(inv.get("effective_at") or inv.get("created"))),
                "amount": inv.get("total", inv.get("amount_due")),
                "amount_text": wording.money(
                    inv.get("total", inv.get("amount_due")), inv.get("currency", "usd")
                ),
                "currency": inv.get("currency"),
                "status": inv.get("status"),
                "hosted_invoice_url": inv.get("hosted_invoice_url"),
                "invoice_pdf": inv.get("invoice_pdf"),
            }
            for inv in rows
            if inv.get("status") != "draft"
        ]

    def erase(self, account: Account) -> None:
        """Account deletion: cancel every live subscription at Stripe now (a failure raises
        and the deletion rolls back: nobody is charged for an account that is gone)."""
        for sub in self.session.scalars(
            select(Subscription).where(
                Subscription.account_id == account.id, Subscription.status.in_(LIVE_STATUSES)
            )
        ).all():
            data = self._cancel_at_stripe(sub.id)
            for key, value in subscription_fields(data).items():
                setattr(sub, key, value)
            sub.synced_at = utcnow()
        self.session.flush()

    def _cancel_at_stripe(self, subscription_id: str) -> dict[str, Any]:
        return self._stripe(  # type: ignore[no-any-return]
            lambda: self.gateway.cancel_subscription(subscription_id)
        )

    def export(self, account: Account) -> dict[str, Any]:
        """The reader's billing data for the export: subscriptions, and invoices if Stripe
        answers."""
        subs = self.session.scalars(
            select(Subscription).where(Subscription.account_id == account.id)
        ).all()
        try:
            invoices: list[dict[str, Any]] | str = self.invoices(account)
        except PaywallError:
            invoices = "Stripe was unavailable; download them from your account page."
        customer = self.session.get(Customer, account.id)
        return {
            "billing_customer": customer.stripe_customer_id if customer else None,
            "subscriptions": [
                {
                    "id": s.id,
                    "plan": getattr(self._plan(s.price_id), "lookup_key", None),
                    "status": s.status,
                    "created_at": _iso(s.created_at),
                    "current_period_end": _iso(s.current_period_end),
                    "cancel_at_period_end": s.cancel_at_period_end,
                    "ended_at": _iso(s.ended_at),
                }
                for s in subs
            ],
            "invoices": invoices,
        }

    # -- checkout and portal -------------------------------------------------------------------
    def ensure_customer(self, account: Account) -> Customer:
        """The reader's Stripe Customer, created once (idempotently) and remembered."""
        customer = self.session.get(Customer, account.id)
        if customer is not None and customer.deleted_at is None:
            return customer
        suffix = "" if customer is None else f"-{customer.stripe_customer_id}"
        created = self._stripe(
            lambda: self.gateway.create_customer(account.id + suffix, account.email)
        )
        if customer is None:
            customer = Customer(account_id=account.id, stripe_customer_id=created["id"])
            self.session.add(customer)
        else:
            customer.stripe_customer_id, customer.deleted_at = created["id"], None
        self.session.flush()
        return customer

    def checkout(self, account: Account, lookup_key: str, return_to: str | None = None) -> str:
        """The URL of a Checkout Session for ``lookup_key``; a double click gets the same one.
        ``return_to`` (an already validated page) is where Checkout's Cancel link leads."""
        self.devices.lock_account(account.id)  # one checkout at a time per reader
        plan = self._stripe(lambda: self.plan_by_lookup_key(lookup_key))
        sub = self.current_subscription(account.id)
        if sub is not None and sub.status in LIVE_STATUSES:
            raise Conflict(
                "You already have a subscription. Manage it in the billing portal.",
                code="subscription_exists",
            )
        customer = self.ensure_customer(account)
        subscription_data: dict[str, Any] = {"metadata": {OWNER_KEY: account.id}}
        if plan.trial_period_days and self.trial_eligible(account):
            subscription_data["trial_period_days"] = plan.trial_period_days
        params: dict[str, Any] = {
            "mode": "subscription",
            "customer": customer.stripe_customer_id,
            "client_reference_id": account.id,
            "line_items": [{"price": plan.price_id, "quantity": 1}],
            "success_url": self.settings.public_url
            + "/billing/return?session_id={CHECKOUT_SESSION_ID}",
            "cancel_url": return_to
            or self.settings.site_url + "/?" + urlencode({"checkout": "canceled"}),
            "metadata": {OWNER_KEY: account.id},
            "subscription_data": subscription_data,
        }
        if self.settings.promotion_codes:
            # Finance creates the codes in the dashboard; the reader types one on Checkout.
            params["allow_promotion_codes"] = True
        # The key covers every parameter sent: the same click again (a double click, a retry)
        # reuses the session; another page (another cancel_url) or plan gets its own.
        window = int(utcnow().timestamp() // CHECKOUT_REUSE_WINDOW.total_seconds())
        body = json.dumps(params, sort_keys=True, separators=(",", ":"))
        key = idempotency_key("checkout", account.id, str(window), body)
        session = self._stripe(lambda: self.gateway.create_checkout_session(params, key))
        return str(session["url"])

    def portal(
        self,
        account: Account,
        return_url: str | None = None,
        flow_data: dict[str, Any] | None = None,
    ) -> str:
        customer = self.session.get(Customer, account.id)
        if customer is None or customer.deleted_at is not None:
            raise NotFound(
                "You have no billing account yet. Subscribe first.", code="no_billing_account"
            )
        portal = self._stripe(
            lambda: self.gateway.create_portal_session(
                customer.stripe_customer_id,
                return_url or self.settings.public_url + "/",
                flow_data,
            )
        )
        return str(portal["url"])

    def portal_for_change(self, account: Account, lookup_key: str, return_url: str) -> str:
        """The portal's confirm page for switching to ``lookup_key`` (the reader has seen
        what it will do on our plans page), returning to ``return_url`` afterwards."""
        plan = self._stripe(lambda: self.plan_by_lookup_key(lookup_key))
        sub = self.current_subscription(account.id)
        if sub is None or sub.status not in LIVE_STATUSES:
            raise Conflict("You have no subscription to change.", code="no_subscription")
        data = self._stripe(lambda: self.gateway.retrieve_subscription(sub.id))
        item = ((data.get("items") or {}).get("data") or [{}])[0]
        flow = {
            "type": "subscription_update_confirm",
            "subscription_update_confirm": {
                "subscription": sub.id,
                "items": [{"id": item.get("id"), "price": plan.price_id, "quantity": 1}],
            },
            "after_completion": {"type": "redirect", "redirect": {"return_url": return_url}},
        }
        return self.portal(account, return_url, flow)

    def portal_for_payment_method(self, account: Account, return_url: str) -> str:
        """The portal's page for updating the card (the failed-payment email links here)."""
        flow = {
            "type": "payment_method_update",
            "after_completion": {"type": "redirect", "redirect": {"return_url": return_url}},
        }
        return self.portal(account, return_url, flow)

    def complete_checkout(self, account: Account, session_id: str) -> Subscription | None:
        """After the redirect back from Checkout: ask Stripe (never trust the redirect) whether
        this reader's session is paid, and if so sync its subscription now."""
        session = self._stripe(lambda: self.gateway.retrieve_checkout_session(session_id))
        if session.get("client_reference_id") != account.id:
            raise NotFound("No such checkout session.", code="unknown_checkout_session")
        if session.get("status") != "complete" or not session.get("subscription"):
            return None
        sub_id = session["subscription"]
        return self.sync_subscription(sub_id if isinstance(sub_id, str) else sub_id["id"])

    # -- syncing from Stripe -------------------------------------------------------------------
    def owner_of_customer(self, customer_id: str | None) -> str | None:
        """The account that owns a Stripe customer, adopting it by its metadata if needed."""
        if not customer_id:
            return None
        row = self.session.scalar(
            select(Customer).where(Customer.stripe_customer_id == customer_id)
        )
        if row is not None:
            return row.account_id
        customer = self.gateway.retrieve_customer(customer_id)
        account_id = (customer.get("metadata") or {}).get(OWNER_KEY)
        if not account_id or self.session.get(Account, account_id) is None:
            return None
        existing = self.session.get(Customer, account_id)
        if existing is None:
            self.session.add(Customer(account_id=account_id, stripe_customer_id=customer_id))
        else:
            existing.stripe_customer_id, existing.deleted_at = customer_id, None
        self.session.flush()
        return str(account_id)

    def sync_subscription(self, subscription_id: str) -> Subscription | None:
        """Fetch the subscription from Stripe and store its current state; None if not ours."""
        data = self.gateway.retrieve_subscription(subscription_id)
        return self.apply_subscription(data)

    def apply_subscription(self, data: dict[str, Any]) -> Subscription | None:
        fields = subscription_fields(data)
        account_id = self.owner_of_customer(fields["stripe_customer_id"])
        if account_id is None:
            return None
        account = self.devices.lock_account(account_id)
        now = utcnow()
        had = self.access_for(account, now).features
        sub = self.session.get(Subscription, data["id"])
        before = None if sub is None else (sub.price_id, sub.status, sub.cancel_at_period_end)
        if sub is None:
            sub = Subscription(id=data["id"], account_id=account_id, created_at=now, **fields)
            self.session.add(sub)
        else:
            if sub.revoked_reason and self._newer_invoice_paid(sub, fields["latest_invoice_id"]):
                sub.revoked_invoice_id = sub.revoked_reason = None
            for key, value in fields.items():
                setattr(sub, key, value)
        if sub.status == "past_due":
            sub.past_due_since = sub.past_due_since or now
        else:
            sub.past_due_since = None
        sub.synced_at = now
        self.plan_by_price(sub.price_id)
        self.session.flush()
        self._access_lowered(account, had, _lowered_reason(sub, before))
        victims = self.devices.enforce_cap(account)
        self._tell_reader(account, sub, before, [v.device_name for v in victims])
        return sub

    def _access_lowered(self, account: Account, had: Sequence[str], reason: str) -> None:
        """Record a revocation if the account just lost a feature it had (same transaction):
        its outstanding tokens stop working and the frontend renews."""
        from paywall.entitlements.revocations import record_access_lowered

        record_access_lowered(
            self.session, account.id, had, self.access_for(account).features, reason
        )

    def _newer_invoice_paid(self, sub: Subscription, latest_invoice_id: str | None) -> bool:
        """Only a paid invoice newer than the refunded or disputed one lifts the revocation:
        a declined renewal (open invoice, past_due) must not bring the grace period back."""
        if not latest_invoice_id or latest_invoice_id == sub.revoked_invoice_id:
            return False
        return self.gateway.retrieve_invoice(latest_invoice_id).get("status") == "paid"

    def restore_for_charge(self, charge: dict[str, Any], reason: str) -> Subscription | None:
        """A won dispute or a failed or cancelled refund: the charge that paid for the revoked
        invoice stands again, so the revocation it caused is lifted. ``charge`` is fresh from
        Stripe."""
        account_id = self.owner_of_customer(_id(charge.get("customer")))
        if account_id is None:
            return None
        intent = _id(charge.get("payment_intent"))
        for sub in self.session.scalars(
            select(Subscription).where(
                Subscription.account_id == account_id, Subscription.revoked_reason == reason
            )
        ):
            if not sub.revoked_invoice_id or not intent:
                continue
            if intent in self.gateway.invoice_payment_intents(sub.revoked_invoice_id):
                self.devices.lock_account(account_id)
                sub.revoked_invoice_id = sub.revoked_reason = None
                self.session.flush()
                return sub
        return None

    def _tell_reader(
        self,
        account: Account,
        sub: Subscription,
        before: tuple[str | None, str, bool] | None,
        signed_out: list[str],
    ) -> None:
        """Email what a change in Stripe did: plan switched, devices signed out, canceled,
        ended. Only changes against our last copy count, so a re-delivered event sends
        nothing twice."""
        plan = self._plan(sub.price_id)
        name = plan.name if plan else "premium"
        base = self.settings.public_url
        stamp = f"{sub.id}:{int(utcnow().timestamp())}"
        if signed_out:
            limit = self.cap_for(account)
            mail = emails.devices_signed_out(signed_out, name, limit, base + "/devices")
            self._send(account, mail, f"evicted:{stamp}:{len(signed_out)}")
        if before is None:
            return
        old_price, old_status, old_cancel = before
        if old_price != sub.price_id and sub.status in LIVE_STATUSES and plan is not None:
            old_plan = self._plan(old_price)
            mail = emails.plan_changed(
                old_plan.name if old_plan else "your old plan",
                plan.name,
                wording.price_text(plan),
                base + "/",
            )
            self._send(account, mail, f"plan_changed:{stamp}:{sub.price_id}")
        if sub.cancel_at_period_end and not old_cancel and sub.status in LIVE_STATUSES:
            ends = sub.cancel_at or sub.current_period_end
            self._send(account, emails.cancellation(name, ends, base + "/"), f"cancel:{stamp}")
        if old_status in LIVE_STATUSES and sub.status in ENDED_STATUSES:
            self._send(account, emails.ended(name, utcnow(), base + "/plans"), f"ended:{sub.id}")

    def _send(self, account: Account, mail: emails.Email, dedupe_key: str) -> None:
        if account.deleted_at is not None:
            return  # erased: there is no address to write to
        self.outbox.enqueue(to=account.email, dedupe_key=dedupe_key, **mail._asdict())

    def revoke_for_charge(self, charge: dict[str, Any], reason: str) -> Subscription | None:
        """A full refund or a dispute of the invoice that paid for the current period ends
        access (if configured)."""
        enabled = (
            self.settings.refund_ends_access
            if reason == "refunded"
            else self.settings.dispute_ends_access
        )
        if not enabled:
            return None
        account_id = self.owner_of_customer(_id(charge.get("customer")))
        if account_id is None:
            return None
        sub = self.current_subscription(account_id)
        if sub is None:
            return None
        sub = self.sync_subscription(sub.id) or sub
        intent = _id(charge.get("payment_intent"))
        if not sub.latest_invoice_id or not intent:
            return None
        if intent not in self.gateway.invoice_payment_intents(sub.latest_invoice_id):
            return None  # an older invoice: the current period is still paid for
        account = self.devices.lock_account(account_id)
        had = self.access_for(account).features
        sub.revoked_invoice_id = sub.latest_invoice_id
        sub.revoked_reason = reason
        self.session.flush()
        self._access_lowered(account, had, reason)
        return sub

    def customer_deleted(self, customer_id: str) -> None:
        row = self.session.scalar(
            select(Customer).where(Customer.stripe_customer_id == customer_id)
        )
        if row is None:
            return
        account = self.session.get(Account, row.account_id)
        had = self.access_for(account).features if account is not None else ()
        row.deleted_at = utcnow()
        for sub in self.session.scalars(
            select(Subscription).where(Subscription.stripe_customer_id == customer_id)
        ):
            if sub.status not in ("canceled", "incomplete_expired"):
                sub.status = "canceled"
        self.session.flush()
        if account is not None:
            self._access_lowered(account, had, "customer_deleted")

    # -- reconcile -----------------------------------------------------------------------------
    def reconcile(
        self, progress: Callable[[Iterable[Customer]], Iterable[Customer]] = lambda x: x
    ) -> list[str]:
        """Re-read every customer's subscriptions from Stripe and correct local state.
        Returns a line per change."""
        changes: list[str] = []
        customers = list(self.session.scalars(select(Customer).order_by(Customer.account_id)))
        for customer in progress(customers):
            if customer.deleted_at is not None:
                continue
            for data in self.gateway.list_subscriptions(customer.stripe_customer_id):
                before = self.session.get(Subscription, data["id"])
                old = (
                    (before.status, before.price_id, before.cancel_at_period_end)
                    if before
                    else None
                )
                sub = self.apply_subscription(data)
                if sub is None:
                    continue
                new = (sub.status, sub.price_id, sub.cancel_at_period_end)
                if old != new:
                    changes.append(f"{customer.account_id} {sub.id}: {_fmt(old)} -> {_fmt(new)}")
        return changes

    # -- emails ------------------------------------------------------------------------------
    def notify(self, account_id: str, kind: str, subject: str, body: str, dedupe_key: str) -> None:
        account = self.session.get(Account, account_id)
        if account is not None:
            self.outbox.enqueue(
                kind=kind, to=account.email, subject=subject, body=body, dedupe_key=dedupe_key
            )

    def _stripe(self, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except StripeUnavailable as exc:
            raise UpstreamError(
                "Stripe is unavailable right now; nothing was charged. Try again in a moment."
            ) from exc
        except StripeRefused as exc:
            # Stripe's own wording is for us (logs), not for the reader.
            log.warning("stripe refused", extra={"error": str(exc), "stripe_code": exc.code})
            raise PaymentProviderError(
                "The payment provider could not start this. Nothing was charged; "
                "try again, or contact us if it keeps happening."
            ) from exc


class SubscriptionInput(NamedTuple):
    """One of a reader's subscriptions as the access computation needs it."""

    id: str
    status: str
    created_at: datetime
    state: SubscriptionState


def access_from_inputs(
    subscriptions: Iterable[SubscriptionInput],
    grants: Iterable[Grant],
    *,
    now: datetime,
    settings: BillingSettings,
) -> Access:
    """``BillingService.access_for`` as a pure function of rows already read: the deciding
    subscription (a live one if any, else the latest), combined with the active grant that
    lasts longest. The token refresh reads these in the same statement as the session."""
    subs = list(subscriptions)
    current = (
        max(subs, key=lambda s: (s.status in LIVE_STATUSES, s.created_at, s.id)) if subs else None
    )
    access = access_from_subscription(
        current.state if current else None,
        now=now,
        grace=settings.grace,
        default_max_devices=settings.default_max_devices,
    )
    active = list(grants)
    return combine(access, max(active, key=lambda g: g.until) if active else None)


def _lowered_reason(sub: Subscription, before: tuple[str | None, str, bool] | None) -> str:
    """The revocation reason for a subscription change that lost features."""
    if sub.status in ENDED_STATUSES or sub.status == "canceled":
        return "canceled"
    if sub.status == "past_due":
        return "past_due"
    if before is not None and before[0] != sub.price_id:
        return "downgraded"
    return sub.status if sub.status not in LIVE_STATUSES else "access_lowered"


def _id(value: Any) -> str | None:
    if isinstance(value, dict):
        return value.get("id")
    return value


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _fmt(state: tuple[Any, ...] | None) -> str:
    if state is None:
        return "(missing)"
    status, price, cancel = state
    return f"{status} {price}{' cancel_at_period_end' if cancel else ''}"


def billing_service() -> BillingService:
    """The request's BillingService, built from the app's configuration."""
    from flask import current_app, g

    from paywall.devices.services import device_service
    from paywall.extensions import db

    if "billing_service" not in g:
        gateway = current_app.extensions.get("paywall.gateway")
        if gateway is None:
            gateway = current_app.extensions["paywall.gateway"] = gateway_for(current_app.config)
        g.billing_service = BillingService(
            db.session,
            gateway,
            device_service(),
            Outbox(db.session),
            BillingSettings.from_config(current_app.config),
        )
    return g.billing_service  # type: ignore[no-any-return]


def gateway_for(config: dict[str, Any]) -> StripeGateway:
    return StripeGateway(
        config["STRIPE_API_KEY"] or "sk_test_not_configured",
        api_base=config["STRIPE_API_BASE"],
        timeout=float(config["STRIPE_TIMEOUT"]),
        max_network_retries=int(config["STRIPE_MAX_NETWORK_RETRIES"]),
        api_version=config.get("STRIPE_API_VERSION") or API_VERSION,
    )
