"""Plans and money in the reader's terms, and what a plan change will do. Pure functions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

CURRENCY_SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "cad": "CA$", "aud": "A$"}
ZERO_DECIMAL = {"jpy", "krw", "vnd", "clp", "isk", "huf", "twd", "ugx", "xaf", "xof"}
INTERVAL_MONTHS = {"month": 1, "year": 12}


class PlanLike(Protocol):
    lookup_key: str | None
    product_id: str
    name: str
    amount: int | None
    currency: str
    interval: str
    interval_count: int
    features: list[str]
    max_devices: int | None


def money(amount: int | None, currency: str) -> str:
    """``900, "usd"`` -> ``"$9"``; ``950`` -> ``"$9.50"``; unknown currencies by code."""
    currency = currency.lower()
    cents = amount or 0
    if currency in ZERO_DECIMAL:
        value = f"{cents:,}"
    elif cents % 100 == 0:
        value = f"{cents // 100:,}"
    else:
        value = f"{cents / 100:,.2f}"
    symbol = CURRENCY_SYMBOLS.get(currency)
    return f"{symbol}{value}" if symbol else f"{value} {currency.upper()}"


def period(plan: PlanLike) -> str:
    """``month``, ``year``, ``3 months``."""
    if plan.interval_count == 1:
        return plan.interval
    return f"{plan.interval_count} {plan.interval}s"


def price_text(plan: PlanLike) -> str:
    """``$9 / month``."""
    return f"{money(plan.amount, plan.currency)} / {period(plan)}"


def months(plan: PlanLike) -> int | None:
    per = INTERVAL_MONTHS.get(plan.interval)
    return per * plan.interval_count if per else None


def months_free(plan: PlanLike, plans: Sequence[PlanLike]) -> int | None:
    """How many months a longer billing period of the same product saves against its shortest
    one (``$90 / year`` against ``$9 / month``: 2), or None if none."""
    length = months(plan)
    if not length or plan.amount is None:
        return None
    shorter = [
        p
        for p in plans
        if p.product_id == plan.product_id
        and p.currency == plan.currency
        and p.amount
        and (months(p) or 0) < length
        and months(p)
    ]
    if not shorter:
        return None
    base = min(shorter, key=lambda p: months(p) or 0)
    per_month = (base.amount or 0) / (months(base) or 1)
    saved = round((per_month * length - plan.amount) / per_month)
    return saved if saved >= 1 else None


def offer_text(plan: PlanLike, plans: Sequence[PlanLike]) -> str:
    """``$90 / year — 2 months free``."""
    free = months_free(plan, plans)
    if not free:
        return price_text(plan)
    return f"{price_text(plan)} — {free} month{'s' if free != 1 else ''} free"


def trial_text(days: int | None) -> str | None:
    """ "14-day free trial" (Checkout charges nothing today, the price after the trial)."""
    return f"{days}-day free trial" if days else None


def devices_text(count: int) -> str:
    return f"Up to {count} device{'s' if count != 1 else ''} at once"


def feature_words(features: Sequence[str], labels: Mapping[str, str]) -> list[str]:
    """The reader's words for feature codes; an unknown code is shown tidied up."""
    return [labels.get(f) or f.replace("_", " ").capitalize() for f in features]


@dataclass(frozen=True)
class PlanChange:
    """What switching from one plan to another will do to a reader."""

    signed_out: tuple[str, ...]  # names of the devices that will be signed out, in order
    active_devices: int
    new_limit: int
    features_lost: tuple[str, ...]  # in words
    features_gained: tuple[str, ...]

    @property
    def is_downgrade(self) -> bool:
        return bool(self.signed_out or self.features_lost)

    def sentences(self) -> list[str]:
        """``2 of your 5 devices will be signed out: Phone, Tablet.``, ``Stops: …``."""
        lines = []
        if self.signed_out:
            n = len(self.signed_out)
            lines.append(
                f"{n} of your {self.active_devices} devices will be signed out: "
                f"{', '.join(self.signed_out)}."
            )
        for lost in self.features_lost:
            lines.append(f"Stops: {lost}.")
        for gained in self.features_gained:
            lines.append(f"Starts: {gained}.")
        if not lines:
            lines.append("Nothing else changes: your devices stay signed in.")
        return lines


def plan_change(
    current_features: Sequence[str],
    new_plan: PlanLike,
    devices_lru_first: Sequence[Any],
    default_max_devices: int,
    labels: Mapping[str, str],
) -> PlanChange:
    """``devices_lru_first``: the reader's active devices, least recently used first (the order
    in which a lower cap signs them out, see ``DeviceService.enforce_cap``)."""
    limit = new_plan.max_devices or default_max_devices
    overflow = max(0, len(devices_lru_first) - limit)
    lost = [f for f in current_features if f not in new_plan.features]
    gained = [f for f in new_plan.features if f not in current_features]
    return PlanChange(
        signed_out=tuple(d.device_name for d in devices_lru_first[:overflow]),
        active_devices=len(devices_lru_first),
        new_limit=limit,
        features_lost=tuple(feature_words(lost, labels)),
        features_gained=tuple(feature_words(gained, labels)),
    )
