"""Builders for Stripe API objects.

Every object starts as a deep copy of Stripe's own example of that resource (``fixtures.json``,
a subset of stripe/openapi's ``fixtures3.json``) with fields overridden, so each key of the real
shape is present. Fields the stand-in does not model are set to what a fresh test-mode object
has (mostly ``null``).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import secrets
from pathlib import Path
from typing import Any

from .store import new_id

FIXTURES: dict[str, dict[str, Any]] = json.loads(
    (Path(__file__).with_name("fixtures.json")).read_text(encoding="utf-8")
)["resources"]

INTERVAL_SECONDS = {"day": 86400, "week": 7 * 86400, "month": 30 * 86400, "year": 365 * 86400}
CURRENCY_SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "cad": "CA$", "aud": "A$"}
ZERO_DECIMAL = {"jpy", "krw", "vnd", "clp", "isk", "ugx", "xaf", "xof"}
NULL_ADDRESS = {
    "city": None,
    "country": None,
    "line1": None,
    "line2": None,
    "postal_code": None,
    "state": None,
}


def from_fixture(kind: str, **fields: Any) -> dict[str, Any]:
    """A deep copy of Stripe's example ``kind`` object with ``fields`` overridden."""
    obj = copy.deepcopy(FIXTURES[kind])
    for key, value in fields.items():
        if key not in obj:
            raise KeyError(f"{kind} has no field {key!r}")
        obj[key] = value
    return obj


def list_object(data: list[dict[str, Any]], url: str, has_more: bool = False) -> dict[str, Any]:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


def format_amount(amount: int, currency: str) -> str:
    """``999, "usd"`` -> ``"$9.99"``."""
    currency = currency.lower()
    value = f"{amount:,}" if currency in ZERO_DECIMAL else f"{amount / 100:,.2f}"
    symbol = CURRENCY_SYMBOLS.get(currency)
    return f"{symbol}{value}" if symbol else f"{value} {currency.upper()}"


def period_seconds(recurring: dict[str, Any] | None) -> int:
    if not recurring:
        return INTERVAL_SECONDS["month"]
    return INTERVAL_SECONDS[recurring["interval"]] * int(recurring.get("interval_count") or 1)


def interval_label(recurring: dict[str, Any] | None) -> str:
    if not recurring:
        return "one time"
    count = int(recurring.get("interval_count") or 1)
    interval = recurring["interval"]
    return f"every {count} {interval}s" if count > 1 else f"per {interval}"


# -- catalog ---------------------------------------------------------------------------------


def product(
    *,
    id: str,
    created: int,
    name: str,
    active: bool = True,
    description: str | None = None,
    metadata: dict[str, str] | None = None,
    statement_descriptor: str | None = None,
    unit_label: str | None = None,
    url: str | None = None,
    images: list[str] | None = None,
    tax_code: str | None = None,
) -> dict[str, Any]:
    return from_fixture(
        "product",
        id=id,
        active=active,
        created=created,
        updated=created,
        default_price=None,
        description=description,
        images=images or [],
        marketing_features=[],
        metadata=metadata or {},
        name=name,
        package_dimensions=None,
        shippable=None,
        statement_descriptor=statement_descriptor,
        tax_code=tax_code,
        unit_label=unit_label,
        url=url,
        type="service",
    )


def price(
    *,
    id: str,
    created: int,
    product: str,
    currency: str,
    unit_amount: int,
    recurring: dict[str, Any] | None,
    lookup_key: str | None = None,
    nickname: str | None = None,
    metadata: dict[str, str] | None = None,
    active: bool = True,
    tax_behavior: str = "unspecified",
) -> dict[str, Any]:
    if recurring is not None:
        recurring = {
            "interval": recurring["interval"],
            "interval_count": int(recurring.get("interval_count") or 1),
            "meter": None,
            "usage_type": "licensed",
            "trial_period_days": None,
        }
    return from_fixture(
        "price",
        id=id,
        active=active,
        billing_scheme="per_unit",
        created=created,
        currency=currency,
        custom_unit_amount=None,
        lookup_key=lookup_key,
        metadata=metadata or {},
        nickname=nickname,
        product=product,
        recurring=recurring,
        tax_behavior=tax_behavior,
        tiers_mode=None,
        transform_quantity=None,
        type="recurring" if recurring else "one_time",
        unit_amount=unit_amount,
        unit_amount_decimal=str(unit_amount),
    )


def plan(price_obj: dict[str, Any]) -> dict[str, Any]:
    """The legacy ``plan`` view of a recurring price, as subscription items still carry."""
    recurring = price_obj["recurring"] or {"interval": "month", "interval_count": 1}
    return from_fixture(
        "plan",
        id=price_obj["id"],
        active=price_obj["active"],
        amount=price_obj["unit_amount"],
        amount_decimal=price_obj["unit_amount_decimal"],
        billing_scheme="per_unit",
        created=price_obj["created"],
        currency=price_obj["currency"],
        interval=recurring["interval"],
        interval_count=recurring["interval_count"],
        livemode=False,
        metadata=copy.deepcopy(price_obj["metadata"]),
        meter=None,
        nickname=price_obj["nickname"],
        product=price_obj["product"],
        tiers_mode=None,
        transform_usage=None,
        trial_period_days=None,
        usage_type="licensed",
    )


# -- customers -------------------------------------------------------------------------------


def customer(
    *,
    id: str,
    created: int,
    email: str | None = None,
    name: str | None = None,
    phone: str | None = None,
    description: str | None = None,
    metadata: dict[str, str] | None = None,
    preferred_locales: list[str] | None = None,
) -> dict[str, Any]:
    return from_fixture(
        "customer",
        id=id,
        address=None,
        balance=0,
        created=created,
        currency=None,
        default_source=None,
        delinquent=False,
        description=description,
        discount=None,
        email=email,
        invoice_prefix=secrets.token_hex(4).upper(),
        invoice_settings={
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        livemode=False,
        metadata=metadata or {},
        name=name,
        next_invoice_sequence=1,
        phone=phone,
        preferred_locales=preferred_locales or [],
        shipping=None,
        tax_exempt="none",
        test_clock=None,
    )


def deleted_customer(customer_id: str) -> dict[str, Any]:
    return from_fixture("deleted_customer", id=customer_id, deleted=True, object="customer")


# -- checkout and portal ---------------------------------------------------------------------


def checkout_session(
    *,
    id: str,
    created: int,
    url: str,
    mode: str,
    currency: str | None,
    amount_subtotal: int | None,
    customer: str | None,
    customer_email: str | None,
    client_reference_id: str | None,
    success_url: str | None,
    cancel_url: str | None,
    metadata: dict[str, str],
    allow_promotion_codes: bool | None,
    locale: str | None,
    expires_at: int,
) -> dict[str, Any]:
    return from_fixture(
        "checkout.session",
        id=id,
        after_expiration=None,
        allow_promotion_codes=allow_promotion_codes,
        amount_subtotal=amount_subtotal,
        amount_total=amount_subtotal,
        automatic_tax={"enabled": False, "liability": None, "status": None, "provider": None},
        billing_address_collection=None,
        cancel_url=cancel_url,
        client_reference_id=client_reference_id,
        client_secret=None,
        consent=None,
        consent_collection=None,
        created=created,
        currency=currency,
        custom_fields=[],
        custom_text={
            "after_submit": None,
            "shipping_address": None,
            "submit": None,
            "terms_of_service_acceptance": None,
        },
        customer=customer,
        customer_creation=None,
        customer_details=None,
        customer_email=customer_email,
        expires_at=expires_at,
        invoice=None,
        invoice_creation=None,
        livemode=False,
        locale=locale,
        metadata=metadata,
        mode=mode,
        payment_intent=None,
        payment_link=None,
        payment_method_collection="always",
        payment_method_configuration_details=None,
        payment_method_options={},
        payment_method_types=["card"],
        payment_status="unpaid",
        phone_number_collection={"enabled": False},
        recovered_from=None,
        saved_payment_method_options=None,
        setup_intent=None,
        shipping_address_collection=None,
        shipping_cost=None,
        shipping_options=[],
        status="open",
        submit_type=None,
        subscription=None,
        success_url=success_url,
        total_details={"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        ui_mode="hosted_page",  # "hosted" until 2026-03-25.dahlia
        url=url,
        adaptive_pricing={"enabled": False},
        discounts=[],
        collected_information=None,
        permissions=None,
        wallet_options=None,
        origin_context=None,
        currency_conversion=None,
        customer_account=None,
        integration_identifier=None,
        managed_payments=None,
    )


def customer_details(email: str | None, name: str | None) -> dict[str, Any]:
    details: dict[str, Any] = copy.deepcopy(FIXTURES["checkout.session"]["customer_details"])
    details.update(
        {
            "address": dict(NULL_ADDRESS),
            "email": email,
            "name": name,
            "phone": None,
            "tax_exempt": "none",
            "tax_ids": [],
        }
    )
    return details


def checkout_line_item(
    price_obj: dict[str, Any], quantity: int, description: str
) -> dict[str, Any]:
    amount = price_obj["unit_amount"] * quantity
    return from_fixture(
        "item",
        id=new_id("li_"),
        amount_discount=0,
        amount_subtotal=amount,
        amount_tax=0,
        amount_total=amount,
        currency=price_obj["currency"],
        description=description,
        price=copy.deepcopy(price_obj),
        quantity=quantity,
        metadata={},
        adjustable_quantity=None,
    )


def payment_method(
    *, id: str, created: int, customer: str | None, last4: str, brand: str = "visa"
) -> dict[str, Any]:
    """A card PaymentMethod (https://docs.stripe.com/api/payment_methods/object); the stand-in
    gives every test card an expiry four years ahead."""
    year = dt.datetime.fromtimestamp(created, dt.UTC).year + 4
    return {
        "id": id,
        "object": "payment_method",
        "allow_redisplay": "always",
        "billing_details": {
            "address": {
                "city": None,
                "country": None,
                "line1": None,
                "line2": None,
                "postal_code": None,
                "state": None,
            },
            "email": None,
            "name": None,
            "phone": None,
            "tax_id": None,
        },
        "card": {
            "brand": brand,
            "checks": {
                "address_line1_check": None,
                "address_postal_code_check": None,
                "cvc_check": "pass",
            },
            "country": "US",
            "display_brand": brand,
            "exp_month": 12,
            "exp_year": year,
            "fingerprint": "standin" + last4,
            "funding": "credit",
            "generated_from": None,
            "last4": last4,
            "networks": {"available": [brand], "preferred": None},
            "regulated_status": "unregulated",
            "three_d_secure_usage": {"supported": True},
            "wallet": None,
        },
        "created": created,
        "customer": customer,
        "livemode": False,
        "metadata": {},
        "type": "card",
    }


def portal_session(
    *,
    id: str,
    created: int,
    customer: str,
    return_url: str | None,
    url: str,
    configuration: str,
    locale: str | None,
) -> dict[str, Any]:
    return from_fixture(
        "billing_portal.session",
        id=id,
        configuration=configuration,
        created=created,
        customer=customer,
        flow=None,
        livemode=False,
        locale=locale,
        on_behalf_of=None,
        return_url=return_url,
        url=url,
        customer_account=None,
    )


# -- subscriptions ---------------------------------------------------------------------------


def subscription_item(
    *,
    id: str,
    created: int,
    subscription: str,
    price_id: str,
    quantity: int,
    period_start: int,
    period_end: int,
    metadata: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Stored with ``price`` as an id; ``render`` embeds the current price (and ``plan``)."""
    return from_fixture(
        "subscription_item",
        id=id,
        created=created,
        discounts=[],
        metadata=metadata or {},
        price=price_id,
        quantity=quantity,
        subscription=subscription,
        tax_rates=[],
        plan=None,
        current_period_start=period_start,
        current_period_end=period_end,
        billing_thresholds=None,
    )


def subscription(
    *,
    id: str,
    created: int,
    customer: str,
    currency: str,
    items: list[dict[str, Any]],
    metadata: dict[str, str],
    latest_invoice: str | None,
    description: str | None = None,
    status: str = "active",
) -> dict[str, Any]:
    return from_fixture(
        "subscription",
        id=id,
        application=None,
        application_fee_percent=None,
        automatic_tax={"enabled": False, "liability": None, "disabled_reason": None},
        billing_cycle_anchor=created,
        billing_cycle_anchor_config=None,
        cancel_at=None,
        canceled_at=None,
        cancellation_details={"comment": None, "feedback": None, "reason": None},
        collection_method="charge_automatically",
        created=created,
        currency=currency,
        customer=customer,
        days_until_due=None,
        default_payment_method=None,
        default_source=None,
        default_tax_rates=[],
        description=description,
        discounts=[],
        ended_at=None,
        invoice_settings={
            "account_tax_ids": None,
            "issuer": {"type": "self"},
            "custom_fields": None,
            "description": None,
            "footer": None,
        },
        items=list_object(items, f"/v1/subscription_items?subscription={id}"),
        latest_invoice=latest_invoice,
        livemode=False,
        metadata=metadata,
        next_pending_invoice_item_invoice=None,
        on_behalf_of=None,
        pause_collection=None,
        payment_settings={
            "payment_method_options": None,
            "payment_method_types": None,
            "save_default_payment_method": "off",
        },
        pending_invoice_item_interval=None,
        pending_setup_intent=None,
        pending_update=None,
        schedule=None,
        start_date=created,
        status=status,
        test_clock=None,
        transfer_data=None,
        trial_end=None,
        trial_settings={"end_behavior": {"missing_payment_method": "create_invoice"}},
        trial_start=None,
        cancel_at_period_end=False,
        billing_thresholds=None,
        billing_mode={"type": "classic", "flexible": None},
        customer_account=None,
        managed_payments=None,
        billing_schedules=[],
    )


# -- invoices and payments -------------------------------------------------------------------


def invoice_line(
    *,
    invoice: str,
    subscription: str,
    subscription_item: str,
    price_obj: dict[str, Any],
    quantity: int,
    description: str,
    period_start: int,
    period_end: int,
) -> dict[str, Any]:
    amount = price_obj["unit_amount"] * quantity
    return from_fixture(
        "line_item",
        id=new_id("il_"),
        amount=amount,
        currency=price_obj["currency"],
        description=description,
        discount_amounts=[],
        discountable=True,
        discounts=[],
        invoice=invoice,
        livemode=False,
        metadata={},
        period={"end": period_end, "start": period_start},
        quantity=quantity,
        subscription=subscription,
        pretax_credit_amounts=[],
        taxes=[],
        parent={
            "invoice_item_details": None,
            "subscription_item_details": {
                "invoice_item": None,
                "proration": False,
                "proration_details": {"credited_items": None},
                "subscription": subscription,
                "subscription_item": subscription_item,
            },
            "type": "subscription_item_details",
        },
        pricing={
            "price_details": {"price": price_obj["id"], "product": price_obj["product"]},
            "type": "price_details",
            "unit_amount_decimal": price_obj["unit_amount_decimal"],
        },
        subtotal=amount,
        quantity_decimal=str(quantity),
    )


def invoice(
    *,
    id: str,
    created: int,
    customer: dict[str, Any],
    subscription: dict[str, Any],
    lines: list[dict[str, Any]],
    billing_reason: str,
    period_start: int,
    period_end: int,
) -> dict[str, Any]:
    """A draft subscription invoice; ``billing`` finalizes and pays it."""
    total = sum(line["amount"] for line in lines)
    invoice = from_fixture(
        "invoice",
        id=id,
        account_country="US",
        account_name="Stand-in Publisher",
        account_tax_ids=None,
        amount_due=total,
        amount_paid=0,
        amount_remaining=total,
        amount_shipping=0,
        application=None,
        attempt_count=0,
        attempted=False,
        auto_advance=True,
        automatic_tax={
            "enabled": False,
            "liability": None,
            "status": None,
            "disabled_reason": None,
            "provider": None,
        },
        billing_reason=billing_reason,
        collection_method="charge_automatically",
        created=created,
        currency=subscription["currency"],
        custom_fields=None,
        customer=customer["id"],
        customer_address=None,
        customer_email=customer["email"],
        customer_name=customer["name"],
        customer_phone=customer["phone"],
        customer_shipping=None,
        customer_tax_exempt="none",
        customer_tax_ids=[],
        default_payment_method=None,
        default_source=None,
        default_tax_rates=[],
        description=None,
        discounts=[],
        due_date=None,
        effective_at=None,
        ending_balance=None,
        footer=None,
        from_invoice=None,
        hosted_invoice_url=None,
        invoice_pdf=None,
        issuer={"type": "self"},
        last_finalization_error=None,
        latest_revision=None,
        lines=list_object(lines, f"/v1/invoices/{id}/lines"),
        livemode=False,
        metadata={},
        next_payment_attempt=None,
        number=None,
        on_behalf_of=None,
        payment_settings={
            "default_mandate": None,
            "payment_method_options": None,
            "payment_method_types": None,
        },
        period_end=period_end,
        period_start=period_start,
        post_payment_credit_notes_amount=0,
        pre_payment_credit_notes_amount=0,
        receipt_number=None,
        rendering=None,
        shipping_cost=None,
        shipping_details=None,
        starting_balance=0,
        statement_descriptor=None,
        status="draft",
        status_transitions={
            "finalized_at": None,
            "marked_uncollectible_at": None,
            "paid_at": None,
            "voided_at": None,
        },
        subtotal=total,
        subtotal_excluding_tax=total,
        test_clock=None,
        total=total,
        total_discount_amounts=[],
        total_excluding_tax=total,
        webhooks_delivered_at=None,
        automatically_finalizes_at=None,
        total_pretax_credit_amounts=[],
        total_taxes=[],
        amount_overpaid=0,
        parent={
            "quote_details": None,
            "subscription_details": {
                "metadata": copy.deepcopy(subscription["metadata"]),
                "subscription": subscription["id"],
            },
            "type": "subscription_details",
        },
        customer_account=None,
    )
    # fixtures3.json still carries it; 2025-03-31.basil removed it (see invoice_subscription).
    invoice.pop("subscription", None)
    return invoice


def payment_intent(
    *,
    id: str,
    created: int,
    amount: int,
    currency: str,
    customer: str,
    description: str,
    payment_method: str,
) -> dict[str, Any]:
    return from_fixture(
        "payment_intent",
        id=id,
        amount=amount,
        amount_capturable=0,
        amount_details={"tip": {}},
        amount_received=0,
        application=None,
        application_fee_amount=None,
        automatic_payment_methods=None,
        canceled_at=None,
        cancellation_reason=None,
        capture_method="automatic",
        client_secret=f"{id}_secret_{secrets.token_urlsafe(18)}",
        confirmation_method="automatic",
        created=created,
        currency=currency,
        customer=customer,
        description=description,
        last_payment_error=None,
        latest_charge=None,
        livemode=False,
        metadata={},
        next_action=None,
        on_behalf_of=None,
        payment_method=payment_method,
        payment_method_configuration_details=None,
        payment_method_options={},
        payment_method_types=["card"],
        processing=None,
        receipt_email=None,
        review=None,
        setup_future_usage="off_session",
        shipping=None,
        statement_descriptor=None,
        statement_descriptor_suffix=None,
        status="requires_payment_method",
        transfer_data=None,
        transfer_group=None,
        source=None,
        excluded_payment_method_types=None,
        customer_account=None,
        managed_payments=None,
    )


def charge(
    *,
    id: str,
    created: int,
    amount: int,
    currency: str,
    customer: dict[str, Any],
    payment_intent: str,
    payment_method: str,
    description: str,
    last4: str,
    succeeded: bool,
) -> dict[str, Any]:
    details = copy.deepcopy(FIXTURES["charge"]["payment_method_details"])
    card = details["card"]
    card.update(
        {
            "amount_authorized": amount if succeeded else None,
            "brand": "visa",
            "checks": {
                "address_line1_check": None,
                "address_postal_code_check": None,
                "cvc_check": "pass",
            },
            "exp_month": 12,
            "exp_year": 2034,
            "fingerprint": secrets.token_hex(8),
            "installments": None,
            "last4": last4,
            "network_token": {"used": False},
            "overcapture": {"maximum_amount_capturable": amount, "status": "unavailable"},
            "three_d_secure": None,
            "wallet": None,
        }
    )
    outcome = {
        "advice_code": None if succeeded else "try_again_later",
        "network_advice_code": None,
        "network_decline_code": None,
        "network_status": "approved_by_network" if succeeded else "declined_by_network",
        "reason": None if succeeded else "generic_decline",
        "risk_level": "normal",
        "risk_score": 32,
        "seller_message": (
            "Payment complete." if succeeded else "The bank did not return any further details."
        ),
        "type": "authorized" if succeeded else "issuer_declined",
    }
    billing_details = {
        "address": dict(NULL_ADDRESS),
        "email": customer["email"],
        "name": customer["name"],
        "phone": None,
        "tax_id": None,
    }
    return from_fixture(
        "charge",
        id=id,
        amount=amount,
        amount_captured=amount if succeeded else 0,
        amount_refunded=0,
        application=None,
        application_fee=None,
        application_fee_amount=None,
        balance_transaction=new_id("txn_") if succeeded else None,
        billing_details=billing_details,
        calculated_statement_descriptor="STANDIN* NEWS",
        captured=succeeded,
        created=created,
        currency=currency,
        customer=customer["id"],
        description=description,
        disputed=False,
        failure_balance_transaction=None,
        failure_code=None if succeeded else "card_declined",
        failure_message=None if succeeded else "Your card was declined.",
        fraud_details={},
        livemode=False,
        metadata={},
        on_behalf_of=None,
        outcome=outcome,
        paid=succeeded,
        payment_intent=payment_intent,
        payment_method=payment_method,
        payment_method_details=details,
        receipt_email=None,
        receipt_number=None,
        receipt_url=None,
        refunded=False,
        refunds=list_object([], f"/v1/charges/{id}/refunds"),
        review=None,
        shipping=None,
        source_transfer=None,
        statement_descriptor=None,
        statement_descriptor_suffix=None,
        status="succeeded" if succeeded else "failed",
        transfer_data=None,
        transfer_group=None,
        source=None,
    )


def invoice_payment(
    *,
    id: str,
    created: int,
    invoice: dict[str, Any],
    payment_intent: str,
) -> dict[str, Any]:
    return from_fixture(
        "invoice_payment",
        id=id,
        amount_paid=None,
        amount_requested=invoice["amount_due"],
        created=created,
        currency=invoice["currency"],
        invoice=invoice["id"],
        is_default=True,
        livemode=False,
        payment={"payment_intent": payment_intent, "type": "payment_intent"},
        status="open",
        status_transitions={"canceled_at": None, "paid_at": None},
    )


def refund(
    *,
    id: str,
    created: int,
    charge_obj: dict[str, Any],
    amount: int,
    reason: str | None,
    metadata: dict[str, str],
) -> dict[str, Any]:
    return from_fixture(
        "refund",
        id=id,
        amount=amount,
        balance_transaction=new_id("txn_"),
        charge=charge_obj["id"],
        created=created,
        currency=charge_obj["currency"],
        destination_details={
            "card": {
                "reference": None,
                "reference_status": "pending",
                "reference_type": "acquirer_reference_number",
                "type": "refund",
            },
            "type": "card",
        },
        metadata=metadata,
        payment_intent=charge_obj["payment_intent"],
        reason=reason,
        receipt_number=None,
        source_transfer_reversal=None,
        status="succeeded",
        transfer_reversal=None,
        customer=charge_obj["customer"],
        customer_account=None,
        payment_method=charge_obj["payment_method"],
    )


def dispute(
    *,
    id: str,
    created: int,
    charge_obj: dict[str, Any],
    reason: str,
    amount: int,
) -> dict[str, Any]:
    evidence: dict[str, Any] = {key: None for key in FIXTURES["dispute"]["evidence"]}
    evidence["enhanced_evidence"] = {}
    return from_fixture(
        "dispute",
        id=id,
        amount=amount,
        balance_transactions=[],
        charge=charge_obj["id"],
        created=created,
        currency=charge_obj["currency"],
        evidence=evidence,
        evidence_details={
            "due_by": created + 7 * 86400,
            "has_evidence": False,
            "past_due": False,
            "submission_count": 0,
            "enhanced_eligibility": {},
        },
        is_charge_refundable=False,
        livemode=False,
        metadata={},
        payment_intent=charge_obj["payment_intent"],
        payment_method_details={
            "card": {
                "brand": "visa",
                "case_type": "chargeback",
                "network_reason_code": "10.4",
                "network": "visa",
            },
            "type": "card",
        },
        reason=reason,
        status="needs_response",
        enhanced_eligibility_types=[],
    )


# -- events ----------------------------------------------------------------------------------


def event(
    *,
    id: str,
    created: int,
    type: str,
    api_version: str,
    data_object: dict[str, Any],
    previous_attributes: dict[str, Any] | None,
    request_id: str | None,
    idempotency_key: str | None,
    pending_webhooks: int,
) -> dict[str, Any]:
    data: dict[str, Any] = {"object": data_object}
    if previous_attributes is not None:
        data["previous_attributes"] = previous_attributes
    return from_fixture(
        "event",
        id=id,
        api_version=api_version,
        created=created,
        data=data,
        livemode=False,
        pending_webhooks=pending_webhooks,
        request={"id": request_id, "idempotency_key": idempotency_key},
        type=type,
    )


def invoice_subscription(invoice: dict[str, Any]) -> str | None:
    """The subscription an invoice bills: since 2025-03-31.basil only under ``parent``
    (there is no top-level ``invoice.subscription``)."""
    details = (invoice.get("parent") or {}).get("subscription_details") or {}
    sub = details.get("subscription")
    return sub.get("id") if isinstance(sub, dict) else sub


# -- coupons, promotion codes, discounts -----------------------------------------------------
# Not in fixtures3.json's subset we keep: built field by field from the API reference
# (https://docs.stripe.com/api/coupons/object, /promotion_codes/object, /discounts/object);
# tests/standin/test_sdk_types.py checks them against the SDK's types.


def coupon(
    *,
    id: str,
    created: int,
    duration: str,
    percent_off: float | None = None,
    amount_off: int | None = None,
    currency: str | None = None,
    duration_in_months: int | None = None,
    name: str | None = None,
    max_redemptions: int | None = None,
    redeem_by: int | None = None,
    metadata: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "id": id,
        "object": "coupon",
        "amount_off": amount_off,
        "applies_to": None,
        "created": created,
        "currency": currency,
        "currency_options": None,
        "duration": duration,
        "duration_in_months": duration_in_months,
        "livemode": False,
        "max_redemptions": max_redemptions,
        "metadata": metadata or {},
        "name": name,
        "percent_off": percent_off,
        "redeem_by": redeem_by,
        "times_redeemed": 0,
        "valid": True,
    }


def promotion_code(
    *,
    id: str,
    created: int,
    code: str,
    coupon_id: str,
    active: bool = True,
    customer: str | None = None,
    expires_at: int | None = None,
    max_redemptions: int | None = None,
    first_time_transaction: bool = False,
    metadata: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "id": id,
        "object": "promotion_code",
        "active": active,
        "code": code,
        "created": created,
        "customer": customer,
        "customer_account": None,
        "expires_at": expires_at,
        "livemode": False,
        "max_redemptions": max_redemptions,
        "metadata": metadata or {},
        "promotion": {"coupon": coupon_id, "type": "coupon"},
        "restrictions": {
            "currency_options": {},
            "first_time_transaction": first_time_transaction,
            "minimum_amount": None,
            "minimum_amount_currency": None,
        },
        "times_redeemed": 0,
    }


def discount(
    *,
    id: str,
    start: int,
    end: int | None,
    coupon_id: str,
    promotion_code: str | None,
    customer: str,
    subscription: str | None,
    checkout_session: str | None,
) -> dict[str, Any]:
    return {
        "id": id,
        "object": "discount",
        "checkout_session": checkout_session,
        "customer": customer,
        "customer_account": None,
        "end": end,
        "invoice": None,
        "invoice_item": None,
        "promotion_code": promotion_code,
        "source": {"coupon": coupon_id, "type": "coupon"},
        "start": start,
        "subscription": subscription,
        "subscription_item": None,
    }


def discount_amount(coupon_obj: dict[str, Any], amount: int) -> int:
    """What a coupon takes off ``amount`` (never more than it)."""
    if coupon_obj["percent_off"] is not None:
        return min(amount, round(amount * float(coupon_obj["percent_off"]) / 100))
    return min(amount, int(coupon_obj["amount_off"] or 0))
