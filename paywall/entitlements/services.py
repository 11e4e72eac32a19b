"""Issuing entitlement tokens and checking them online (with revocation)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from paywall import clock
from paywall.accounts.models import Account
from paywall.billing.access import Access
from paywall.billing.services import BillingService
from paywall.devices.models import DeviceSession
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
        access = self.billing.access_for(account)
        now = int(clock.timestamp())
        claims = {
            "iss": self.issuer,
            "sub": account.id,
            "aud": AUDIENCE,
            "sid": device.id,
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
