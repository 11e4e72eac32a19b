"""REST endpoints for coupons and promotion codes (what finance creates in the dashboard; the
reader types the code on the hosted Checkout page when ``allow_promotion_codes`` is set)."""

from __future__ import annotations

import re
import secrets
import string
from typing import Any

from . import objects
from .errors import StripeError, invalid
from .params import (
    apply_metadata,
    as_bool,
    as_dict,
    as_int,
    as_str,
    check_known,
    choice,
    require,
)
from .render import LIST_PARAMS, paginate, present
from .routing import Routes
from .store import Store, new_id

routes = Routes()

DURATIONS = ("forever", "once", "repeating")
CODE_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,500}$")


# -- coupons ---------------------------------------------------------------------------------


@routes.add("/coupons", "POST")
def create_coupon(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    check_known(
        params,
        (
            "id",
            "duration",
            "duration_in_months",
            "percent_off",
            "amount_off",
            "currency",
            "name",
            "max_redemptions",
            "redeem_by",
            "metadata",
        ),
    )
    duration = choice(params.get("duration", "once"), "duration", DURATIONS)
    percent, amount = params.get("percent_off"), params.get("amount_off")
    if (percent is None) == (amount is None):
        raise invalid("You must pass exactly one of percent_off or amount_off.", "percent_off")
    percent_off = None
    if percent is not None:
        try:
            percent_off = float(percent)
        except (TypeError, ValueError) as exc:
            raise invalid(f"Invalid decimal: {percent}", "percent_off") from exc
        if not 0 < percent_off <= 100:
            raise invalid("percent_off must be greater than 0 and at most 100.", "percent_off")
    amount_off = as_int(amount, "amount_off") if amount is not None else None
    currency = None
    if amount_off is not None:
        if amount_off <= 0:
            raise invalid("amount_off must be a positive integer.", "amount_off")
        currency = as_str(require(params, "currency"), "currency").lower()
    months = None
    if duration == "repeating":
        months = as_int(require(params, "duration_in_months"), "duration_in_months")
        if months < 1:
            raise invalid("duration_in_months must be at least 1.", "duration_in_months")
    elif "duration_in_months" in params:
        raise invalid(
            "duration_in_months is only allowed with duration=repeating.", "duration_in_months"
        )
    with store.lock:
        coupon_id = as_str(params["id"], "id") if params.get("id") else _random_code(8)
        if store.get("coupon", coupon_id) is not None:
            raise invalid("Coupon already exists.", "id", code="resource_already_exists")
        coupon = objects.coupon(
            id=coupon_id,
            created=store.now(),
            duration=duration,
            percent_off=percent_off,
            amount_off=amount_off,
            currency=currency,
            duration_in_months=months,
            name=as_str(params["name"], "name") if params.get("name") else None,
            max_redemptions=as_int(params["max_redemptions"], "max_redemptions")
            if "max_redemptions" in params
            else None,
            redeem_by=as_int(params["redeem_by"], "redeem_by") if "redeem_by" in params else None,
            metadata=apply_metadata({}, params.get("metadata", {})),
        )
        store.add("coupon", coupon)
        return present(store, coupon)


@routes.add("/coupons/<coupon_id>", "GET")
def get_coupon(store: Store, params: dict[str, Any], coupon_id: str) -> dict[str, Any]:
    return present(store, store.require("coupon", coupon_id))


@routes.add("/coupons", "GET")
def list_coupons(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    check_known(params, LIST_PARAMS)
    return paginate(store, store.all("coupon"), params, "/v1/coupons")


# -- promotion codes -------------------------------------------------------------------------


@routes.add("/promotion_codes", "POST")
def create_promotion_code(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    check_known(
        params,
        (
            "promotion",
            "code",
            "active",
            "customer",
            "expires_at",
            "max_redemptions",
            "restrictions",
            "metadata",
        ),
    )
    promotion = as_dict(require(params, "promotion"), "promotion")
    check_known(promotion, ("type", "coupon"), "promotion")
    choice(require(promotion, "type"), "promotion[type]", ("coupon",))
    restrictions = as_dict(params.get("restrictions", {}), "restrictions")
    check_known(restrictions, ("first_time_transaction",), "restrictions")
    with store.lock:
        coupon = store.require("coupon", require(promotion, "coupon"), "promotion[coupon]")
        code = as_str(params["code"], "code") if params.get("code") else _random_code(8).upper()
        if not CODE_PATTERN.match(code):
            raise invalid("code may contain only letters, digits, - and _.", "code")
        if any(
            p["code"].lower() == code.lower() and p["active"] for p in store.all("promotion_code")
        ):
            raise invalid(
                "An active promotion code with `code` already exists.",
                "code",
                code="resource_already_exists",
            )
        customer = None
        if params.get("customer"):
            customer = store.require("customer", params["customer"], "customer")["id"]
        promo = objects.promotion_code(
            id=new_id("promo_"),
            created=store.now(),
            code=code,
            coupon_id=coupon["id"],
            active=as_bool(params.get("active", True), "active"),
            customer=customer,
            expires_at=as_int(params["expires_at"], "expires_at")
            if "expires_at" in params
            else None,
            max_redemptions=as_int(params["max_redemptions"], "max_redemptions")
            if "max_redemptions" in params
            else None,
            first_time_transaction=as_bool(
                restrictions.get("first_time_transaction", False),
                "restrictions[first_time_transaction]",
            ),
            metadata=apply_metadata({}, params.get("metadata", {})),
        )
        store.add("promotion_code", promo)
        return present(store, promo)


@routes.add("/promotion_codes/<promo_id>", "GET")
def get_promotion_code(store: Store, params: dict[str, Any], promo_id: str) -> dict[str, Any]:
    return present(store, store.require("promotion_code", promo_id))


@routes.add("/promotion_codes/<promo_id>", "POST")
def update_promotion_code(store: Store, params: dict[str, Any], promo_id: str) -> dict[str, Any]:
    check_known(params, ("active", "metadata"))
    with store.lock:
        promo = store.require("promotion_code", promo_id)
        if "active" in params:
            promo["active"] = as_bool(params["active"], "active")
        if "metadata" in params:
            promo["metadata"] = apply_metadata(promo["metadata"], params["metadata"])
        return present(store, promo)


@routes.add("/promotion_codes", "GET")
def list_promotion_codes(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    check_known(params, (*LIST_PARAMS, "code", "active", "coupon", "customer"))
    items = store.all("promotion_code")
    if "code" in params:
        items = [p for p in items if p["code"] == as_str(params["code"], "code")]
    if "active" in params:
        active = as_bool(params["active"], "active")
        items = [p for p in items if p["active"] == active]
    if "coupon" in params:
        items = [p for p in items if p["promotion"]["coupon"] == params["coupon"]]
    if "customer" in params:
        items = [p for p in items if p["customer"] == params["customer"]]
    return paginate(store, items, params, "/v1/promotion_codes")


# -- redemption (the Checkout page) ----------------------------------------------------------


def redeemable(store: Store, code: str, customer: str | None) -> dict[str, Any]:
    """The active promotion code a reader typed, or Stripe's page error ("This code is
    invalid."); codes match case-insensitively, as on Stripe's Checkout."""
    now = store.now()
    for promo in store.all("promotion_code"):
        if promo["code"].lower() != code.strip().lower() or not promo["active"]:
            continue
        coupon = store.get("coupon", promo["promotion"]["coupon"]) or {}
        used_up = promo["max_redemptions"] is not None and (
            promo["times_redeemed"] >= promo["max_redemptions"]
        )
        coupon_used_up = coupon.get("max_redemptions") is not None and (
            coupon["times_redeemed"] >= coupon["max_redemptions"]
        )
        expired = (promo["expires_at"] is not None and promo["expires_at"] <= now) or (
            coupon.get("redeem_by") is not None and coupon["redeem_by"] <= now
        )
        wrong_customer = promo["customer"] is not None and promo["customer"] != customer
        if used_up or coupon_used_up or expired or wrong_customer or not coupon.get("valid"):
            break
        return promo
    raise StripeError("This code is invalid.", status=400, code="promotion_code_invalid")


def _random_code(length: int) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))
