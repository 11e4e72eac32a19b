"""Who is reading: decided on the site's own server, offline, before anything is rendered.

The entitlement token is kept in an HttpOnly cookie the site signs with its own secret; it is
checked on every page view with the offline verifier, against the service's public keys (JWKS)
and against the paywall session cookie it came with (the token's ``cnf.sth`` is a hash of the
session it was issued for, so a token copied next to any other session value is refused). It is
renewed from the paywall service only when it is about to expire (or the session changed).
When the service rotates the session's value on a renewal, the new value is what the token is
bound to and what the reader's session cookie becomes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from flask import Request
from itsdangerous import BadSignature, URLSafeSerializer

from article_site.paywall_client import PaywallClient
from paywall.entitlements.verifier import DEFAULT_LEEWAY, RemoteKeys, TokenError, can_read

TOKEN_COOKIE = "site_entitlement"  # noqa: S105 - a cookie name
RENEW_BEFORE = 30  # seconds before expiry

NOTICES = {
    "session_evicted": "You were signed out on this device because another device signed in "
    "at your account's device limit.",
    "session_revoked": "You were signed out on this device.",
    "session_expired": "Your session expired. Log in again.",
    "session_reused": "You were signed out because this sign-in was copied and used on another "
    "device. Log in again, and change your password if that was not you.",
    "unauthorized": "You were signed out on this device. Log in again.",
    "paywall_unreachable": "We could not check your subscription just now.",
}

#: Why the service ended the session, when it says (more precise than the code).
REASON_NOTICES = {
    "evicted": NOTICES["session_evicted"],
    "cap_lowered": "You were signed out on this device because your plan now allows fewer "
    "devices.",
    "revoked": "You were signed out on this device from another device.",
    "password_changed": "You were signed out on this device because your password was changed.",
    "account_deleted": "You were signed out because the account was deleted.",
    "expired": "Your session expired after a long time without use. Log in again.",
}


@dataclass
class Reader:
    claims: dict[str, Any] | None = None
    session: str | None = None
    notice: str | None = None
    set_token: str | None = None  # a renewed token cookie value to send
    clear_token: bool = False
    clear_session: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def signed_in(self) -> bool:
        return self.claims is not None


def token_cookie(secret: str) -> URLSafeSerializer:
    """The site's own signature on the token cookie (its secret, not the service's)."""
    return URLSafeSerializer(secret, salt="article_site.entitlement")


def identify(
    request: Request,
    *,
    cookie_name: str,
    keys: RemoteKeys,
    client: PaywallClient,
    cookies: URLSafeSerializer,
    wants: str | None = None,
    leeway: float = DEFAULT_LEEWAY,
    revocations: Any = None,
) -> Reader:
    """Who is reading. ``wants`` is the access level of the page: a cached token that does not
    grant it is renewed at once (the reader may have just subscribed); one that does is checked
    offline until it nearly expires."""
    session = request.cookies.get(cookie_name)
    cached = request.cookies.get(TOKEN_COOKIE, "")
    if not session:
        return Reader(clear_token=bool(cached))
    try:
        token = str(cookies.loads(cached)) if cached else ""
    except BadSignature:
        token = ""  # not a cookie this site set
    claims = None
    if token:
        try:
            claims = keys.verify(token, session=session, leeway=leeway)
        except TokenError:
            claims = None
    # The session ended or the account lost access since the token was issued: renew now (the
    # service refuses an ended session, or answers with the access that is left).
    if (
        claims is not None
        and revocations is not None
        and revocations.is_revoked(str(claims["sub"]), str(claims["sid"]), claims["iat"])
    ):
        claims = None
    fresh_enough = claims is not None and claims["exp"] - time.time() > RENEW_BEFORE
    if fresh_enough and (wants is None or can_read(claims, wants)):
        return Reader(claims=claims, session=session)
    answer = client.entitlement_token(session)
    if answer.token is None:
        if answer.error_code == "paywall_unreachable" and claims is not None:  # not revoked
            return Reader(claims=claims, session=session)  # still valid; renew next time
        return Reader(
            session=None,
            notice=REASON_NOTICES.get(answer.reason or "") or NOTICES.get(answer.error_code or ""),
            clear_token=True,
            # The paywall session is over (or unknown): drop its cookie too, so the notice
            # shows once.
            clear_session=(answer.error_code or "").startswith("session_")
            or answer.error_code == "unauthorized",
            extra={"error_code": answer.error_code},
        )
    session = answer.session_token or session  # rotated by this renewal: the cookie follows
    try:
        fresh = keys.verify(answer.token, session=session, leeway=leeway)
    except TokenError:
        return Reader(
            notice="The paywall answered with a token this site cannot verify.", clear_token=True
        )
    return Reader(claims=fresh, session=session, set_token=cookies.dumps(answer.token))
