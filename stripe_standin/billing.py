"""What happens to subscriptions, invoices and payments: checkout completion, renewals, failed
payments, cancellations, refunds, disputes and the passing of time.

Every function takes the ``Store``, holds its lock, changes objects and emits the events Stripe
would, in Stripe's order.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from . import objects
from .errors import StripeError, card_declined, invalid
from .render import emit, present
from .routes_discounts import redeemable
from .store import Store, new_id

SUCCESS_CARD = "4242424242424242"
DECLINE_CARD = "4000000000000341"
ENDED = ("canceled", "incomplete_expired")
RETRY_DELAY = 3 * 86400
MONTH = 30 * 86400  # a ``repeating`` coupon's month, as the stand-in counts it


# -- customers -------------------------------------------------------------------------------


def create_customer(store: Store, **fields: Any) -> dict[str, Any]:
    with store.lock:
        customer = store.add(
            "customer", objects.customer(id=new_id("cus_", 14), created=store.now(), **fields)
        )
        emit(store, "customer.created", customer)
        return customer


def delete_customer(store: Store, customer: dict[str, Any]) -> dict[str, Any]:
    """Cancel the customer's subscriptions, then delete it (``customer.deleted``)."""
    with store.lock:
        for sub in store.all("subscription"):
            if sub["customer"] == customer["id"] and sub["status"] not in ENDED:
                cancel_subscription(store, sub)
        emit(store, "customer.deleted", customer)
        store.deleted.add(customer["id"])
        return objects.deleted_customer(customer["id"])


# -- checkout --------------------------------------------------------------------------------


def complete_checkout(
    store: Store,
    session_id: str,
    card_number: str,
    email: str | None = None,
    name: str | None = None,
    promotion_code: str | None = None,
) -> dict[str, Any]:
    """Pay a Checkout Session with a test card number (what the hosted page does), with the
    promotion code the reader typed, if the session allows codes."""
    with store.lock:
        session = store.require("checkout.session", session_id)
        now = store.now()
        if session["status"] == "open" and session["expires_at"] <= now:
            expire_session(store, session)
        if session["status"] == "complete":
            raise StripeError("This Checkout Session is already complete.", status=409)
        if session["status"] == "expired":
            raise StripeError("This Checkout Session has expired.", status=410)
        promo = None
        if promotion_code and promotion_code.strip():
            if not session["allow_promotion_codes"]:
                raise invalid("This Checkout Session does not accept promotion codes.")
            promo = redeemable(store, promotion_code, session["customer"])
        card_outcome(card_number)
        digits = "".join(card_number.split())
        if session["customer"]:
            customer = store.require("customer", session["customer"], "customer")
        else:
            customer = create_customer(
                store, email=email or session["customer_email"], name=name or None
            )
        data = store.checkout_data.get(session_id, {})
        sub_data = data.get("subscription_data", {})
        lines = [(item["price"]["id"], item["quantity"]) for item in data.get("line_items", [])]
        sub = start_subscription(
            store,
            customer,
            lines,
            metadata=dict(sub_data.get("metadata") or {}),
            description=sub_data.get("description"),
            last4=digits[-4:],
            trial_period_days=sub_data.get("trial_period_days"),
            promotion_code=promo,
            checkout_session=session_id,
        )
        first = store.require("invoice", sub["latest_invoice"])
        if promo is not None:
            session["discounts"] = [{"coupon": None, "promotion_code": promo["id"]}]
        session["total_details"]["amount_discount"] = sum(
            d["amount"] for d in first["total_discount_amounts"]
        )
        session["amount_total"] = first["amount_due"]
        session.update(
            status="complete",
            # Stripe: a trial (or a 100% code) is paid with nothing charged today.
            payment_status="paid" if first["amount_due"] else "no_payment_required",
            customer=customer["id"],
            customer_details=objects.customer_details(
                customer["email"] or email, customer["name"] or name
            ),
            subscription=sub["id"],
            invoice=sub["latest_invoice"],
            collected_information={
                "business_name": None,
                "individual_name": None,
                "shipping_details": None,
            },
        )
        emit(store, "checkout.session.completed", session)
        return session


def expire_session(store: Store, session: dict[str, Any]) -> dict[str, Any]:
    with store.lock:
        if session["status"] != "open":
            raise invalid(
                'Only Checkout Sessions with a status in ["open"] can be expired. '
                f'This Checkout Session has a status of "{session["status"]}".'
            )
        session["status"] = "expired"
        session["url"] = None
        emit(store, "checkout.session.expired", session)
        return session


# -- subscriptions ---------------------------------------------------------------------------


def period_end(sub: dict[str, Any]) -> int:
    return max(int(item["current_period_end"]) for item in sub["items"]["data"])


def period_start(sub: dict[str, Any]) -> int:
    return min(int(item["current_period_start"]) for item in sub["items"]["data"])


def start_subscription(
    store: Store,
    customer: dict[str, Any],
    lines: list[tuple[str, int]],
    *,
    metadata: dict[str, str],
    description: str | None = None,
    last4: str = "4242",
    trial_period_days: int | None = None,
    promotion_code: dict[str, Any] | None = None,
    checkout_session: str | None = None,
) -> dict[str, Any]:
    """An active subscription with its first invoice paid, or a trialing one (its first
    period is the trial, invoiced at 0); emits created + invoice/charge events."""
    with store.lock:
        now = store.now()
        sub_id, invoice_id = new_id("sub_"), new_id("in_")
        trial_end = now + trial_period_days * 86400 if trial_period_days else None
        items = []
        for price_id, quantity in lines:
            price_obj = store.require("price", price_id, "price")
            items.append(
                objects.subscription_item(
                    id=new_id("si_", 14),
                    created=now,
                    subscription=sub_id,
                    price_id=price_id,
                    quantity=quantity,
                    period_start=now,
                    period_end=trial_end or now + objects.period_seconds(price_obj["recurring"]),
                )
            )
        currency = store.require("price", lines[0][0])["currency"]
        sub = objects.subscription(
            id=sub_id,
            created=now,
            customer=customer["id"],
            currency=currency,
            items=items,
            metadata=metadata,
            latest_invoice=invoice_id,
            description=description,
            status="trialing" if trial_end else "active",
        )
        if trial_end:
            sub.update(trial_start=now, trial_end=trial_end)
        if promotion_code is not None:
            sub["discounts"] = [
                redeem(store, promotion_code, customer["id"], sub_id, checkout_session)["id"]
            ]
        card = store.add(
            "payment_method",
            objects.payment_method(
                id=new_id("pm_"), created=now, customer=customer["id"], last4=last4
            ),
        )
        sub["default_payment_method"] = card["id"]
        store.add("subscription", sub)
        if customer["currency"] is None:
            customer["currency"] = currency
        emit(store, "customer.subscription.created", sub)
        bill(
            store,
            sub,
            billing_reason="subscription_create",
            outcome="succeeded",
            invoice_id=invoice_id,
            period=(now, now),
            last4=last4,
            trial=bool(trial_end),
        )
        return sub


def redeem(
    store: Store,
    promo: dict[str, Any],
    customer_id: str,
    subscription_id: str,
    checkout_session: str | None,
) -> dict[str, Any]:
    """A Discount on the subscription from a promotion code; counts the redemption."""
    with store.lock:
        coupon = store.require("coupon", promo["promotion"]["coupon"])
        now = store.now()
        end = None
        if coupon["duration"] == "repeating":
            end = now + int(coupon["duration_in_months"]) * MONTH
        discount = store.add(
            "discount",
            objects.discount(
                id=new_id("di_"),
                start=now,
                end=end,
                coupon_id=coupon["id"],
                promotion_code=promo["id"],
                customer=customer_id,
                subscription=subscription_id,
                checkout_session=checkout_session,
            ),
        )
        promo["times_redeemed"] += 1
        coupon["times_redeemed"] += 1
        if coupon["max_redemptions"] is not None:
            coupon["valid"] = coupon["times_redeemed"] < coupon["max_redemptions"]
        return discount


def _discounts_for(store: Store, sub: dict[str, Any], period_start: int) -> list[dict[str, Any]]:
    """The subscription's discounts that apply to an invoice for the period from
    ``period_start`` (a ``repeating`` coupon stops at its end)."""
    found = []
    for discount_id in sub["discounts"]:
        discount = store.get("discount", discount_id)
        if discount is not None and (discount["end"] is None or discount["end"] > period_start):
            found.append(discount)
    return found


@contextmanager
def updating(store: Store, sub: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Emit ``customer.subscription.updated`` (with previous_attributes) if ``sub`` changed."""
    with store.lock:
        before = present(store, sub)
        yield before
        if present(store, sub) != before:
            emit(store, "customer.subscription.updated", sub, before)


def set_cancel_at_period_end(store: Store, sub: dict[str, Any], flag: bool) -> None:
    if flag:
        sub.update(
            cancel_at_period_end=True,
            cancel_at=period_end(sub),
            canceled_at=store.now(),
        )
        sub["cancellation_details"]["reason"] = "cancellation_requested"
    else:
        sub.update(cancel_at_period_end=False, cancel_at=None, canceled_at=None)
        sub["cancellation_details"] = {"comment": None, "feedback": None, "reason": None}


def swap_price(
    store: Store, sub: dict[str, Any], item: dict[str, Any], price_obj: dict[str, Any]
) -> bool:
    """Point ``item`` at another price; returns True if the billing period restarted.

    Same interval: the period is kept and nothing is invoiced (proration is not modelled).
    Different interval: Stripe resets the billing cycle to now and invoices immediately.
    """
    old = store.require("price", item["price"])
    item["price"] = price_obj["id"]
    if old["recurring"] == price_obj["recurring"]:
        return False
    now = store.now()
    item["current_period_start"] = now
    item["current_period_end"] = now + objects.period_seconds(price_obj["recurring"])
    sub["billing_cycle_anchor"] = now
    return True


def change_plan(store: Store, sub: dict[str, Any], price_obj: dict[str, Any]) -> dict[str, Any]:
    """Swap the (first) item's price, as the portal's "switch plan" does."""
    with store.lock:
        if sub["status"] in ENDED:
            raise invalid(f"Subscription {sub['id']} is canceled.", code="subscription_canceled")
        with updating(store, sub):
            if swap_price(store, sub, sub["items"]["data"][0], price_obj):
                now = store.now()
                bill(
                    store,
                    sub,
                    billing_reason="subscription_update",
                    outcome="succeeded",
                    period=(now, now),
                )
        return sub


def card_outcome(card_number: str) -> str:
    """``succeeded`` for 4242..., raises the card error Stripe shows for the others."""
    digits = "".join(card_number.split())
    if digits == DECLINE_CARD:
        raise card_declined()
    if digits != SUCCESS_CARD:
        raise card_declined(
            "Your card number is invalid.", code="invalid_number", decline_code=None
        )
    return "succeeded"


def cancel_subscription(
    store: Store,
    sub: dict[str, Any],
    *,
    reason: str = "cancellation_requested",
    comment: str | None = None,
    feedback: str | None = None,
    ended_at: int | None = None,
) -> dict[str, Any]:
    """Cancel now (or at ``ended_at``): status canceled, ``customer.subscription.deleted``."""
    with store.lock:
        if sub["status"] in ENDED:
            raise invalid(
                f"A canceled subscription can only update its cancellation_details and "
                f"metadata. Subscription {sub['id']} is already canceled.",
                code="subscription_canceled",
            )
        now = store.now()
        sub["status"] = "canceled"
        sub["ended_at"] = ended_at if ended_at is not None else now
        if sub["canceled_at"] is None or ended_at is None:
            sub["canceled_at"] = now
        details = sub["cancellation_details"]
        details["reason"] = reason
        if comment is not None:
            details["comment"] = comment
        if feedback is not None:
            details["feedback"] = feedback
        emit(store, "customer.subscription.deleted", sub)
        return sub


def _live_subscription(store: Store, sub_id: str) -> dict[str, Any]:
    sub = store.require("subscription", sub_id)
    if sub["status"] in ENDED:
        raise invalid(f"Subscription {sub_id} is canceled.", code="subscription_canceled")
    return sub


def _ends_this_period(sub: dict[str, Any]) -> bool:
    return bool(sub["cancel_at"] and sub["cancel_at"] <= period_end(sub))


def _advance_period(store: Store, sub: dict[str, Any]) -> tuple[int, int]:
    """Move every item to its next period; returns the period just finished."""
    finished = (period_start(sub), period_end(sub))
    for item in sub["items"]["data"]:
        price_obj = store.require("price", item["price"])
        start = item["current_period_end"]
        item["current_period_start"] = start
        item["current_period_end"] = start + objects.period_seconds(price_obj["recurring"])
    return finished


def _cycle(store: Store, sub_id: str, outcome: str) -> dict[str, Any]:
    with store.lock:
        sub = _live_subscription(store, sub_id)
        if sub["status"] == "paused":
            raise invalid(f"Subscription {sub_id} is paused; resume it first.")
        if _ends_this_period(sub):
            return cancel_subscription(store, sub, ended_at=sub["cancel_at"])
        latest = store.get("invoice", sub["latest_invoice"] or "")
        with updating(store, sub):
            if outcome == "succeeded" and latest is not None and latest["status"] == "open":
                attempt_payment(store, latest, "succeeded")
            else:
                finished = _advance_period(store, sub)
                bill(
                    store,
                    sub,
                    billing_reason="subscription_cycle",
                    outcome=outcome,
                    period=finished,
                    last4="4242" if outcome == "succeeded" else DECLINE_CARD[-4:],
                )
            sub["status"] = "active" if outcome == "succeeded" else "past_due"
        return sub


def renew(store: Store, sub_id: str) -> dict[str, Any]:
    """The period ends and the renewal is paid (or an outstanding open invoice finally is)."""
    return _cycle(store, sub_id, "succeeded")


def fail_renewal(store: Store, sub_id: str) -> dict[str, Any]:
    """The period ends and the renewal charge is declined: invoice open, past_due."""
    return _cycle(store, sub_id, "failed")


def require_action(store: Store, sub_id: str) -> dict[str, Any]:
    """The renewal needs 3-D Secure: invoice open, payment_action_required, past_due."""
    return _cycle(store, sub_id, "requires_action")


def mark_unpaid(store: Store, sub_id: str) -> dict[str, Any]:
    """Retries exhausted with "mark as unpaid" configured."""
    with store.lock:
        sub = _live_subscription(store, sub_id)
        with updating(store, sub):
            sub["status"] = "unpaid"
        return sub


def pause(store: Store, sub_id: str) -> dict[str, Any]:
    with store.lock:
        sub = _live_subscription(store, sub_id)
        if sub["status"] == "paused":
            raise invalid(f"Subscription {sub_id} is already paused.")
        before = present(store, sub)
        sub["status"] = "paused"
        emit(store, "customer.subscription.paused", sub)
        emit(store, "customer.subscription.updated", sub, before)
        return sub


def resume(store: Store, sub_id: str, billing_cycle_anchor: str = "now") -> dict[str, Any]:
    """Resume a paused subscription; with anchor ``now`` a new period starts and is invoiced."""
    with store.lock:
        sub = _live_subscription(store, sub_id)
        if sub["status"] != "paused":
            raise invalid(
                f"Subscription {sub_id} can only be resumed if it is paused; "
                f"its status is {sub['status']}."
            )
        before = present(store, sub)
        sub["status"] = "active"
        emit(store, "customer.subscription.resumed", sub)
        if billing_cycle_anchor == "now":
            now = store.now()
            for item in sub["items"]["data"]:
                price_obj = store.require("price", item["price"])
                item["current_period_start"] = now
                item["current_period_end"] = now + objects.period_seconds(price_obj["recurring"])
            sub["billing_cycle_anchor"] = now
            bill(
                store,
                sub,
                billing_reason="subscription_update",
                outcome="succeeded",
                period=(now, now),
            )
        emit(store, "customer.subscription.updated", sub, before)
        return sub


# -- invoices and payments -------------------------------------------------------------------


def bill(
    store: Store,
    sub: dict[str, Any],
    *,
    billing_reason: str,
    outcome: str,
    period: tuple[int, int],
    invoice_id: str | None = None,
    last4: str = "4242",
    trial: bool = False,
) -> dict[str, Any]:
    """Invoice the subscription's current period (at 0 for a trial), less its discounts,
    finalize it and attempt payment; an invoice of 0 is paid with no charge, as Stripe does."""
    with store.lock:
        now = store.now()
        customer = store.objects["customer"][sub["customer"]]
        invoice_id = invoice_id or new_id("in_")
        lines = []
        for item in sub["items"]["data"]:
            price_obj = store.require("price", item["price"])
            product = store.get("product", price_obj["product"]) or {"name": price_obj["id"]}
            amount = objects.format_amount(price_obj["unit_amount"], price_obj["currency"])
            interval = (price_obj["recurring"] or {}).get("interval", "period")
            line = objects.invoice_line(
                invoice=invoice_id,
                subscription=sub["id"],
                subscription_item=item["id"],
                price_obj=price_obj,
                quantity=item["quantity"],
                description=f"Trial period for {product['name']}"
                if trial
                else f"{item['quantity']} × {product['name']} (at {amount} / {interval})",
                period_start=item["current_period_start"],
                period_end=item["current_period_end"],
            )
            if trial:
                line["amount"] = line["subtotal"] = 0
                line["pricing"]["unit_amount_decimal"] = "0"
            lines.append(line)
        discounts = [] if trial else _discounts_for(store, sub, period[1])
        for line in lines:
            left = line["amount"]
            for discount in discounts:
                off = objects.discount_amount(
                    store.require("coupon", discount["source"]["coupon"]), left
                )
                left -= off
                line["discount_amounts"].append({"amount": off, "discount": discount["id"]})
                line["discounts"].append(discount["id"])
        invoice = objects.invoice(
            id=invoice_id,
            created=now,
            customer=customer,
            subscription=sub,
            lines=lines,
            billing_reason=billing_reason,
            period_start=period[0],
            period_end=period[1],
        )
        if discounts:
            off = {d["id"]: 0 for d in discounts}
            for line in lines:
                for entry in line["discount_amounts"]:
                    off[entry["discount"]] += entry["amount"]
            taken = sum(off.values())
            invoice["discounts"] = [d["id"] for d in discounts]
            invoice["total_discount_amounts"] = [
                {"amount": amount, "discount": discount_id} for discount_id, amount in off.items()
            ]
            for key in ("total", "total_excluding_tax", "amount_due", "amount_remaining"):
                invoice[key] -= taken
        store.add("invoice", invoice)
        sub["latest_invoice"] = invoice_id
        emit(store, "invoice.created", invoice)

        sequence = customer["next_invoice_sequence"]
        customer["next_invoice_sequence"] = sequence + 1
        invoice.update(
            status="open",
            number=f"{customer['invoice_prefix']}-{sequence:04d}",
            effective_at=now,
            hosted_invoice_url=f"{store.public_url}/invoices/{invoice_id}",
            invoice_pdf=f"{store.public_url}/invoices/{invoice_id}/pdf",
        )
        invoice["status_transitions"]["finalized_at"] = now
        emit(store, "invoice.finalized", invoice)
        for discount in discounts:
            coupon = store.require("coupon", discount["source"]["coupon"])
            if coupon["duration"] == "once" and discount["id"] in sub["discounts"]:
                sub["discounts"] = [d for d in sub["discounts"] if d != discount["id"]]

        if invoice["amount_due"] == 0:
            invoice.update(status="paid", attempted=True, next_payment_attempt=None)
            invoice["status_transitions"]["paid_at"] = now
            emit(store, "invoice.paid", invoice)
            emit(store, "invoice.payment_succeeded", invoice)
            return invoice

        intent = store.add(
            "payment_intent",
            objects.payment_intent(
                id=new_id("pi_"),
                created=now,
                amount=invoice["amount_due"],
                currency=invoice["currency"],
                customer=customer["id"],
                description=(
                    "Subscription creation"
                    if billing_reason == "subscription_create"
                    else "Subscription update"
                ),
                payment_method=sub["default_payment_method"] or new_id("pm_"),
            ),
        )
        store.add(
            "invoice_payment",
            objects.invoice_payment(
                id=new_id("inpay_"), created=now, invoice=invoice, payment_intent=intent["id"]
            ),
        )
        attempt_payment(store, invoice, outcome, last4=last4)
        return invoice


def default_payment(store: Store, invoice: dict[str, Any]) -> dict[str, Any]:
    for payment in store.all("invoice_payment"):
        if payment["invoice"] == invoice["id"] and payment["is_default"]:
            return payment
    raise invalid(f"Invoice {invoice['id']} has no payment.")


def attempt_payment(
    store: Store, invoice: dict[str, Any], outcome: str, last4: str = "4242"
) -> dict[str, Any]:
    """Try to collect an open invoice: ``succeeded``, ``failed`` or ``requires_action``."""
    with store.lock:
        if invoice["status"] != "open":
            raise invalid(f"Invoice {invoice['id']} is {invoice['status']}, not open.")
        now = store.now()
        payment = default_payment(store, invoice)
        intent = store.objects["payment_intent"][payment["payment"]["payment_intent"]]
        customer = store.objects["customer"][invoice["customer"]]
        invoice["attempted"] = True
        invoice["attempt_count"] += 1
        if outcome == "requires_action":
            intent["status"] = "requires_action"
            intent["next_action"] = {
                "type": "use_stripe_sdk",
                "use_stripe_sdk": {"type": "three_d_secure_redirect"},
            }
            invoice["next_payment_attempt"] = None
            emit(store, "invoice.payment_action_required", invoice)
            return invoice
        succeeded = outcome == "succeeded"
        charge = store.add(
            "charge",
            objects.charge(
                id=new_id("ch_"),
                created=now,
                amount=invoice["amount_due"],
                currency=invoice["currency"],
                customer=customer,
                payment_intent=intent["id"],
                payment_method=intent["payment_method"],
                description=intent["description"],
                last4=last4,
                succeeded=succeeded,
            ),
        )
        intent["latest_charge"] = charge["id"]
        intent["next_action"] = None
        if succeeded:
            intent.update(status="succeeded", amount_received=intent["amount"])
            intent["last_payment_error"] = None
            invoice.update(
                status="paid",
                amount_paid=invoice["amount_due"],
                amount_remaining=0,
                next_payment_attempt=None,
            )
            invoice["status_transitions"]["paid_at"] = now
            payment.update(status="paid", amount_paid=invoice["amount_due"])
            payment["status_transitions"]["paid_at"] = now
            customer["delinquent"] = False
            emit(store, "charge.succeeded", charge)
            emit(store, "invoice.paid", invoice)
            emit(store, "invoice.payment_succeeded", invoice)
        else:
            intent["status"] = "requires_payment_method"
            intent["last_payment_error"] = {
                "type": "card_error",
                "code": "card_declined",
                "decline_code": "generic_decline",
                "message": "Your card was declined.",
                "charge": charge["id"],
            }
            invoice["next_payment_attempt"] = now + RETRY_DELAY
            customer["delinquent"] = True
            emit(store, "charge.failed", charge)
            emit(store, "invoice.payment_failed", invoice)
        return invoice


def pay_invoice(store: Store, invoice: dict[str, Any], outcome: str) -> dict[str, Any]:
    """``POST /v1/invoices/{id}/pay``; settles the subscription's status like Stripe."""
    with store.lock:
        sub = store.get("subscription", objects.invoice_subscription(invoice) or "")
        if sub is None or sub["status"] in ENDED:
            return attempt_payment(store, invoice, outcome)
        with updating(store, sub):
            attempt_payment(store, invoice, outcome)
            if invoice["status"] == "paid" and sub["latest_invoice"] == invoice["id"]:
                sub["status"] = "active"
        return invoice


# -- refunds and disputes --------------------------------------------------------------------


def refund_charge(
    store: Store,
    charge: dict[str, Any],
    amount: int | None,
    reason: str | None,
    metadata: dict[str, str],
) -> dict[str, Any]:
    with store.lock:
        if charge["status"] != "succeeded":
            raise invalid(f"Charge {charge['id']} has not succeeded and cannot be refunded.")
        if charge["disputed"]:
            raise invalid(
                f"Charge {charge['id']} has been charged back; cannot issue a refund.",
                code="charge_disputed",
            )
        remaining = charge["amount"] - charge["amount_refunded"]
        if remaining <= 0:
            raise invalid(
                f"Charge {charge['id']} has already been refunded.",
                code="charge_already_refunded",
            )
        if amount is None:
            amount = remaining
        if amount <= 0:
            raise invalid("Invalid positive integer", "amount")
        if amount > remaining:
            raise invalid(
                f"Refund amount ({objects.format_amount(amount, charge['currency'])}) is "
                f"greater than unrefunded amount on charge "
                f"({objects.format_amount(remaining, charge['currency'])})",
                "amount",
                code="amount_too_large",
            )
        before = present(store, charge)
        refund = store.add(
            "refund",
            objects.refund(
                id=new_id("re_"),
                created=store.now(),
                charge_obj=charge,
                amount=amount,
                reason=reason,
                metadata=metadata,
            ),
        )
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
        charge["refunds"]["data"].insert(0, copy.deepcopy(refund))
        emit(store, "charge.refunded", charge, before)
        emit(store, "refund.created", refund)
        return refund


def dispute_charge(
    store: Store, charge: dict[str, Any], reason: str = "fraudulent", amount: int | None = None
) -> dict[str, Any]:
    with store.lock:
        if charge["status"] != "succeeded":
            raise invalid(f"Charge {charge['id']} has not succeeded and cannot be disputed.")
        if charge["disputed"]:
            raise invalid(f"Charge {charge['id']} is already disputed.")
        dispute = store.add(
            "dispute",
            objects.dispute(
                id=new_id("dp_"),
                created=store.now(),
                charge_obj=charge,
                reason=reason,
                amount=amount if amount is not None else charge["amount"],
            ),
        )
        charge["disputed"] = True
        emit(store, "charge.dispute.created", dispute)
        return dispute


def close_dispute(store: Store, dispute: dict[str, Any], status: str) -> dict[str, Any]:
    """The issuer decides: ``won`` (``charge.dispute.closed``, then the withdrawn funds come
    back: ``charge.dispute.funds_reinstated``) or ``lost`` (``charge.dispute.closed``)."""
    if status not in ("won", "lost"):
        raise invalid("status must be 'won' or 'lost'.", "status")
    with store.lock:
        if dispute["status"] in ("won", "lost"):
            raise invalid(f"Dispute {dispute['id']} is already closed.")
        before = present(store, dispute)
        dispute["status"] = status
        dispute["is_charge_refundable"] = False
        emit(store, "charge.dispute.closed", dispute, before)
        if status == "won":
            emit(store, "charge.dispute.funds_reinstated", dispute)
        return dispute


def fail_refund(store: Store, refund: dict[str, Any], status: str) -> dict[str, Any]:
    """The refund ``failed`` at the card network or was ``canceled``: the money stays with
    the merchant, so the charge is no longer refunded by that amount."""
    if status not in ("failed", "canceled"):
        raise invalid("status must be 'failed' or 'canceled'.", "status")
    with store.lock:
        if refund["status"] in ("failed", "canceled"):
            raise invalid(f"Refund {refund['id']} has already {refund['status']}.")
        charge = store.require("charge", refund["charge"])
        before = present(store, refund)
        refund["status"] = status
        if status == "failed":
            refund["failure_reason"] = "expired_or_canceled_card"
            refund["failure_balance_transaction"] = new_id("txn_")
        charge["amount_refunded"] = max(0, charge["amount_refunded"] - refund["amount"])
        charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
        charge["refunds"]["data"] = [
            copy.deepcopy(refund) if r["id"] == refund["id"] else r
            for r in charge["refunds"]["data"]
        ]
        if status == "failed":
            emit(store, "refund.failed", refund)
        emit(store, "refund.updated", refund, before)
        emit(store, "charge.refund.updated", refund, before)
        return refund


# -- time ------------------------------------------------------------------------------------


def advance_clock(store: Store, seconds: int, renew_due: bool = False) -> int:
    """Move the clock forward and apply what falls due: expiring Checkout Sessions, ending
    subscriptions set to cancel, ending ``pause_collection`` and (if ``renew_due``) renewals."""
    if seconds < 0:
        raise invalid("The clock can only move forward.", "seconds")
    with store.lock:
        store.clock_offset += seconds
        now = store.now()
        for session in reversed(store.all("checkout.session")):
            if session["status"] == "open" and session["expires_at"] <= now:
                expire_session(store, session)
        for sub in reversed(store.all("subscription")):
            _apply_due(store, sub, now, renew_due)
        return now


def _apply_due(store: Store, sub: dict[str, Any], now: int, renew_due: bool) -> None:
    while sub["status"] not in ENDED:
        if sub["cancel_at"] is not None and sub["cancel_at"] <= now:
            cancel_subscription(store, sub, ended_at=sub["cancel_at"])
            return
        pause_collection = sub["pause_collection"]
        if pause_collection and (pause_collection.get("resumes_at") or now + 1) <= now:
            with updating(store, sub):
                sub["pause_collection"] = None
            continue
        if renew_due and sub["status"] in ("active", "trialing") and period_end(sub) <= now:
            renew(store, sub["id"])
            continue
        return


def update_payment_method(store: Store, sub: dict[str, Any], card_number: str) -> dict[str, Any]:
    """The portal's "update payment method": a new card becomes the subscription's default."""
    with store.lock:
        card_outcome(card_number)
        digits = "".join(card_number.split())
        card = store.add(
            "payment_method",
            objects.payment_method(
                id=new_id("pm_"), created=store.now(), customer=sub["customer"], last4=digits[-4:]
            ),
        )
        with updating(store, sub):
            sub["default_payment_method"] = card["id"]
        return card


def announce_renewal(store: Store, sub_id: str) -> dict[str, Any]:
    """``invoice.upcoming``: Stripe's notice some days before a renewal, with a preview of the
    invoice it will create (a preview has no id, https://docs.stripe.com/api/invoices/upcoming)."""
    with store.lock:
        sub = _live_subscription(store, sub_id)
        customer = store.require("customer", sub["customer"], "customer")
        item = sub["items"]["data"][0]
        price_obj = store.require("price", item["price"])
        start = period_end(sub)
        end = start + objects.period_seconds(price_obj["recurring"])
        product = store.get("product", price_obj["product"]) or {"name": price_obj["id"]}
        line = objects.invoice_line(
            invoice="upcoming",
            subscription=sub["id"],
            subscription_item=item["id"],
            price_obj=price_obj,
            quantity=item["quantity"],
            description=f"{item['quantity']} × {product['name']}",
            period_start=start,
            period_end=end,
        )
        preview = objects.invoice(
            id="upcoming",
            created=store.now(),
            customer=customer,
            subscription=sub,
            lines=[line],
            billing_reason="upcoming",
            period_start=start,
            period_end=end,
        )
        preview.pop("id")
        preview["next_payment_attempt"] = start
        emit(store, "invoice.upcoming", preview)
        return sub


def announce_trial_end(store: Store, sub_id: str) -> dict[str, Any]:
    """``customer.subscription.trial_will_end``, three days before a trial ends."""
    with store.lock:
        sub = _live_subscription(store, sub_id)
        emit(store, "customer.subscription.trial_will_end", sub)
        return sub
