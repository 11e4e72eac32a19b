"""Revocations: the record that makes outstanding entitlement tokens stop working in seconds.

Every change that ends a device session or lowers a reader's access writes a
:class:`Revocation` row in the same transaction as the change:

- ``sid`` set (``session.ended``): the device session ended (sign-out, eviction, expiry, reuse,
  password reset or change, account deletion). Every token of that session is refused: a session
  never comes back, so its ``not_before`` is informational and clock skew between hosts cannot
  let one through.
- ``sid`` empty (``entitlement.changed``): the account's access went down (cancellation, refund,
  dispute, past-due lapse, downgrade, granted access ending). Tokens of the account whose ``iat``
  is before ``not_before`` (whole seconds, rounded up) are refused, so the frontend renews and the
  new token carries the new access. A token issued in the same second as the change is refused
  too, and renewed a second later.

Rows stay listed for the token lifetime plus the offline leeway
(``REVOCATION_RETENTION``), then the beat ``entitlements.revocations_purge`` deletes them:
by then every token they refer to has expired anyway.

Each process keeps the unexpired rows in memory (:class:`RevocationState`): one indexed query
every ``REVOCATION_REFRESH_INTERVAL`` seconds (default 0.25) from a background thread, never one
per token. ``/check``, ``/verify`` and the long-polled feed answer from it; a change committed
in this process is applied to it at once (after the commit), one from another instance within
the interval.

The feed cursor. Row ids come from a sequence, and on PostgreSQL transactions commit out of id
order: id 12 can become visible before id 11. A cursor that were just "the highest id seen"
would skip 11 forever. The cursor is ``<low>`` or ``<low>.<id>.<id>...``: every id at or below
``low`` has been delivered (or is a gap older than ``REVOCATION_GAP_SETTLE`` seconds: a rolled
back insert), and the listed ids above it were delivered too.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, current_app
from sqlalchemy import Float, Index, Integer, String, delete, event, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, Session, mapped_column

from paywall.clock import utcnow
from paywall.errors import PaywallError
from paywall.extensions import db
from paywall.types import DbSession, UTCDateTime

log = logging.getLogger(__name__)

SESSION_ENDED = "session.ended"
ENTITLEMENT_CHANGED = "entitlement.changed"

#: Reasons of account-wide revocations (access went down).
CANCELED = "canceled"
REFUNDED = "refunded"
DISPUTED = "disputed"
PAST_DUE = "past_due"
DOWNGRADED = "downgraded"
PERIOD_ENDED = "period_ended"
GRANT_ENDED = "grant_ended"
CUSTOMER_DELETED = "customer_deleted"
ACCESS_LOWERED = "access_lowered"
#: Reason of a session that ran out (idle or absolute lifetime), found by the sweep.
EXPIRED = "expired"

IDLE_STOP = 10.0  # seconds without a question before the refresh thread stops
MAX_CURSOR_IDS = 1000  # ids listed above the low mark; more means settle them at once


class Revocation(db.Model):  # type: ignore[name-defined,misc]
    """Tokens of ``account_id`` (of ``session_id`` when set) issued before ``not_before`` no
    longer work. No foreign keys: the record outlives a deleted account or purged session."""

    __tablename__ = "entitlement_revocations"
    __table_args__ = (
        Index("ix_entitlement_revocations_expires", "expires_at"),
        Index("ix_entitlement_revocations_account", "account_id", "session_id"),
        # Ids never reused after a purge (SQLite would reuse the highest): cursors stay valid.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(String(32))
    session_id: Mapped[str | None] = mapped_column(String(32), default=None)
    not_before: Mapped[float] = mapped_column(Float)  # Unix seconds, whole
    reason: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())

    @property
    def event(self) -> str:
        return SESSION_ENDED if self.session_id else ENTITLEMENT_CHANGED


@dataclass(frozen=True)
class Entry:
    """A revocation as the feed and the in-process state see it."""

    id: int
    sub: str
    sid: str | None
    not_before: int
    reason: str
    expires: float  # Unix seconds

    @property
    def event(self) -> str:
        return SESSION_ENDED if self.sid else ENTITLEMENT_CHANGED

    def public(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": str(self.id), "event": self.event, "sub": self.sub}
        if self.sid:
            out["sid"] = self.sid
        out["not_before"] = self.not_before
        out["reason"] = self.reason
        return out


def _entry(row: Any) -> Entry:
    return Entry(
        int(row.id),
        str(row.account_id),
        row.session_id,
        int(row.not_before),
        str(row.reason),
        row.expires_at.timestamp(),
    )


# -- recording ----------------------------------------------------------------------------
def retention(config: Any) -> timedelta:
    """How long a revocation stays listed: the token lifetime plus the offline leeway."""
    value = config.get("REVOCATION_RETENTION")
    if value is None:
        value = int(config["ENTITLEMENT_TTL"]) + int(config.get("REVOCATION_LEEWAY", 120))
    return timedelta(seconds=float(value))


_PENDING = "paywall.revocations.pending"


def record(
    session: DbSession,
    *,
    sub: str,
    reason: str,
    sid: str | None = None,
    at: datetime | None = None,
) -> Revocation:
    """Record a revocation in ``session``'s transaction (flushed, not committed); it reaches
    this process's state and the outbound webhooks when that transaction commits."""
    from paywall.entitlements import outbound

    now = utcnow()
    when = at or now
    row = Revocation(
        account_id=sub,
        session_id=sid,
        not_before=float(math.ceil(when.timestamp())),
        reason=reason[:40],
        created_at=now,
        expires_at=max(when, now) + retention(current_app.config),
    )
    session.add(row)
    session.flush()
    session.info.setdefault(_PENDING, []).append(_entry(row))
    outbound.defer_delivery(session, row)
    return row


def record_session_ends(session: DbSession, session_ids: Sequence[str]) -> list[Revocation]:
    """A ``session.ended`` revocation for each of these (just ended) device sessions."""
    from paywall.devices.models import DeviceSession

    if not session_ids:
        return []
    rows = session.execute(
        select(DeviceSession.id, DeviceSession.account_id, DeviceSession.end_reason).where(
            DeviceSession.id.in_(list(session_ids))
        )
    ).all()
    return [
        record(session, sub=account_id, sid=sid, reason=end_reason or EXPIRED)
        for sid, account_id, end_reason in rows
    ]


def record_access_lowered(
    session: DbSession,
    account_id: str,
    before: Iterable[str],
    after: Iterable[str],
    reason: str,
    at: datetime | None = None,
) -> Revocation | None:
    """An ``entitlement.changed`` revocation if ``after`` lacks a feature ``before`` had."""
    if set(before) <= set(after):
        return None
    return record(session, sub=account_id, reason=reason, at=at)


@event.listens_for(Session, "after_commit")
def _apply_after_commit(session: Session) -> None:
    if session.get_nested_transaction() is not None:
        return
    pending = session.info.pop(_PENDING, None)
    if pending:
        state = _existing_state()
        if state is not None:
            state.apply(pending)


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    if session.get_nested_transaction() is None:
        session.info.pop(_PENDING, None)


# -- the sweep: what ends by the clock ------------------------------------------------------
def sweep(session: DbSession, now: datetime | None = None) -> int:
    """Record what ended by the clock since the last sweeps, once each: device sessions that
    reached their idle or absolute lifetime, access whose cancel-at-period-end date, past-due
    grace or grant ran out. Looks back ``REVOCATION_SWEEP_LOOKBACK`` seconds; returns how
    many were recorded."""
    from paywall.billing.models import Subscription
    from paywall.devices.models import DeviceSession
    from paywall.devices.services import DevicePolicy
    from paywall.grants.models import AccessGrant

    cfg = current_app.config
    now = now or utcnow()
    since = now - timedelta(seconds=float(cfg["REVOCATION_SWEEP_LOOKBACK"]))
    policy = DevicePolicy.from_config(cfg)
    known = {
        (r.account_id, r.session_id, r.not_before, r.reason)
        for r in session.scalars(select(Revocation).where(Revocation.created_at >= since))
    }
    known_sids = {sid for _sub, sid, _nb, _reason in known if sid}
    count = 0

    def once(sub: str, sid: str | None, at: datetime, reason: str) -> None:
        nonlocal count
        if sid is not None and sid in known_sids:
            return
        key = (sub, sid, float(math.ceil(at.timestamp())), reason)
        if key in known:
            return
        known.add(key)
        record(session, sub=sub, sid=sid, reason=reason, at=at)
        count += 1

    expired = session.execute(
        select(
            DeviceSession.id,
            DeviceSession.account_id,
            DeviceSession.expires_at,
            DeviceSession.last_seen_at,
        ).where(
            DeviceSession.ended_at.is_(None),
            (
                (DeviceSession.expires_at > since) & (DeviceSession.expires_at <= now)
                | (DeviceSession.last_seen_at > since - policy.idle_timeout)
                & (DeviceSession.last_seen_at <= now - policy.idle_timeout)
            ),
        )
    ).all()
    for sid, sub, expires_at, last_seen in expired:
        once(sub, sid, min(expires_at, last_seen + policy.idle_timeout), EXPIRED)

    grace = timedelta(days=float(cfg["PAST_DUE_GRACE_DAYS"]))
    for sub_row in session.scalars(
        select(Subscription).where(
            (
                Subscription.cancel_at_period_end.is_(True)
                & (Subscription.current_period_end > since)
                & (Subscription.current_period_end <= now)
            )
            | (
                (Subscription.status == "past_due")
                & (Subscription.past_due_since > since - grace)
                & (Subscription.past_due_since <= now - grace)
            )
        )
    ):
        if sub_row.status == "past_due" and sub_row.past_due_since is not None:
            once(sub_row.account_id, None, sub_row.past_due_since + grace, PAST_DUE)
        elif sub_row.current_period_end is not None:
            once(sub_row.account_id, None, sub_row.current_period_end, PERIOD_ENDED)
    for grant in session.scalars(
        select(AccessGrant).where(
            AccessGrant.revoked_at.is_(None), AccessGrant.until > since, AccessGrant.until <= now
        )
    ):
        once(grant.account_id, None, grant.until, GRANT_ENDED)
    session.flush()
    return count


def purge(session: DbSession, now: datetime | None = None) -> int:
    """Delete revocations past their listing time; returns how many."""
    result = session.execute(
        delete(Revocation).where(Revocation.expires_at <= (now or utcnow())),
        execution_options={"synchronize_session": False},
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# -- the cursor -------------------------------------------------------------------------------
class InvalidCursor(PaywallError):
    code, status = "invalid_cursor", 400
    message = "The cursor is not one this feed gave out."


@dataclass(frozen=True)
class Cursor:
    low: int
    above: frozenset[int] = frozenset()

    @classmethod
    def parse(cls, text: str | None) -> Cursor:
        if not text:
            return cls(0)
        parts = text.split(".")
        if len(parts) > MAX_CURSOR_IDS + 1 or not all(p.isdigit() and len(p) < 19 for p in parts):
            raise InvalidCursor()
        low = int(parts[0])
        above = frozenset(int(p) for p in parts[1:])
        if any(i <= low for i in above):
            raise InvalidCursor()
        return cls(low, above)

    def __str__(self) -> str:
        return ".".join([str(self.low), *(str(i) for i in sorted(self.above))])

    def covers(self, entry_id: int) -> bool:
        return entry_id <= self.low or entry_id in self.above


# -- the in-process state ---------------------------------------------------------------------
class RevocationState:
    """The unexpired revocations, kept in memory and refreshed from the table by one query
    per interval. ``is_revoked`` never touches the database."""

    def __init__(self, engine: Engine, *, interval: float = 0.25, settle: float = 60.0) -> None:
        self.engine = engine
        self.interval = interval
        self.settle = settle
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._entries: dict[int, Entry] = {}
        self._by_sid: dict[str, Entry] = {}
        self._by_sub: dict[str, Entry] = {}  # the latest account-wide not_before per sub
        self._low = 0  # every id <= low is known or a settled gap
        self._gaps_seen: dict[int, float] = {}  # gap id -> monotonic time first noticed
        self._refreshed = 0.0  # monotonic time of the last successful refresh
        self._refresh_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._stop = threading.Event()
        self._used = 0.0  # monotonic time of the last question asked
        self._listeners: list[Callable[[], None]] = []
        self.errors = 0

    # -- answering --------------------------------------------------------------------------
    def is_revoked(self, sub: str, sid: str, iat: int | float) -> str | None:
        """Why a token of ``sub``/``sid`` issued at ``iat`` is revoked, or None."""
        self._ensure_fresh()
        by_sid = self._by_sid.get(sid)
        if by_sid is not None and by_sid.sub == sub:
            return by_sid.reason
        by_sub = self._by_sub.get(sub)
        if by_sub is not None and iat < by_sub.not_before:
            return by_sub.reason
        return None

    @property
    def staleness(self) -> float:
        """Seconds since the state last matched the table."""
        return time.monotonic() - self._refreshed if self._refreshed else math.inf

    def cursor(self) -> Cursor:
        with self._lock:
            return Cursor(self._low, frozenset(i for i in self._entries if i > self._low))

    def since(self, cursor: Cursor) -> tuple[list[Entry], Cursor]:
        """Entries the holder of ``cursor`` has not seen, and the cursor after them."""
        with self._lock:
            return self._since_locked(cursor)

    def _since_locked(self, cursor: Cursor) -> tuple[list[Entry], Cursor]:
        now = time.time()
        fresh = [
            e for i, e in sorted(self._entries.items()) if not cursor.covers(i) and e.expires > now
        ]
        low = max(cursor.low, self._low)
        above = {i for i in cursor.above if i > low}
        above.update(e.id for e in fresh if e.id > low)
        if len(above) > MAX_CURSOR_IDS:
            low = max(above)
            above = set()
        return fresh, Cursor(low, frozenset(above))

    def wait(self, cursor: Cursor, timeout: float) -> tuple[list[Entry], Cursor]:
        """Like ``since``, but waits up to ``timeout`` seconds for something new."""
        self._ensure_fresh()
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found, after = self._since_locked(cursor)
                remaining = deadline - time.monotonic()
                if found or remaining <= 0:
                    return found, after
                self._used = time.monotonic()
                self._changed.wait(min(remaining, max(self.interval * 4, 1.0)))

    # -- keeping fresh ------------------------------------------------------------------------
    def listen(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` (from the refreshing thread) whenever entries are added."""
        self._listeners.append(callback)

    def touch(self) -> None:
        """Someone is waiting: keep the refresh thread running (refresh now if it is late)."""
        self._ensure_fresh()

    def _notify(self) -> None:
        for callback in list(self._listeners):
            callback()

    def apply(self, entries: Iterable[Entry]) -> None:
        """Add entries committed in this process (the feed query brings them again later)."""
        with self._changed:
            added = self._add(entries)
            self._changed.notify_all()
        if added:
            self._notify()

    def _add(self, entries: Iterable[Entry]) -> bool:
        added = False
        for e in entries:
            if e.id in self._entries:
                continue
            added = True
            self._entries[e.id] = e
            if e.sid:
                self._by_sid[e.sid] = e
            else:
                old = self._by_sub.get(e.sub)
                if old is None or e.not_before >= old.not_before:
                    self._by_sub[e.sub] = e
        return added

    def _ensure_fresh(self) -> None:
        self._used = time.monotonic()
        self._ensure_thread()
        # The background thread is late (a stalled or just-forked process): refresh here, once.
        if self.staleness > max(self.interval * 8, 2.0) and self._refresh_lock.acquire(
            blocking=False
        ):
            try:
                self.refresh()
            except Exception:  # noqa: BLE001 - keep the last state; staleness tells
                self.errors += 1
                log.warning("revocation refresh failed", exc_info=True)
            finally:
                self._refresh_lock.release()

    def refresh(self) -> None:
        """One query: every row above the low mark (gaps and rows not yet seen)."""
        table = Revocation.__table__
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    table.c.id,
                    table.c.account_id,
                    table.c.session_id,
                    table.c.not_before,
                    table.c.reason,
                    table.c.expires_at,
                )
                .where(table.c.id > self._low)
                .order_by(table.c.id)
            ).all()
            conn.rollback()
        entries = [_entry(r) for r in rows]
        with self._changed:
            added = self._add(entries)
            self._advance_low()
            self._expire()
            self._refreshed = time.monotonic()
            if added:
                self._changed.notify_all()
        if added:
            self._notify()

    def _advance_low(self) -> None:
        now = time.monotonic()
        top = max(self._entries, default=self._low)
        low = self._low
        while low < top:
            nxt = low + 1
            if nxt in self._entries:
                low = nxt
                continue
            first = self._gaps_seen.setdefault(nxt, now)
            if now - first < self.settle:
                break  # a transaction may still commit it
            del self._gaps_seen[nxt]
            low = nxt
        self._low = low

    def _expire(self) -> None:
        now = time.time()
        for i in [i for i, e in self._entries.items() if e.expires <= now and i <= self._low]:
            e = self._entries.pop(i)
            if e.sid and self._by_sid.get(e.sid) is e:
                del self._by_sid[e.sid]
            if not e.sid and self._by_sub.get(e.sub) is e:
                del self._by_sub[e.sub]

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
            return
        with self._refresh_lock:
            if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
                return
            self._pid = os.getpid()  # after a fork the parent's thread is not ours
            self._thread = threading.Thread(
                target=self._run, name="paywall-revocations", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        # An idle process stops asking (the next question refreshes inline and restarts it).
        while not self._stop.is_set() and time.monotonic() - self._used < IDLE_STOP:
            try:
                self.refresh()
            except Exception:  # noqa: BLE001 - keep the last state; staleness tells
                self.errors += 1
                if self.errors == 1 or self.errors % 100 == 0:
                    log.warning("revocation refresh failed", exc_info=True)
                self._stop.wait(min(self.interval * 8, 5.0))
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()


_KEY = "paywall.revocations"


def revocation_state(app: Flask | None = None) -> RevocationState:
    """This process's revocation state for ``app`` (default: the current app)."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    state = app.extensions.get(_KEY)
    if state is None:
        with _CREATE_LOCK:
            state = app.extensions.get(_KEY)
            if state is None:
                with app.app_context():
                    engine = db.engine
                cfg = app.config
                state = RevocationState(
                    engine,
                    interval=float(cfg["REVOCATION_REFRESH_INTERVAL"]),
                    settle=float(cfg["REVOCATION_GAP_SETTLE"]),
                )
                app.extensions[_KEY] = state
                try:
                    state.refresh()
                except Exception:  # noqa: BLE001 - the thread retries; staleness tells
                    state.errors += 1
                    log.warning("revocation refresh failed", exc_info=True)
    return state  # type: ignore[no-any-return]


_CREATE_LOCK = threading.Lock()


def _existing_state() -> RevocationState | None:
    from flask import has_app_context

    if not has_app_context():
        return None
    return current_app.extensions.get(_KEY)  # type: ignore[no-any-return]
