"""Combining a grant with the subscription's access: the better of the two (a pure function)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from paywall.billing.access import Access


@dataclass(frozen=True)
class Grant:
    features: tuple[str, ...]
    max_devices: int | None
    until: datetime


def combine(subscription: Access, grant: Grant | None) -> Access:
    """Every feature either gives, the larger device cap; ``reason`` is ``granted`` when the
    grant adds a feature the subscription does not (then ``until`` is the grant's end)."""
    if grant is None:
        return subscription
    features = tuple(dict.fromkeys(subscription.features + grant.features))
    cap = max(subscription.max_devices, grant.max_devices or 0)
    if set(grant.features) <= set(subscription.features):
        return replace(subscription, max_devices=cap)
    return replace(
        subscription,
        features=features,
        max_devices=cap,
        reason="granted",
        until=grant.until,
        plan=subscription.plan,
    )
