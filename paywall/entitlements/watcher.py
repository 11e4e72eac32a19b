"""Follow the service's revocation feed from a frontend, in a background thread.

    from paywall.entitlements.watcher import RevocationWatcher

    watcher = RevocationWatcher("https://paywall.example", publisher_key).start()
    ...
    claims = verifier.verify(token, session=cookie, revocations=watcher)  # or:
    if watcher.is_revoked(claims["sub"], claims["sid"], claims["iat"]): renew the token

One long poll at a time (``GET /api/v1/entitlements/revocations?after=<cursor>&wait=25`` with the
publisher key): the service answers as soon as a session ends or an account's access goes down,
so a revocation reaches the frontend in well under a second. ``is_revoked`` answers from memory.

A ``session.ended`` entry refuses every token of that ``sid``; an ``entitlement.changed`` entry
refuses the account's tokens with ``iat`` before its ``not_before`` (renew them: the new token
carries the new access). Entries are forgotten ``retention`` seconds after they arrive (the token
lifetime plus the leeway: by then every token they name has expired).

When the feed cannot be reached the watcher keeps its last state and retries with backoff;
``staleness`` says for how many seconds it has not known the feed. Past ``max_staleness``
(default 60 s) it reports ``stale``, and then:

- ``on_stale="serve"`` (the default): keeps answering from its last state. A revocation made
  during the outage is missed until the token expires (at most the token lifetime, 5 minutes),
  but a paywall outage does not lock every paying reader out;
- ``on_stale="refuse"``: every token counts as revoked (``"feed_stale"``) until the feed is back,
  so the frontend renews each token from the service (which refuses what it must) or shows the
  teaser when the service is down too.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from paywall.entitlements.verifier import TokenRevoked

log = logging.getLogger(__name__)

FEED_PATH = "/api/v1/entitlements/revocations"
DEFAULT_WAIT = 25.0
DEFAULT_RETENTION = 300 + 120  # token lifetime + offline leeway
DEFAULT_MAX_STALENESS = 60.0
STALE = "feed_stale"
__all__ = ["STALE", "RevocationWatcher", "TokenRevoked"]


class RevocationWatcher:
    """The revocation feed, followed in a daemon thread; thread-safe to ask."""

    def __init__(
        self,
        service_url: str,
        publisher_key: str,
        *,
        wait: float = DEFAULT_WAIT,
        retention: float = DEFAULT_RETENTION,
        max_staleness: float = DEFAULT_MAX_STALENESS,
        on_stale: str = "serve",
        timeout: float = 10.0,
        session: Any = None,
        on_revocation: Callable[[Mapping[str, Any]], None] | None = None,
    ) -> None:
        if on_stale not in ("serve", "refuse"):
            raise ValueError("on_stale must be 'serve' or 'refuse'")
        import requests

        self.url = service_url.rstrip("/") + FEED_PATH
        self.key = publisher_key
        self.wait = wait
        self.retention = retention
        self.max_staleness = max_staleness
        self.on_stale = on_stale
        self.timeout = timeout
        self.http = session or requests.Session()
        self.on_revocation = on_revocation
        self.cursor: str | None = None
        self._by_sid: dict[str, tuple[str, str, float]] = {}  # sid -> (sub, reason, received)
        self._by_sub: dict[str, tuple[int, str, float]] = {}  # sub -> (not_before, reason, rcv)
        self._lock = threading.Lock()
        self._synced = threading.Event()  # set once the first answer arrived
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_ok = 0.0  # monotonic time the last answer arrived
        self._polling_since: float | None = None  # a poll in flight since (monotonic)
        self.failures = 0  # consecutive failed polls
        self.received = 0  # entries received in all

    # -- answering --------------------------------------------------------------------------
    def is_revoked(self, sub: str, sid: str, iat: int | float) -> str | None:
        """Why a token of ``sub``/``sid`` issued at ``iat`` is refused, or None."""
        if self.on_stale == "refuse" and self.stale:
            return STALE
        with self._lock:
            by_sid = self._by_sid.get(sid)
            if by_sid is not None and by_sid[0] == sub:
                return by_sid[1]
            by_sub = self._by_sub.get(sub)
            if by_sub is not None and iat < by_sub[0]:
                return by_sub[1]
        return None

    def check(self, claims: Mapping[str, Any]) -> None:
        """Raise ``TokenRevoked`` for verified ``claims`` that are revoked (the verifier's hook)."""
        reason = self.is_revoked(
            str(claims.get("sub")), str(claims.get("sid")), claims.get("iat") or 0
        )
        if reason is not None:
            raise TokenRevoked(reason)

    @property
    def staleness(self) -> float:
        """Seconds the watcher may have missed revocations for: 0 while a poll is in flight
        and answering in time, else the time since the last answer."""
        now = time.monotonic()
        if not self._last_ok:
            return float("inf")
        polling = self._polling_since
        if polling is not None and now - polling < self.wait + self.timeout and self.failures == 0:
            return 0.0
        return now - self._last_ok

    @property
    def stale(self) -> bool:
        return self.staleness > self.max_staleness

    def wait_synced(self, timeout: float) -> bool:
        """Wait until the first answer from the feed arrived."""
        return self._synced.wait(timeout)

    # -- following ----------------------------------------------------------------------------
    def start(self) -> RevocationWatcher:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name="paywall-revocation-watcher", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def poll_once(self, wait: float = 0.0) -> int:
        """One request to the feed; applies what it returns and returns how many entries."""
        params: dict[str, Any] = {"wait": wait}
        if self.cursor is not None:
            params["after"] = self.cursor
        self._polling_since = time.monotonic()
        try:
            answer = self.http.get(
                self.url,
                params=params,
                headers={"Authorization": f"Bearer {self.key}"},
                timeout=wait + self.timeout,
            )
            if answer.status_code == 400 and self.cursor is not None:
                self.cursor = None  # a cursor of another database (restored, reset): start over
            if answer.status_code != 200:
                raise ConnectionError(f"revocation feed answered {answer.status_code}")
            body = answer.json()
            entries = body["revocations"]
            cursor = str(body["cursor"])
        finally:
            self._polling_since = None
        self._apply(entries)
        self.cursor = cursor
        self._last_ok = time.monotonic()
        self.failures = 0
        self._synced.set()
        return len(entries)

    def _apply(self, entries: list[dict[str, Any]]) -> None:
        now = time.monotonic()
        with self._lock:
            for entry in entries:
                sub, sid = str(entry.get("sub")), entry.get("sid")
                reason = str(entry.get("reason") or "revoked")
                if sid:
                    self._by_sid[str(sid)] = (sub, reason, now)
                else:
                    not_before = int(entry.get("not_before") or 0)
                    old = self._by_sub.get(sub)
                    if old is None or not_before >= old[0]:
                        self._by_sub[sub] = (not_before, reason, now)
            self.received += len(entries)
            self._forget(now)
        if self.on_revocation is not None:
            for entry in entries:
                self.on_revocation(entry)

    def _forget(self, now: float) -> None:
        cutoff = now - self.retention
        for sid in [s for s, v in self._by_sid.items() if v[2] < cutoff]:
            del self._by_sid[sid]
        for sub in [s for s, v in self._by_sub.items() if v[2] < cutoff]:
            del self._by_sub[sub]

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                started = time.monotonic()
                wait = self.wait if self._synced.is_set() else 0.0
                if self.poll_once(wait) == 0 and wait:
                    # Answered empty long before the wait (a server that does not hold polls,
                    # such as a gunicorn sync worker): poll about once a second, not in a loop.
                    self._stop.wait(max(0.0, min(1.0, wait) - (time.monotonic() - started)))
            except Exception as exc:  # noqa: BLE001 - keep the last state, retry with backoff
                self.failures += 1
                if self.failures == 1 or self.failures % 50 == 0:
                    log.warning("revocation feed unreachable: %s", exc)
                self._stop.wait(min(0.5 * 2 ** min(self.failures - 1, 5), 10.0))
