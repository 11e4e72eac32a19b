"""``access_from_inputs``: the token refresh's one-statement access computation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from paywall.billing.access import PlanGrant, SubscriptionState
from paywall.billing.services import BillingSettings, SubscriptionInput, access_from_inputs
from paywall.grants.access import Grant

NOW = datetime(2026, 1, 10, tzinfo=UTC)
SETTINGS = BillingSettings(
    public_url="https://paywall.example",
    site_url="https://site.example",
    grace=timedelta(days=3),
    default_max_devices=5,
    refund_ends_access=True,
    dispute_ends_access=True,
    plans_ttl=timedelta(minutes=5),
)
PREMIUM = PlanGrant("premium_monthly", "Premium", ("premium",), 3)


def sub(sub_id: str, status: str, created_days_ago: int) -> SubscriptionInput:
    state = SubscriptionState(status=status, plan=PREMIUM, current_period_end=NOW + timedelta(9))
    return SubscriptionInput(sub_id, status, NOW - timedelta(days=created_days_ago), state)


def test_a_live_subscription_decides_over_a_newer_ended_one() -> None:
    access = access_from_inputs(
        [sub("sub_new", "canceled", 1), sub("sub_old", "active", 30)],
        [],
        now=NOW,
        settings=SETTINGS,
    )
    assert access.features == ("premium",)
    assert access.max_devices == 3


def test_no_subscription_and_no_grant_is_free() -> None:
    access = access_from_inputs([], [], now=NOW, settings=SETTINGS)
    assert access.features == ()
    assert access.max_devices == 5


def test_the_longest_grant_adds_its_features() -> None:
    grants = [
        Grant(("premium",), 2, NOW + timedelta(days=1)),
        Grant(("premium", "archive"), 7, NOW + timedelta(days=5)),
    ]
    access = access_from_inputs([sub("sub_1", "canceled", 3)], grants, now=NOW, settings=SETTINGS)
    assert set(access.features) == {"premium", "archive"}
    assert access.max_devices == 7
    assert access.until == NOW + timedelta(days=5)
