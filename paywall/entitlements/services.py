"""Issuing entitlement tokens and checking them online (with revocation)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, bindparam, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.expression import Executable

from paywall import clock
from paywall.accounts.models import Account
from paywall.billing.access import Access, PlanGrant, SubscriptionState
from paywall.billing.models import Plan, Subscription
from paywall.billing.services import (
    BillingService,
    BillingSettings,
    SubscriptionInput,
    access_from_inputs,
)
from paywall.clock import utcnow
from paywall.devices.models import DeviceSession
from paywall.devices.services import DevicePolicy, digest, quiet_use
from paywall.entitlements.keys import SigningKeys, signing_keys
from paywall.entitlements.verifier import (
    AUDIENCE,
    TokenError,
    TokenExpired,
    TokenWrongSession,
    Verifier,
    check_times,
    session_hash,
)
from paywall.grants.access import Grant
from paywall.grants.models import AccessGrant

if TYPE_CHECKING:
    from paywall.entitlements.revocations import RevocationState

#: Online checks tolerate this much clock difference between service hosts: a token's ``iat``
#: up to 5 s in the future, its ``exp`` up to 5 s past.
ONLINE_LEEWAY = 5


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_at: datetime
    access: Access


class EntitlementService:
    def __init__(
        self,
        billing: BillingService | Callable[[], BillingService],
        keys: SigningKeys,
        issuer: str,
        ttl: int,
    ) -> None:
        # Issuing needs billing; the online checks do not (built on first use when a factory).
        self._billing = billing
        self.keys = keys
        self.issuer = issuer
        self.ttl = ttl
        self.verifier = _verifier(keys, issuer)

    @property
    def billing(self) -> BillingService:
        if callable(self._billing):
            self._billing = self._billing()
        return self._billing

    def issue(self, account: Account, device: DeviceSession, session_value: str) -> IssuedToken:
        """A token for this device session carrying what the reader may do right now, bound
        to ``session_value`` (the session's secret value as the response leaves). The caller
        has already checked the session is active (``login_required``)."""
        return self.issue_for(
            account.id, device.id, session_value, self.billing.access_for(account)
        )

    def issue_for(
        self, account_id: str, session_id: str, session_value: str, access: Access
    ) -> IssuedToken:
        now = int(clock.timestamp())
        claims = {
            "iss": self.issuer,
            "sub": account_id,
            "aud": AUDIENCE,
            "sid": session_id,
            "plan": access.plan,
            "features": list(access.features),
            "max_devices": access.max_devices,
            "iat": now,
            "exp": now + self.ttl,
            "jti": secrets.token_urlsafe(16),
            "cnf": {"sth": session_hash(session_value)},
        }
        return IssuedToken(
            self.keys.sign(claims), datetime.fromtimestamp(now + self.ttl, UTC), access
        )

    def quiet_refresh(
        self,
        connection: Connection,
        session_value: str,
        policy: DevicePolicy,
        settings: BillingSettings,
    ) -> IssuedToken | None:
        """The token refresh in one round trip: one Core statement reads the session by its
        value's digest together with the account's subscriptions (with plans) and active
        grants; no ORM entities. Returns None when that is not enough: an unknown, previous
        or retired value, an ended or expired session, or a use that must write (first use,
        rotation or last-seen touch due). The caller then takes the full path
        (``DeviceService.authenticate``), which applies every rule as before."""
        now = utcnow()
        rows = connection.execute(
            _refresh_statement(), {"digest": digest(session_value), "now": now}
        ).all()
        if not rows or not quiet_use(rows[0], now, policy):
            return None
        subscriptions: dict[str, SubscriptionInput] = {}
        grants: dict[str, Grant] = {}
        for row in rows:
            if row.sub_id is not None and row.sub_id not in subscriptions:
                plan = (
                    PlanGrant(
                        row.lookup_key,
                        row.plan_name,
                        tuple(row.plan_features or ()),
                        row.plan_max_devices,
                    )
                    if row.plan_price_id is not None
                    else None
                )
                subscriptions[row.sub_id] = SubscriptionInput(
                    row.sub_id,
                    row.status,
                    row.sub_created_at,
                    SubscriptionState(
                        status=row.status,
                        plan=plan,
                        current_period_end=row.current_period_end,
                        cancel_at_period_end=bool(row.cancel_at_period_end),
                        past_due_since=row.past_due_since,
                        revoked_reason=row.revoked_reason,
                    ),
                )
            if row.grant_id is not None and row.grant_id not in grants:
                grants[row.grant_id] = Grant(
                    tuple(row.grant_features or ()), row.grant_max_devices, row.grant_until
                )
        access = access_from_inputs(
            subscriptions.values(), grants.values(), now=now, settings=settings
        )
        first = rows[0]
        return self.issue_for(first.account_id, first.id, session_value, access)

    def check_online(
        self,
        token: str,
        revocations: RevocationState,
        *,
        session: str | None,
        bound: bool = True,
    ) -> tuple[dict[str, Any] | None, str | None]:
        """(claims, None) if valid and not revoked, else (None, reason): "expired", "invalid",
        "wrong_session" or "revoked". ``bound=False`` skips the session check (a publisher's
        server asking what a token says)."""
        now = clock.timestamp()
        try:
            if bound:
                claims = self.verifier.verify(token, session=session, now=now, leeway=ONLINE_LEEWAY)
            else:
                claims = dict(self.verifier.load(token))  # read-only use below
                check_times(claims, now=now, leeway=ONLINE_LEEWAY)
        except TokenExpired:
            return None, "expired"
        except TokenWrongSession:
            return None, "wrong_session"
        except TokenError:
            return None, "invalid"
        if revocations.is_revoked(str(claims["sub"]), str(claims["sid"]), claims["iat"]):
            return None, "revoked"
        return claims, None


@lru_cache(maxsize=1)
def _refresh_statement() -> Executable:
    """session ⋈ account ⟕ subscription ⟕ plan ⟕ active grant, by the value's digest (one row
    per subscription × grant; a reader has few of each)."""
    sess, sub, plan, grant = DeviceSession, Subscription, Plan, AccessGrant
    now = bindparam("now", type_=sess.expires_at.type)
    return (
        select(
            sess.id,
            sess.account_id,
            sess.ended_at,
            sess.end_reason,
            sess.expires_at,
            sess.last_seen_at,
            sess.created_at,
            sess.rotated_at,
            sess.token_used_at,
            sub.id.label("sub_id"),
            sub.status,
            sub.created_at.label("sub_created_at"),
            sub.current_period_end,
            sub.cancel_at_period_end,
            sub.past_due_since,
            sub.revoked_reason,
            plan.price_id.label("plan_price_id"),
            plan.lookup_key,
            plan.name.label("plan_name"),
            plan.features.label("plan_features"),
            plan.max_devices.label("plan_max_devices"),
            grant.id.label("grant_id"),
            grant.features.label("grant_features"),
            grant.max_devices.label("grant_max_devices"),
            grant.until.label("grant_until"),
        )
        .join(Account, Account.id == sess.account_id)
        .outerjoin(sub, sub.account_id == sess.account_id)
        .outerjoin(plan, plan.price_id == sub.price_id)
        .outerjoin(
            grant,
            and_(
                grant.account_id == sess.account_id,
                grant.revoked_at.is_(None),
                grant.starts_at <= now,
                grant.until > now,
            ),
        )
        .where(sess.token_digest == bindparam("digest"))
    )


@lru_cache(maxsize=8)
def _verifier(keys: SigningKeys, issuer: str) -> Verifier:
    """The service's own verifier per key list and issuer (built once, cache kept)."""
    return Verifier(keys.jwks(), issuer=issuer)


def entitlement_service() -> EntitlementService:
    from flask import current_app, g

    from paywall.billing.services import billing_service

    if "entitlement_service" not in g:
        cfg = current_app.config
        g.entitlement_service = EntitlementService(
            billing_service,
            signing_keys(cfg["ENTITLEMENT_SIGNING_KEYS"]),
            str(cfg["PUBLIC_URL"]).rstrip("/"),
            int(cfg["ENTITLEMENT_TTL"]),
        )
    return g.entitlement_service  # type: ignore[no-any-return]
