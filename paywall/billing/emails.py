"""The text of every email the billing domain sends. Each names what happened, what it means
for the reader, and the one page to go to."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from paywall.accounts.emails import Email
from paywall.brand import day


def cancellation(plan: str, ends: datetime | None, account_link: str) -> Email:
    return Email(
        "subscription_canceled",
        f"Your {plan} subscription is canceled",
        f"Your {plan} subscription is canceled. You keep full access until {day(ends)}; "
        "you will not be charged again.\n\n"
        f"Changed your mind? Renew from your account before then: {account_link}",
    )


def ended(plan: str, ended_at: datetime | None, plans_link: str) -> Email:
    return Email(
        "subscription_ended",
        f"Your {plan} subscription has ended",
        f"Your {plan} subscription ended on {day(ended_at)}, and with it your premium access.\n\n"
        f"You can come back at any time: {plans_link}",
    )


def plan_changed(old: str, new: str, new_price: str, account_link: str) -> Email:
    return Email(
        "plan_changed",
        f"Your plan is now {new}",
        f"Your plan changed from {old} to {new} ({new_price}).\n\n"
        f"See your plan, devices and invoices: {account_link}",
    )


def devices_signed_out(names: Sequence[str], plan: str, limit: int, devices_link: str) -> Email:
    listed = "\n".join(f"- {name}" for name in names)
    count = len(names)
    return Email(
        "devices_evicted",
        f"{count} device{'s were' if count != 1 else ' was'} signed out",
        f"Your plan {plan} allows {limit} device{'s' if limit != 1 else ''} at once, so these "
        f"were signed out (the least recently used first):\n\n{listed}\n\n"
        f"Sign in on them again to use them, or manage your devices: {devices_link}",
    )


def payment_failed(payment_method_link: str, grace_days: int) -> Email:
    return Email(
        "payment_failed",
        "Your payment failed: update your card",
        "We could not charge your card for your subscription. Update your payment method "
        f"here:\n\n{payment_method_link}\n\n"
        f"You keep access for {grace_days} days while Stripe retries.",
    )


def payment_received(amount: str, number: str, invoice_link: str | None) -> Email:
    receipt = f"\n\nYour invoice and receipt: {invoice_link}" if invoice_link else ""
    return Email(
        "payment_received",
        "Thank you: payment received",
        f"We received your payment of {amount} (invoice {number}). Enjoy your reading.{receipt}",
    )


def trial_ending(plan: str, ends: datetime | None, price: str, account_link: str) -> Email:
    return Email(
        "trial_ending",
        f"Your {plan} trial ends on {day(ends)}",
        f"Your free trial of {plan} ends on {day(ends)}. Then your subscription starts at "
        f"{price}, unless you cancel before.\n\nYour account: {account_link}",
    )


def renewal_coming(plan: str, when: datetime | None, amount: str, account_link: str) -> Email:
    return Email(
        "renewal_coming",
        f"Your {plan} subscription renews on {day(when)}",
        f"Your {plan} subscription renews on {day(when)} for {amount}. Nothing to do if you "
        f"want to keep reading.\n\nChange or cancel it from your account: {account_link}",
    )
