"""Device sessions: open one at login under the account's cap, list, sign out, time out.

The cap holds under concurrency because every path that adds a session first locks the account
row (``SELECT ... FOR UPDATE`` on PostgreSQL; on SQLite every transaction already holds the write
lock, see ``paywall.database``), then counts. Two logins of one account therefore count one
after the other, never both seeing four.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple, NoReturn

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm.attributes import set_committed_value

from paywall import metrics
from paywall.accounts.models import Account
from paywall.clock import utcnow
from paywall.devices import emails
from paywall.devices.models import (
    ACCOUNT_DELETED,
    CAP_LOWERED,
    EVICTED,
    PASSWORD_CHANGED,
    REVOKED,
    SESSION_REUSED,
    SIGNED_OUT,
    DeviceSession,
    RetiredSessionValue,
)
from paywall.errors import NotFound, PaywallError
from paywall.outbox.services import Outbox
from paywall.ports import billing
from paywall.types import DbSession

TOKEN_BYTES = 32  # 256 bits from the OS CSPRNG; OWASP asks for at least 64 bits of entropy
#: Rotated-out values kept per session beyond the last one (an hour and more of reading at the
#: default interval); an older copy is merely unknown (401 ``unauthorized``).
RETIRED_VALUES_KEPT = 12


class DeviceLimitReached(PaywallError):
    code, status = "device_limit_reached", 409
    message = "This account is signed in on the maximum number of devices."


class SessionEnded(PaywallError):
    """The presented session exists but no longer works; ``code`` says why."""

    status = 401


@dataclass(frozen=True)
class DevicePolicy:
    max_devices: int
    policy: str  # "refuse" or "evict_lru"
    idle_timeout: timedelta
    absolute_lifetime: timedelta
    touch_interval: timedelta
    rotation_interval: timedelta = timedelta(seconds=300)
    rotation_grace: timedelta = timedelta(seconds=30)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> DevicePolicy:
        return cls(
            max_devices=int(config["MAX_DEVICES"]),
            policy=config["DEVICE_POLICY"],
            idle_timeout=timedelta(seconds=int(config["SESSION_IDLE_TIMEOUT"])),
            absolute_lifetime=timedelta(seconds=int(config["SESSION_ABSOLUTE_LIFETIME"])),
            touch_interval=timedelta(seconds=int(config["SESSION_TOUCH_INTERVAL"])),
            rotation_interval=timedelta(seconds=float(config["SESSION_ROTATION_INTERVAL"])),
            rotation_grace=timedelta(seconds=float(config["SESSION_ROTATION_GRACE"])),
        )


class Authenticated(NamedTuple):
    """Who presented a session value; ``new_value`` is the value that replaced it in this
    request (send it to the client), or None."""

    device: DeviceSession
    account: Account
    new_value: str | None = None


def digest(raw_token: str) -> str:
    """What the database stores instead of the session value."""
    return hashlib.sha256(raw_token.encode()).hexdigest()


def end_code(session: Any, now: datetime, policy: DevicePolicy) -> str | None:
    """Why ``session`` no longer works (an error code), or None if it is active."""
    if session.ended_at is not None:
        return _END_CODES.get(session.end_reason or "", "session_revoked")
    if now >= session.expires_at or now - session.last_seen_at >= policy.idle_timeout:
        return "session_expired"
    return None


_END_CODES = {
    EVICTED: "session_evicted",
    CAP_LOWERED: "session_evicted",
    SESSION_REUSED: "session_reused",
}


def quiet_use(session: Any, now: datetime, policy: DevicePolicy) -> bool:
    """True when presenting the session's *current* value at ``now`` changes nothing: the
    session is active, the value was used before, and neither a rotation nor the last-seen
    touch is due. Only then may a caller skip ``DeviceService.authenticate`` (the token
    refresh reads such a session with one Core statement); ``session`` is a
    ``DeviceSession`` or a row with its columns."""
    return (
        end_code(session, now, policy) is None
        and session.token_used_at is not None
        and now - (session.rotated_at or session.created_at) < policy.rotation_interval
        and now - session.last_seen_at < policy.touch_interval
    )


def lru_first(sessions: Sequence[DeviceSession]) -> list[DeviceSession]:
    """Sessions ordered least recently used first (ties: oldest login first)."""
    return sorted(sessions, key=lambda s: (s.last_seen_at, s.created_at, s.id))


class DeviceService:
    """Every rule about device sessions. Flushes; the request commits."""

    def __init__(
        self,
        session: DbSession,
        policy: DevicePolicy,
        cap_for: Callable[[Account], int] | None = None,
        devices_link: str = "/devices",
    ) -> None:
        self.session = session
        self.policy = policy
        self.cap_for = cap_for or (lambda _account: policy.max_devices)
        self.devices_link = devices_link  # where emails send the reader to check devices
        self.evicted: list[DeviceSession] = []  # signed out by logins in this request

    # -- reading ---------------------------------------------------------------------------
    def _active_clause(self, now: datetime) -> Any:
        return (
            DeviceSession.ended_at.is_(None),
            DeviceSession.expires_at > now,
            DeviceSession.last_seen_at > now - self.policy.idle_timeout,
        )

    def active_sessions(self, account_id: str) -> list[DeviceSession]:
        now = utcnow()
        rows = self.session.scalars(
            select(DeviceSession).where(
                DeviceSession.account_id == account_id, *self._active_clause(now)
            )
        ).all()
        return sorted(rows, key=lambda s: s.last_seen_at, reverse=True)

    def authenticate(self, raw_token: str) -> Authenticated:
        """The active session for a cookie or bearer value, and its account (one round trip
        unless the value was rotated out); the session is touched at most once a minute and
        its value rotated once every rotation interval."""
        presented = digest(raw_token)
        query = select(DeviceSession, Account).join(Account, Account.id == DeviceSession.account_id)
        row = self.session.execute(query.where(DeviceSession.token_digest == presented)).first()
        is_current = row is not None
        if row is None:
            row = self.session.execute(
                query.where(DeviceSession.previous_digest == presented)
            ).first()
        retired_grace: datetime | None = None
        if row is None:
            retired = self.session.execute(
                select(DeviceSession, Account, RetiredSessionValue.grace_until)
                .join(Account, Account.id == DeviceSession.account_id)
                .join(RetiredSessionValue, RetiredSessionValue.session_id == DeviceSession.id)
                .where(RetiredSessionValue.digest == presented)
            ).first()
            if retired is None:
                raise SessionEnded("Sign in first.", code="unauthorized")
            found, account, retired_grace = retired
        else:
            found, account = row
        now = utcnow()
        code = end_code(found, now, self.policy)
        if code is not None:
            reason = found.end_reason or ("expired" if code == "session_expired" else None)
            message = _REASON_MESSAGES.get(reason or "", _END_MESSAGES[code])
            raise SessionEnded(message, code=code, extra={"reason": reason})
        new_value: str | None = None
        if retired_grace is not None:
            self._use_retired(found, account, now, retired_grace)
        elif is_current:
            new_value = self._use_current(found, now)
        else:
            new_value = self._use_previous(found, account, now)
        if now - found.last_seen_at >= self.policy.touch_interval:
            # Conditional update: concurrent requests of one device write once.
            self.session.execute(
                update(DeviceSession)
                .where(
                    DeviceSession.id == found.id,
                    DeviceSession.last_seen_at <= now - self.policy.touch_interval,
                )
                .values(last_seen_at=now)
            )
            set_committed_value(found, "last_seen_at", now)
            self.session.info["touched"] = True
        return Authenticated(found, account, new_value)

    # -- rotation (OAuth 2.1 refresh-token rotation, applied to the session value) ----------
    def _use_current(self, found: DeviceSession, now: datetime) -> str | None:
        """The current value was presented: note its first use (from then on the grace of the
        value it replaced runs), and rotate it once it is a rotation interval old."""
        if found.token_used_at is None:
            self.session.execute(
                update(DeviceSession)
                .where(
                    DeviceSession.id == found.id,
                    DeviceSession.token_digest == found.token_digest,
                    DeviceSession.token_used_at.is_(None),
                )
                .values(token_used_at=now)
                .execution_options(synchronize_session=False)
            )
            set_committed_value(found, "token_used_at", now)
            self.session.info["touched"] = True
        if now - (found.rotated_at or found.created_at) < self.policy.rotation_interval:
            return None
        return self._rotate(found, now, previous=found.token_digest)

    def _use_previous(self, found: DeviceSession, account: Account, now: datetime) -> str | None:
        """The value the current one replaced was presented. It works until the current value
        has been used and the grace has run out; after that it was copied: the session ends."""
        used = found.token_used_at
        if used is not None and now - used >= self.policy.rotation_grace:
            self._reused(found, account)
        if used is None and now - (found.rotated_at or now) >= self.policy.rotation_interval:
            # The response with the new value was lost long ago: offer another one. The old
            # value stays the previous one, so its copies are still recognised.
            return self._rotate(found, now, previous=found.previous_digest)
        return None

    def _use_retired(
        self, found: DeviceSession, account: Account, now: datetime, grace_until: datetime
    ) -> None:
        """A value replaced two or more rotations ago: a copy, unless it is still in its grace
        (rotations only a grace apart)."""
        if now >= grace_until:
            self._reused(found, account)

    def _reused(self, found: DeviceSession, account: Account) -> NoReturn:
        self._end_reused(found.id, account)
        raise SessionEnded(
            _REASON_MESSAGES[SESSION_REUSED],
            code="session_reused",
            extra={"reason": SESSION_REUSED},
        )

    def _rotate(self, found: DeviceSession, now: datetime, *, previous: str | None) -> str | None:
        """Replace the session value; returns the new raw value, or None when a concurrent
        request with the same value replaced it first (compare-and-set on the digest: on
        PostgreSQL the second UPDATE waits for the first and then matches no row)."""
        raw = secrets.token_urlsafe(TOKEN_BYTES)
        dropped, dropped_grace = found.previous_digest, found.token_used_at  # before the UPDATE
        values = {
            "token_digest": digest(raw),
            "previous_digest": previous,
            "rotated_at": now,
            "token_used_at": None,
            "last_seen_at": now,
        }
        result = self.session.execute(
            update(DeviceSession)
            .where(
                DeviceSession.id == found.id,
                DeviceSession.token_digest == found.token_digest,
                DeviceSession.ended_at.is_(None),
            )
            .values(**values)
            # Not "evaluate": a request that loses the compare-and-set keeps what it read.
            .execution_options(synchronize_session=False)
        )
        self.session.info["touched"] = True
        if int(result.rowcount or 0) != 1:  # type: ignore[attr-defined]
            return None
        if dropped is not None and previous != dropped:
            # The value before the one just replaced stays recognised as a copy; its grace
            # ended (or ends) a grace after its successor was first used.
            self._retire(found.id, dropped, (dropped_grace or now) + self.policy.rotation_grace)
        for key, value in values.items():
            set_committed_value(found, key, value)
        return raw

    def _retire(self, session_id: str, value_digest: str, grace_until: datetime) -> None:
        self.session.add(
            RetiredSessionValue(digest=value_digest, session_id=session_id, grace_until=grace_until)
        )
        self.session.flush()
        keep = (
            select(RetiredSessionValue.digest)
            .where(RetiredSessionValue.session_id == session_id)
            .order_by(RetiredSessionValue.retired_at.desc())
            .limit(RETIRED_VALUES_KEPT)
        )
        self.session.execute(
            delete(RetiredSessionValue).where(
                RetiredSessionValue.session_id == session_id,
                RetiredSessionValue.digest.not_in(keep.scalar_subquery()),
            ),
            execution_options={"synchronize_session": False},
        )

    def _end_reused(self, session_id: str, account: Account) -> None:
        """End a session whose rotated-out value came back, once, and tell the reader."""
        locked = self.session.scalar(
            select(DeviceSession)
            .where(DeviceSession.id == session_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        if locked is None or locked.ended_at is not None:
            return  # a concurrent request with the same copy ended it first
        self._end(locked, SESSION_REUSED)
        mail = emails.session_reused(locked.device_name, self.devices_link)
        Outbox(self.session).enqueue(
            to=account.email, dedupe_key=f"session_reused:{locked.id}", **mail._asdict()
        )
        self.session.info["touched"] = True

    # -- changing --------------------------------------------------------------------------
    def lock_account(self, account_id: str) -> Account:
        """Serialise every change to this account's sessions (see the module docstring)."""
        account = self.session.scalar(
            select(Account)
            .where(Account.id == account_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        if account is None:
            raise NotFound("No such account.")
        return account

    def open_session(
        self,
        account: Account,
        *,
        device_name: str | None,
        user_agent: str = "",
        replace_session_id: str | None = None,
        verified_changed_at: datetime | None = None,
    ) -> tuple[DeviceSession, str]:
        """Sign a new device in under the cap; returns the session and its raw value.
        ``verified_changed_at`` is the account's ``password_changed_at`` when the login checked
        the password: if a reset or change committed since (or the account was deleted), the
        login is refused (re-checked under the account lock). A concurrent login's rehash
        (same password, new parameters) changes the hash but not that time, so it is no
        reason to refuse."""
        locked = self.lock_account(account.id)
        if verified_changed_at is not None and (
            locked.password_changed_at != verified_changed_at or locked.deleted_at is not None
        ):
            raise PaywallError(
                "The email or password is not correct.", code="invalid_credentials", status=401
            )
        active = self.active_sessions(account.id)
        cap = self.cap_for(account)
        if replace_session_id is not None:
            target = next((s for s in active if s.id == replace_session_id), None)
            if target is None:
                raise PaywallError(
                    "That device is not signed in on this account.",
                    code="unknown_session",
                    status=422,
                    extra={"devices": [describe(s) for s in active]},
                )
            self._end(target, EVICTED, cause="replaced")
            self.evicted.append(target)
            active.remove(target)
        overflow = len(active) - cap + 1
        if overflow > 0:
            if self.policy.policy != "evict_lru":
                raise DeviceLimitReached(
                    extra={"devices": [describe(s) for s in active], "limit": cap}
                )
            for victim in lru_first(active)[:overflow]:
                self._end(victim, EVICTED, cause="login_lru")
                self.evicted.append(victim)
        raw = secrets.token_urlsafe(TOKEN_BYTES)
        now = utcnow()
        device = DeviceSession(
            account_id=account.id,
            token_digest=digest(raw),
            token_used_at=now,  # nothing was replaced: no grace to start
            device_name=(device_name or _device_name(user_agent))[:100],
            user_agent=user_agent[:300],
            created_at=now,
            last_seen_at=now,
            expires_at=now + self.policy.absolute_lifetime,
        )
        self.session.add(device)
        self.session.flush()
        return device, raw

    def sign_out(self, account_id: str, session_id: str, *, current_id: str) -> None:
        """End one of the account's sessions: the current one logs out, another is revoked."""
        target = self.session.scalar(
            select(DeviceSession).where(
                DeviceSession.id == session_id,
                DeviceSession.account_id == account_id,
                DeviceSession.ended_at.is_(None),
            )
        )
        if target is None:
            raise NotFound("No such device session.")
        self._end(target, SIGNED_OUT if session_id == current_id else REVOKED)

    def end_all(
        self, account_id: str, reason: str = REVOKED, keep_session_id: str | None = None
    ) -> int:
        """End every session of the account but ``keep_session_id`` (password reset or
        change); returns how many."""
        ended = list(
            self.session.scalars(
                update(DeviceSession)
                .where(
                    DeviceSession.account_id == account_id,
                    DeviceSession.ended_at.is_(None),
                    DeviceSession.id != (keep_session_id or ""),
                )
                .values(ended_at=utcnow(), end_reason=reason)
                .returning(DeviceSession.id)
                .execution_options(synchronize_session="fetch")
            )
        )
        _session_ended(self.session, session_ids=ended)
        return len(ended)

    def is_new_device(self, device: DeviceSession) -> bool:
        """True when the account has signed in before, but never from this browser and
        device name (the reader is told, ASVS 6.3.7)."""
        earlier = self.session.scalars(
            select(DeviceSession).where(
                DeviceSession.account_id == device.account_id, DeviceSession.id != device.id
            )
        ).all()
        return bool(earlier) and not any(
            (s.user_agent, s.device_name) == (device.user_agent, device.device_name)
            for s in earlier
        )

    def sign_out_others(self, account_id: str, current_id: str) -> int:
        """ "Sign out everywhere else": every session but this one; returns how many."""
        return self.end_all(account_id, REVOKED, keep_session_id=current_id)

    def enforce_cap(self, account: Account) -> list[DeviceSession]:
        """After the cap went down (a plan change), evict the least recently used overflow."""
        self.lock_account(account.id)
        active = self.active_sessions(account.id)
        overflow = len(active) - self.cap_for(account)
        victims = lru_first(active)[:overflow] if overflow > 0 else []
        for victim in victims:
            self._end(victim, CAP_LOWERED, cause="cap_lowered")
        return victims

    def purge_ended(self, older_than: timedelta) -> int:
        """Delete sessions that ended or expired more than ``older_than`` ago."""
        cutoff = utcnow() - older_than
        stale = select(DeviceSession.id).where(
            or_(
                DeviceSession.ended_at < cutoff,
                DeviceSession.expires_at < cutoff,
                DeviceSession.last_seen_at < cutoff - self.policy.idle_timeout,
            )
        )

        result = self.session.execute(
            delete(DeviceSession).where(DeviceSession.id.in_(stale)),
            execution_options={"synchronize_session": False},
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    def _end(self, device: DeviceSession, reason: str, cause: str | None = None) -> None:
        device.ended_at = utcnow()
        device.end_reason = reason
        self.session.flush()
        if cause is not None:
            metrics.count_on_commit(self.session, metrics.EVICTIONS.labels(cause))
        _session_ended(self.session, session_ids=[device.id])


def _session_ended(session: DbSession, *, session_ids: Sequence[str]) -> None:
    """What else ends with a device session, in the same transaction: its push
    subscriptions, and a ``session.ended`` revocation so its outstanding entitlement tokens
    stop working within seconds (every path that ends a session comes through here)."""
    from paywall.entitlements.revocations import record_session_ends
    from paywall.notifications.services import forget_push_subscriptions

    if not session_ids:
        return
    forget_push_subscriptions(session, session_ids=list(session_ids))
    record_session_ends(session, session_ids)


#: Why a device was signed out, in the words the device is shown (the code stays one of three).
_REASON_MESSAGES = {
    EVICTED: "This device was signed out because another device signed in at the account's "
    "device limit.",
    CAP_LOWERED: "This device was signed out because the account's plan now allows fewer devices.",
    REVOKED: "This device was signed out from another device.",
    PASSWORD_CHANGED: "This device was signed out because the account's password was changed.",
    ACCOUNT_DELETED: "This device was signed out because the account was deleted.",
    SESSION_REUSED: "This device was signed out because its sign-in was copied and used on "
    "another device. Sign in again, and change your password if that was not you.",
    "expired": "This session expired after a long time without use. Sign in again.",
}

_END_MESSAGES = {
    "session_evicted": "This device was signed out because another device signed in "
    "at the account's device limit.",
    "session_revoked": "This device was signed out.",
    "session_expired": "This session has expired. Sign in again.",
    "session_reused": _REASON_MESSAGES[SESSION_REUSED],
}


def describe(device: DeviceSession, current_id: str | None = None) -> dict[str, Any]:
    """The public view of a device session."""
    return {
        "id": device.id,
        "device_name": device.device_name,
        "created_at": device.created_at.isoformat(),
        "last_seen_at": device.last_seen_at.isoformat(),
        "current": device.id == current_id,
    }


def _device_name(user_agent: str) -> str:
    ua = user_agent.lower()
    browser = next(
        (name for key, name in _BROWSERS if key in ua), "Browser" if "mozilla" in ua else "Device"
    )
    system = next((name for key, name in _SYSTEMS if key in ua), "")
    return f"{browser} on {system}" if system else browser


_BROWSERS = (("edg/", "Edge"), ("firefox", "Firefox"), ("chrome", "Chrome"), ("safari", "Safari"))
_SYSTEMS = (
    ("iphone", "iPhone"),
    ("ipad", "iPad"),
    ("android", "Android"),
    ("windows", "Windows"),
    ("mac os", "macOS"),
    ("linux", "Linux"),
)


def device_service() -> DeviceService:
    """The request's DeviceService, built from the app's configuration."""
    from flask import current_app, g

    from paywall.extensions import db

    if "device_service" not in g:
        g.device_service = DeviceService(
            db.session,
            DevicePolicy.from_config(current_app.config),
            cap_for=billing().device_cap,
            devices_link=current_app.config["PUBLIC_URL"].rstrip("/") + "/devices",
        )
    return g.device_service  # type: ignore[no-any-return]
