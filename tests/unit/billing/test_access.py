"""``access_from_subscription``: every row of the access table (README, the module docstring)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from paywall.billing.access import PlanGrant, SubscriptionState, access_from_subscription

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
GRACE = timedelta(days=7)
PLAN = PlanGrant("premium_monthly", "Premium", ("premium_content",), 3)


def access(state: SubscriptionState | None) -> object:
    return access_from_subscription(state, now=NOW, grace=GRACE, default_max_devices=5)


@pytest.mark.parametrize("status", ["active", "trialing"])
def test_active_and_trialing_grant_the_plan(status: str) -> None:
    got = access(SubscriptionState(status, PLAN, current_period_end=NOW + timedelta(days=3)))
    assert got.features == ("premium_content",)
    assert got.plan == "premium_monthly" and got.max_devices == 3
    assert got.reason == status and got.until == NOW + timedelta(days=3)


@pytest.mark.parametrize(
    "status", ["canceled", "unpaid", "incomplete", "incomplete_expired", "paused"]
)
def test_other_statuses_grant_nothing_and_the_default_cap(status: str) -> None:
    got = access(SubscriptionState(status, PLAN, current_period_end=NOW + timedelta(days=3)))
    assert got.features == () and not got.entitled
    assert got.plan is None and got.max_devices == 5 and got.reason == status


def test_an_unknown_status_grants_nothing() -> None:
    assert access(SubscriptionState("something_new", PLAN)).features == ()


def test_no_subscription() -> None:
    got = access(None)
    assert got.features == () and got.reason == "no_subscription" and got.max_devices == 5


def test_past_due_keeps_the_plan_for_the_grace_period_only() -> None:
    inside = access(SubscriptionState("past_due", PLAN, past_due_since=NOW - GRACE / 2))
    assert inside.features == ("premium_content",) and inside.reason == "past_due_grace"
    assert inside.until == NOW + GRACE / 2
    edge = access(SubscriptionState("past_due", PLAN, past_due_since=NOW - GRACE))
    assert edge.features == () and edge.reason == "past_due"
    # No recorded start: the grace starts now.
    fresh = access(SubscriptionState("past_due", PLAN))
    assert fresh.features == ("premium_content",) and fresh.until == NOW + GRACE


def test_cancel_at_period_end_keeps_access_until_the_end() -> None:
    end = NOW + timedelta(hours=1)
    before = access(
        SubscriptionState("active", PLAN, current_period_end=end, cancel_at_period_end=True)
    )
    assert before.features and before.reason == "cancel_at_period_end"
    after = access_from_subscription(
        SubscriptionState("active", PLAN, current_period_end=end, cancel_at_period_end=True),
        now=end,
        grace=GRACE,
        default_max_devices=5,
    )
    assert after.features == () and after.reason == "period_ended"


@pytest.mark.parametrize("reason", ["refunded", "disputed"])
@pytest.mark.parametrize("status", ["active", "trialing", "past_due"])
def test_a_refund_or_dispute_ends_access_whatever_the_status(reason: str, status: str) -> None:
    got = access(SubscriptionState(status, PLAN, revoked_reason=reason))
    assert got.features == () and got.reason == reason and got.max_devices == 5


def test_a_plan_without_its_own_cap_gets_the_default() -> None:
    got = access(SubscriptionState("active", PlanGrant("p", "P", ("premium_content",), None)))
    assert got.max_devices == 5
