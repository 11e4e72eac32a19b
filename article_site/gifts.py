"""The site's side of gift links: a reader without an account opens ``/news/<slug>?gift=...``
and the site asks the service (server to server) whether that link opens this article for
this browser. Anything but a yes sends the teaser only, with the reason in plain words."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from article_site.paywall_client import PaywallClient

VISITOR_COOKIE = "site_visitor"

#: What the reader is told when a gift link does not open the article.
REASONS = {
    "gift_expired": "This gift link has expired.",
    "gift_revoked": "The subscriber who shared this gift link has withdrawn it.",
    "gift_used_up": "This gift link has already been opened by as many readers as it allows.",
    "gift_wrong_article": "This gift link is for another article.",
    "gift_invalid": "This gift link is not valid (it may have been copied incompletely).",
    "paywall_unreachable": "We could not check this gift link just now. Try again shortly.",
}


@dataclass(frozen=True)
class GiftDecision:
    allowed: bool
    token: str
    expires_at: str | None = None
    code: str | None = None

    @property
    def message(self) -> str:
        return REASONS.get(self.code or "", REASONS["gift_invalid"])


def new_visitor() -> str:
    return secrets.token_urlsafe(18)


def open_gift(client: PaywallClient, token: str, article: str, visitor: str) -> GiftDecision:
    status, body = client.open_gift(token[:500], article, visitor)
    if status == 200:
        return GiftDecision(True, token, expires_at=str(body.get("expires_at")))
    error = body.get("error") if isinstance(body, dict) else None
    code = str(error.get("code")) if isinstance(error, dict) else "gift_invalid"
    if code == "validation_error":
        code = "gift_invalid"  # a malformed token is a link that does not verify
    return GiftDecision(False, token, code=code)
