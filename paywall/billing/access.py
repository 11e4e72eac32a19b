"""What a subscription lets a reader do: one pure function, documented as a table in the README.

| Stripe status                     | Access                                                  |
|-----------------------------------|---------------------------------------------------------|
| active, trialing                  | the plan's features (cancel at period end: until then)  |
| past_due                          | the plan's features for PAST_DUE_GRACE_DAYS, then none   |
| canceled, unpaid, incomplete,     | none                                                    |
| incomplete_expired, paused        |                                                         |
| any, latest invoice refunded in   | none (REFUND_ENDS_ACCESS / DISPUTE_ENDS_ACCESS)         |
| full or disputed                  |                                                         |
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

GRANTING = frozenset({"active", "trialing"})


@dataclass(frozen=True)
class PlanGrant:
    lookup_key: str | None
    name: str | None
    features: tuple[str, ...]
    max_devices: int | None


@dataclass(frozen=True)
class SubscriptionState:
    status: str
    plan: PlanGrant | None
    current_period_end: datetime | None = None
    cancel_at_period_end: bool = False
    past_due_since: datetime | None = None
    revoked_reason: str | None = None  # "refunded" or "disputed"


@dataclass(frozen=True)
class Access:
    features: tuple[str, ...] = ()
    plan: str | None = None
    max_devices: int = 5
    reason: str = "no_subscription"
    until: datetime | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def entitled(self) -> bool:
        return bool(self.features)


def access_from_subscription(
    state: SubscriptionState | None,
    *,
    now: datetime,
    grace: timedelta,
    default_max_devices: int,
) -> Access:
    """Map a subscription's state to what the reader may do right now."""
    none = Access(max_devices=default_max_devices)
    if state is None:
        return none
    if state.revoked_reason:
        return Access(max_devices=default_max_devices, reason=state.revoked_reason)
    plan = state.plan
    granted = Access(
        features=plan.features if plan else (),
        plan=plan.lookup_key if plan else None,
        max_devices=(plan.max_devices if plan and plan.max_devices else default_max_devices),
        reason=state.status,
        until=state.current_period_end,
    )
    if state.status in GRANTING:
        ended = (
            state.cancel_at_period_end
            and state.current_period_end is not None
            and now >= state.current_period_end
        )
        if ended:
            return Access(max_devices=default_max_devices, reason="period_ended")
        reason = "cancel_at_period_end" if state.cancel_at_period_end else state.status
        return _with(granted, reason=reason)
    if state.status == "past_due":
        since = state.past_due_since or now
        if now < since + grace:
            return _with(granted, reason="past_due_grace", until=since + grace)
        return Access(max_devices=default_max_devices, reason="past_due")
    return Access(max_devices=default_max_devices, reason=state.status)


def _with(access: Access, **changes: object) -> Access:
    from dataclasses import replace

    return replace(access, **changes)  # type: ignore[arg-type]
