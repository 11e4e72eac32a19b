"""Issuing entitlement tokens and checking them online (with revocation)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from itsdangerous import URLSafeSerializer
from sqlalchemy import select

from paywall.accounts.models import Account
from paywall.billing.access import Access
from paywall.billing.services import BillingService
from paywall.clock import utcnow
from paywall.devices.models import DeviceSession
from paywall.devices.services import DevicePolicy, end_code
from paywall.entitlements.verifier import (
    AUDIENCE,
    TokenError,
    TokenExpired,
    Verifier,
    key_id,
    serializer,
)
from paywall.types import DbSession


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_at: datetime
    access: Access


class EntitlementService:
    def __init__(
        self,
        session: DbSession,
        billing: BillingService,
        policy: DevicePolicy,
        keys: list[str],
        ttl: int,
    ) -> None:
        self.session = session
        self.billing = billing
        self.policy = policy
        self.keys = keys
        self.ttl = ttl
        self.signer, self.verifier = _signing(tuple(keys))

    def issue(self, account: Account, device: DeviceSession) -> IssuedToken:
        """A token for this device session carrying what the reader may do right now. The
        caller has already checked the session is active (``login_required``)."""
        access = self.billing.access_for(account)
        now = int(time.time())
        claims = {
            "sub": account.id,
            "sid": device.id,
            "plan": access.plan,
            "features": list(access.features),
            "max_devices": access.max_devices,
            "iat": now,
            "exp": now + self.ttl,
            "aud": AUDIENCE,
            "kid": key_id(self.keys[0]),
        }
        token = str(self.signer.dumps(claims))
        return IssuedToken(token, datetime.fromtimestamp(now + self.ttl, UTC), access)

    def check_online(self, token: str) -> tuple[dict[str, Any] | None, str | None]:
        """(claims, None) if valid and not revoked, else (None, "expired"|"invalid"|"revoked").
        Revoked: the device session ended, or the reader has lost a feature the token names."""
        try:
            claims = self.verifier.verify(token, leeway=0)  # our own clock issued it
        except TokenExpired:
            return None, "expired"
        except TokenError:
            return None, "invalid"
        from paywall.entitlements.revocations import revocation_state

        if revocation_state().is_revoked(
            str(claims.get("sub")), str(claims.get("sid")), claims.get("iat") or 0
        ):
            return None, "revoked"
        device = self.session.scalar(
            select(DeviceSession).where(DeviceSession.id == str(claims.get("sid")))
        )
        if device is None or device.account_id != claims.get("sub"):
            return None, "revoked"
        if end_code(device, utcnow(), self.policy) is not None:
            return None, "revoked"
        account = self.session.get(Account, device.account_id)
        if account is None:
            return None, "revoked"
        now_features = set(self.billing.access_for(account).features)
        if not set(claims.get("features") or ()) <= now_features:
            return None, "revoked"
        return claims, None


@lru_cache(maxsize=8)
def _signing(keys: tuple[str, ...]) -> tuple[URLSafeSerializer, Verifier]:
    """Serializer and verifier per key list: key derivation once, not on every request."""
    return serializer(list(keys)), Verifier(keys)


def entitlement_service() -> EntitlementService:
    from flask import current_app, g

    from paywall.billing.services import billing_service
    from paywall.extensions import db

    if "entitlement_service" not in g:
        cfg = current_app.config
        g.entitlement_service = EntitlementService(
            db.session,
            billing_service(),
            DevicePolicy.from_config(cfg),
            cfg["ENTITLEMENT_KEYS"],
            int(cfg["ENTITLEMENT_TTL"]),
        )
    return g.entitlement_service  # type: ignore[no-any-return]
