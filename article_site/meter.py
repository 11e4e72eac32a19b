"""The site's side of the meter: which metered articles a reader may read in full this month.

Signed-in readers are counted by the paywall service (``POST /api/v1/meter/reads``), by account,
so clearing cookies or changing device does not reset them. Anonymous readers are counted here,
in a signed first-party cookie: clearing it resets the anonymous meter (any cookie meter can be
reset that way), which is why the paywall box also offers a free account.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from itsdangerous import BadSignature, URLSafeSerializer

from article_site.paywall_client import PaywallClient

METER_COOKIE = "site_meter"


@dataclass(frozen=True)
class MeterDecision:
    allowed: bool
    remaining: int
    limit: int
    cookie: str | None = None  # a new anonymous meter cookie value to send


def month_of(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m")


class AnonymousMeter:
    """Distinct articles per UTC month in a signed cookie (tampering is refused: a bad
    signature counts as a full meter, never as an empty one)."""

    def __init__(self, secret: str, limit: int) -> None:
        self.serializer = URLSafeSerializer(secret, salt="article-site.meter")
        self.limit = limit

    def read(self, cookie: str | None, article: str, now: datetime) -> MeterDecision:
        month = month_of(now)
        seen: list[str] = []
        if cookie:
            try:
                data = self.serializer.loads(cookie)
            except BadSignature:
                return MeterDecision(False, 0, self.limit)
            if isinstance(data, dict) and data.get("m") == month:
                seen = [str(a) for a in data.get("a", [])][: self.limit]
        if article in seen:
            return MeterDecision(True, self.limit - len(seen), self.limit)
        if len(seen) >= self.limit:
            return MeterDecision(False, 0, self.limit)
        seen.append(article)
        value = str(self.serializer.dumps({"m": month, "a": seen}))
        return MeterDecision(True, self.limit - len(seen), self.limit, cookie=value)


def account_read(client: PaywallClient, session: str, article: str, limit: int) -> MeterDecision:
    """Ask the service; if it cannot answer, the full text is not sent (fail closed)."""
    answer = client.meter_read(session, article)
    if answer is None:
        return MeterDecision(False, 0, limit)
    return MeterDecision(bool(answer["allowed"]), int(answer["remaining"]), int(answer["limit"]))
