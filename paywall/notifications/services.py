"""Every rule about story notifications: opting in, preferences, publishing, and the fan-out.

Exactly once: a story gets one ``StoryDelivery`` row per (story, push subscription) and per
(story, reader) for email, under a unique key, planned in one transaction. A worker claims a
few rows at a time (``sending``, committed before anything is sent) and records each answer as
soon as it has it, so a second run of a job sends nothing already recorded. A worker that dies
leaves at most the one message it was sending unrecorded; after the claim lease that message is
sent again with the same RFC 8030 ``Topic``, which makes the push service replace the copy it
holds (and the service worker shows it under the same tag) rather than show two.

The fan-out runs on the job queue (``paywall.queue``): publishing records a ``PLAN_STORY`` job
in the request's transaction; planning records one ``DELIVER_BATCH`` job per batch in its own;
a batch with messages to retry records its next run (see ``paywall.notifications.tasks``).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import Connection, and_, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from paywall import metrics
from paywall.accounts.models import Account
from paywall.billing.services import BillingService
from paywall.clock import utcnow
from paywall.devices.models import DeviceSession
from paywall.devices.services import DevicePolicy, end_code
from paywall.errors import NotFound, PaywallError
from paywall.notifications import emails
from paywall.notifications.models import (
    DELIVERED,
    EMAIL,
    FAILED,
    GONE,
    PUSH,
    QUEUED,
    RETRY,
    SENDING,
    SKIPPED,
    NotificationPreference,
    PushSubscription,
    Story,
    StoryDelivery,
)
from paywall.notifications.push import PushResult, PushSender, message_topic
from paywall.outbox.services import Outbox
from paywall.queue import defer
from paywall.types import DbSession

log = logging.getLogger(__name__)

FEATURE = "notifications"
UNSUBSCRIBE_SALT = "notifications-unsubscribe"
CLAIM_CHUNK = 25  # rows a worker claims at a time within a batch
MAX_PAYLOAD = 3072  # bytes of JSON before encryption: well under the 4 KB push services take
PENDING = (QUEUED, SENDING, RETRY)

#: The jobs of a story's fan-out (paywall.notifications.tasks).
PLAN_STORY = "notifications.plan_story"
DELIVER_BATCH = "notifications.deliver_batch"


class FeatureRequired(PaywallError):
    code, status = "feature_required", 403
    message = "Story notifications come with a plan that includes them."


class EndpointNotAllowed(PaywallError):
    code, status = "push_endpoint_not_allowed", 422
    message = "This push service is not one the site sends notifications through."


class UnknownTopics(PaywallError):
    code, status = "validation_error", 422


@dataclass(frozen=True)
class NotificationSettings:
    allowed_origins: tuple[str, ...]
    topics: tuple[str, ...]
    site_url: str
    public_url: str
    secret_key: str
    ttl: int
    max_attempts: int
    backoff: float
    batch_size: int
    claim_lease: timedelta

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> NotificationSettings:
        return cls(
            allowed_origins=tuple(config["PUSH_ALLOWED_ORIGINS"]),
            topics=tuple(config["NOTIFICATION_TOPICS"]),
            site_url=str(config["SITE_URL"]),
            public_url=str(config["PUBLIC_URL"]),
            secret_key=str(config["SECRET_KEY"]),
            ttl=int(config["PUSH_TTL"]),
            max_attempts=int(config["PUSH_MAX_ATTEMPTS"]),
            backoff=float(config["PUSH_RETRY_BACKOFF"]),
            batch_size=int(config["NOTIFICATION_BATCH_SIZE"]),
            claim_lease=timedelta(seconds=float(config["NOTIFICATION_CLAIM_LEASE"])),
        )


# -- pure rules ---------------------------------------------------------------------------------
_DEFAULT_PORTS = {"https": 443, "http": 80}


def endpoint_allowed(endpoint: str, allowed: Iterable[str]) -> bool:
    """Whether the service may POST to ``endpoint``: its origin is listed (``https://*.x``
    matches any subdomain of x); plain http only where an origin is listed with http."""
    try:
        parts = urlsplit(endpoint)
        port = parts.port
    except ValueError:
        return False
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in _DEFAULT_PORTS or not host or parts.username or parts.password:
        return False
    port = port or _DEFAULT_PORTS[scheme]
    for origin in allowed:
        listed = urlsplit(origin.strip())
        listed_host = (listed.hostname or "").lower()
        listed_scheme = listed.scheme.lower()
        if listed_scheme != scheme or (listed.port or _DEFAULT_PORTS.get(listed_scheme)) != port:
            continue
        if listed_host.startswith("*."):
            suffix = listed_host[1:]  # ".notify.windows.com"
            if host.endswith(suffix) and len(host) > len(suffix):
                return True
        elif host == listed_host:
            return True
    return False


def follows(story_topics: Sequence[str], followed: Sequence[str] | None) -> bool:
    """A story without topics reaches everyone; ``followed`` None means every topic."""
    if not story_topics or followed is None:
        return True
    return bool(set(story_topics) & set(followed))


def url_within(url: str, base: str) -> bool:
    """``url`` is on the news site: same scheme and host, under its path."""
    parts, site = urlsplit(url), urlsplit(base)
    if parts.username or parts.password:
        return False
    if (parts.scheme.lower(), parts.netloc.lower()) != (site.scheme.lower(), site.netloc.lower()):
        return False
    return parts.path.startswith(site.path.rstrip("/") + "/") or parts.path == site.path


def push_payload(story: Story) -> bytes:
    """The push message: title, body, url, story id; never premium text. The summary is cut
    to keep the message under ``MAX_PAYLOAD``."""

    def encode(body: str) -> bytes:
        message = {"title": story.title, "body": body, "url": story.url, "story_id": story.id}
        return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode()

    body = story.summary or ""
    data = encode(body)
    while len(data) > MAX_PAYLOAD and body:
        keep = max(0, len(body.encode()) - (len(data) - MAX_PAYLOAD) - len("…".encode()))
        body = body.encode()[:keep].decode(errors="ignore").rstrip()
        data = encode(body + "…" if body else "")
    return data


def backoff_seconds(attempts: int, base: float, retry_after: float | None) -> float:
    """Exponential backoff from ``base`` after ``attempts`` tries; Retry-After wins if later."""
    delay = base * (2 ** max(0, attempts - 1))
    return max(delay, retry_after or 0.0)


def endpoint_digest(endpoint: str) -> str:
    return hashlib.sha256(endpoint.encode()).hexdigest()


def forget_push_subscriptions(
    session: DbSession,
    *,
    session_ids: Sequence[str] | None = None,
    account_id: str | None = None,
    keep_session_id: str | None = None,
) -> None:
    """Delete the push subscriptions of device sessions that just ended, in the caller's
    transaction (called by ``paywall.devices.services`` wherever a session ends)."""
    statement = delete(PushSubscription)
    if session_ids is not None:
        statement = statement.where(PushSubscription.device_session_id.in_(session_ids))
    elif account_id is not None:
        statement = statement.where(PushSubscription.account_id == account_id)
        if keep_session_id:
            statement = statement.where(PushSubscription.device_session_id != keep_session_id)
    else:
        raise ValueError("session_ids or account_id")
    session.execute(statement, execution_options={"synchronize_session": False})


# -- readers: opting in and preferences -----------------------------------------------------------
class NotificationService:
    """Opt-in and preferences. Flushes; the request commits."""

    def __init__(
        self, session: DbSession, billing: BillingService, settings: NotificationSettings
    ) -> None:
        self.session = session
        self.billing = billing
        self.settings = settings

    def has_feature(self, account: Account) -> bool:
        return FEATURE in self.billing.access_for(account).features

    def require_feature(self, account: Account) -> None:
        if not self.has_feature(account):
            raise FeatureRequired()

    def check_topics(self, topics: Sequence[str] | None, field: str = "topics") -> None:
        unknown = sorted(set(topics or ()) - set(self.settings.topics))
        if unknown:
            raise UnknownTopics(
                "Some fields are invalid.",
                extra={"fields": {field: [f"Unknown topics: {', '.join(unknown)}."]}},
            )

    def subscribe(
        self,
        account: Account,
        device: DeviceSession,
        *,
        endpoint: str,
        p256dh: str,
        auth: str,
        expiration_time: int | None = None,
        topics: list[str] | None = None,
    ) -> tuple[PushSubscription, bool]:
        """Store the browser's subscription for this device session; (it, created). The same
        endpoint again updates and returns the reader's existing one."""
        self.require_feature(account)
        if not endpoint_allowed(endpoint, self.settings.allowed_origins):
            raise EndpointNotAllowed()
        self.check_topics(topics)
        digest = endpoint_digest(endpoint)
        existing = self.session.scalar(
            select(PushSubscription).where(PushSubscription.endpoint_digest == digest)
        )
        if existing is not None and existing.account_id == account.id:
            existing.device_session_id = device.id
            existing.p256dh, existing.auth = p256dh, auth
            existing.expiration_time = expiration_time
            if topics is not None:
                existing.topics = list(topics)
            self.session.flush()
            return existing, False
        if existing is not None:  # the browser now belongs to another reader
            self.session.delete(existing)
            self.session.flush()
        created = PushSubscription(
            account_id=account.id,
            device_session_id=device.id,
            endpoint=endpoint,
            endpoint_digest=digest,
            p256dh=p256dh,
            auth=auth,
            expiration_time=expiration_time,
            topics=list(topics) if topics is not None else None,
            created_at=utcnow(),
        )
        try:
            with self.session.begin_nested():
                self.session.add(created)
        except IntegrityError:  # the same browser posted twice at once
            again = self.session.scalar(
                select(PushSubscription).where(PushSubscription.endpoint_digest == digest)
            )
            if again is None or again.account_id != account.id:
                raise
            return again, False
        return created, True

    def subscriptions(self, account_id: str) -> list[PushSubscription]:
        return list(
            self.session.scalars(
                select(PushSubscription)
                .where(PushSubscription.account_id == account_id)
                .order_by(PushSubscription.created_at, PushSubscription.id)
            ).all()
        )

    def unsubscribe(self, account_id: str, subscription_id: str) -> None:
        found = self.session.scalar(
            select(PushSubscription).where(
                PushSubscription.id == subscription_id,
                PushSubscription.account_id == account_id,
            )
        )
        if found is None:
            raise NotFound("No such push subscription.")
        self.session.delete(found)
        self.session.flush()

    def preferences(self, account_id: str) -> dict[str, Any]:
        pref = self.session.get(NotificationPreference, account_id)
        topics = pref.topics if pref is not None and pref.topics is not None else None
        return {
            "email_alerts": bool(pref.email_alerts) if pref is not None else False,
            "topics": list(self.settings.topics) if topics is None else list(topics),
        }

    def set_preferences(
        self, account: Account, *, email_alerts: bool | None = None, topics: list[str] | None = None
    ) -> dict[str, Any]:
        self.check_topics(topics)
        if email_alerts:
            self.require_feature(account)
        pref = self.session.get(NotificationPreference, account.id)
        if pref is None:
            pref = NotificationPreference(account_id=account.id, email_alerts=False)
            self.session.add(pref)
        if email_alerts is not None:
            pref.email_alerts = email_alerts
        if topics is not None:
            pref.topics = list(topics)
        pref.updated_at = utcnow()
        self.session.flush()
        return self.preferences(account.id)

    def effective_topics(self, subscription: PushSubscription) -> list[str]:
        if subscription.topics is not None:
            return list(subscription.topics)
        return list(self.preferences(subscription.account_id)["topics"])

    # -- email unsubscribe (RFC 8058) ---------------------------------------------------------
    def unsubscribe_token(self, account_id: str) -> str:
        return str(_unsubscribe_signer(self.settings.secret_key).dumps(account_id))

    def unsubscribe_email(self, token: str) -> bool:
        """Turn email alerts off for the token's reader; False for a bad token."""
        try:
            account_id = str(_unsubscribe_signer(self.settings.secret_key).loads(token))
        except BadSignature:
            return False
        if self.session.get(Account, account_id) is None:
            return False
        pref = self.session.get(NotificationPreference, account_id)
        if pref is not None:
            pref.email_alerts = False
            pref.updated_at = utcnow()
            self.session.flush()
        return True


def _unsubscribe_signer(secret: str) -> URLSafeSerializer:
    # No expiry: an unsubscribe link must keep working (RFC 8058).
    return URLSafeSerializer(
        secret, salt=UNSUBSCRIBE_SALT, signer_kwargs={"digest_method": hashlib.sha256}
    )


# -- the newsroom: stories and their fan-out ------------------------------------------------------
@dataclass(frozen=True)
class _Push:
    """A claimed push message that passed every check and is to be sent."""

    delivery_id: int
    account_id: str
    attempts: int
    subscription_id: str
    endpoint: str
    p256dh: str
    auth: str


@dataclass
class BatchResult:
    delivered: int = 0
    retry_in: float | None = None  # seconds until the batch has rows due again


class StoryService:
    """Publishing and delivering stories. Flushes; the caller (request or task) commits."""

    def __init__(
        self,
        session: DbSession,
        notifications: NotificationService,
        policy: DevicePolicy,
        outbox: Outbox,
        sender: PushSender | None = None,
    ) -> None:
        self.session = session
        self.notifications = notifications
        self.billing = notifications.billing
        self.settings = notifications.settings
        self.policy = policy
        self.outbox = outbox
        self.sender = sender

    # -- publishing ---------------------------------------------------------------------------
    def publish(self, data: dict[str, Any]) -> tuple[Story, bool]:
        """Record a story to notify about; (story, created). A known id changes nothing."""
        existing = self.session.get(Story, data["id"])
        if existing is not None:
            return existing, False
        if not url_within(data["url"], self.settings.site_url):
            raise PaywallError(
                "Some fields are invalid.",
                code="validation_error",
                status=422,
                extra={"fields": {"url": [f"Must be a page of {self.settings.site_url}."]}},
            )
        self.notifications.check_topics(data.get("topics"))
        story = Story(
            id=data["id"],
            title=data["title"],
            url=data["url"],
            summary=data.get("summary") or None,
            topics=list(data.get("topics") or []),
            urgency=data.get("urgency") or "normal",
            status=QUEUED,
            created_at=utcnow(),
        )
        try:
            with self.session.begin_nested():
                self.session.add(story)
        except IntegrityError:  # the CMS retried while the first call was in flight
            again = self.session.get(Story, data["id"])
            if again is None:
                raise
            return again, False
        # The fan-out starts on a worker once this transaction commits, never in the request.
        defer(PLAN_STORY, story.id, session=self.session)
        return story, True

    def get(self, story_id: str) -> Story:
        story = self.session.get(Story, story_id)
        if story is None:
            raise NotFound("No such story.")
        return story

    def counts(self, story_id: str) -> dict[str, Any]:
        rows = self.session.execute(
            select(StoryDelivery.channel, StoryDelivery.status, func.count())
            .where(StoryDelivery.story_id == story_id)
            .group_by(StoryDelivery.channel, StoryDelivery.status)
        ).all()
        totals = {"queued": 0, "delivered": 0, "gone": 0, "failed": 0, "skipped": 0}
        channels = {PUSH: dict(totals), EMAIL: dict(totals)}
        for channel, status, count in rows:
            key = "queued" if status in PENDING else status
            totals[key] += int(count)
            channels[channel][key] += int(count)
        return {**totals, "push": channels[PUSH], "email": channels[EMAIL]}

    def describe(self, story: Story) -> dict[str, Any]:
        return {
            "id": story.id,
            "status": story.status,
            "title": story.title,
            "url": story.url,
            "topics": list(story.topics),
            "created_at": story.created_at.isoformat(),
            "counts": self.counts(story.id),
        }

    # -- planning -----------------------------------------------------------------------------
    def plan(self, story_id: str) -> list[int]:
        """Write one delivery row per recipient, once (the story row is locked); returns the
        batches that still have work."""
        story = self.session.scalar(
            select(Story)
            .where(Story.id == story_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        if story is None:
            raise NotFound("No such story.")
        if story.planned_at is None:
            self._write_plan(story)
            story.planned_at = utcnow()
            story.status = SENDING
            self.session.flush()
        return self.pending_batches(story_id)

    def _write_plan(self, story: Story) -> None:
        size = max(1, self.settings.batch_size)
        rows: list[dict[str, Any]] = []
        queued = 0

        def add(channel: str, target: str, account_id: str, wanted: bool) -> None:
            nonlocal queued
            batch = queued // size if wanted else -1
            queued += 1 if wanted else 0
            rows.append(
                {
                    "story_id": story.id,
                    "channel": channel,
                    "target": target,
                    "account_id": account_id,
                    "batch": batch,
                    "status": QUEUED if wanted else SKIPPED,
                    "reason": None if wanted else "not_following",
                    "attempts": 0,
                }
            )

        subscriptions = self.session.execute(
            select(
                PushSubscription.id,
                PushSubscription.account_id,
                PushSubscription.topics,
                NotificationPreference.topics,
            )
            .outerjoin(
                NotificationPreference,
                NotificationPreference.account_id == PushSubscription.account_id,
            )
            .order_by(PushSubscription.id)
        )
        for sub_id, account_id, sub_topics, pref_topics in subscriptions:
            followed = sub_topics if sub_topics is not None else pref_topics
            add(PUSH, sub_id, account_id, follows(story.topics, followed))
        readers = self.session.execute(
            select(NotificationPreference.account_id, NotificationPreference.topics)
            .where(NotificationPreference.email_alerts.is_(True))
            .order_by(NotificationPreference.account_id)
        )
        for account_id, topics in readers:
            add(EMAIL, account_id, account_id, follows(story.topics, topics))
        for start in range(0, len(rows), 1000):
            self.session.execute(insert(StoryDelivery), rows[start : start + 1000])

    def pending_batches(self, story_id: str) -> list[int]:
        return sorted(
            self.session.scalars(
                select(StoryDelivery.batch)
                .where(StoryDelivery.story_id == story_id, StoryDelivery.status.in_(PENDING))
                .distinct()
            ).all()
        )

    # -- delivering ---------------------------------------------------------------------------
    def deliver_batch(self, story_id: str, batch: int, commit: Callable[[], None]) -> BatchResult:
        """Send what is due in one batch; safe to run twice, or on two workers at once.
        ``commit`` ends the caller's transaction after each claimed chunk is settled; each push
        service's answer is recorded at once, in autocommit, before the next push.

        The database work is per chunk, not per message: one statement claims up to
        ``CLAIM_CHUNK`` rows, one loads them with their subscriptions and device sessions, two
        check their readers' entitlements, and the rows that need no push are settled together.
        Per message there is the push and the one UPDATE that records its answer: recorded
        before the next push, so a worker that dies re-sends at most the message in flight."""
        story = self.get(story_id)
        payload = push_payload(story)
        topic = message_topic(story.id)
        urgency = "high" if story.urgency == "high" else "normal"
        result = BatchResult()
        while True:
            claimed_at = utcnow()
            claimed = self._claim(story_id, batch, claimed_at)
            if not claimed:
                break
            pushes = self._settle_chunk(claimed, story)
            commit()  # the claim, and every row of the chunk that needs no push
            if not pushes:
                continue
            with self._answers() as answers:
                for push in pushes:
                    if utcnow() - claimed_at >= self.settings.claim_lease:
                        # Past the lease another worker may claim these rows: leave them.
                        break
                    assert self.sender is not None, "a PushSender is needed to deliver"
                    answer = self.sender.send(
                        push.endpoint,
                        push.p256dh,
                        push.auth,
                        payload,
                        ttl=self.settings.ttl,
                        urgency=urgency,
                        topic=topic,
                    )
                    result.delivered += int(self._record(answers, push, answer))
        result.retry_in = self._next_due(story_id, batch)
        self._finish_if_done(story_id)
        commit()
        return result

    def _claimable(self, story_id: str, batch: int, now: datetime) -> Any:
        return and_(
            StoryDelivery.story_id == story_id,
            StoryDelivery.batch == batch,
            or_(
                StoryDelivery.status == QUEUED,
                and_(StoryDelivery.status == RETRY, StoryDelivery.next_attempt_at <= now),
                # A worker that claimed these died before answering: send them again.
                and_(
                    StoryDelivery.status == SENDING,
                    StoryDelivery.claimed_at < now - self.settings.claim_lease,
                ),
            ),
        )

    def _claim(self, story_id: str, batch: int, now: datetime) -> list[int]:
        """Claim up to ``CLAIM_CHUNK`` due rows in one statement. ``SKIP LOCKED`` (PostgreSQL)
        lets two workers on one batch take different rows instead of queueing on the same
        locks; the condition is checked again in the UPDATE, so no row is taken twice."""
        chunk = (
            select(StoryDelivery.id)
            .where(self._claimable(story_id, batch, now))
            .order_by(StoryDelivery.id)
            .limit(CLAIM_CHUNK)
            .with_for_update(skip_locked=True)
        )
        result = self.session.execute(
            update(StoryDelivery)
            .where(StoryDelivery.id.in_(chunk), self._claimable(story_id, batch, now))
            .values(status=SENDING, claimed_at=now, attempts=StoryDelivery.attempts + 1)
            .returning(StoryDelivery.id),
            execution_options={"synchronize_session": False},
        )
        return sorted(int(i) for i in result.scalars().all())

    def _settle_chunk(self, claimed: Sequence[int], story: Story) -> list[_Push]:
        """Load the claimed rows with what they need in one query, check their readers'
        entitlements once per reader, settle every row that needs no push (skipped, email)
        and return the pushes to send, in id order."""
        rows = self.session.execute(
            select(
                StoryDelivery.id,
                StoryDelivery.channel,
                StoryDelivery.account_id,
                StoryDelivery.attempts,
                PushSubscription.id,
                PushSubscription.endpoint,
                PushSubscription.p256dh,
                PushSubscription.auth,
                DeviceSession,
            )
            .outerjoin(
                PushSubscription,
                and_(StoryDelivery.channel == PUSH, PushSubscription.id == StoryDelivery.target),
            )
            .outerjoin(DeviceSession, DeviceSession.id == PushSubscription.device_session_id)
            .where(StoryDelivery.id.in_(list(claimed)), StoryDelivery.status == SENDING)
            .order_by(StoryDelivery.id)
        ).all()
        now = utcnow()
        skipped: dict[str, list[int]] = {}
        signed_out: list[str] = []
        candidates: list[_Push] = []
        emails_due: list[tuple[int, str]] = []
        for (
            delivery_id,
            channel,
            account_id,
            attempts,
            sub_id,
            endpoint,
            p256dh,
            auth,
            device,
        ) in rows:
            if channel == EMAIL:
                emails_due.append((delivery_id, account_id))
            elif sub_id is None or device is None:
                skipped.setdefault("unsubscribed", []).append(delivery_id)
            elif end_code(device, now, self.policy) is not None:
                # An idle or too old session ends without an event: its subscriptions go now.
                signed_out.append(sub_id)
                skipped.setdefault("signed_out", []).append(delivery_id)
            else:
                candidates.append(
                    _Push(delivery_id, account_id, attempts, sub_id, endpoint, p256dh, auth)
                )
        readers = {c.account_id for c in candidates} | {a for _d, a in emails_due}
        access = self.billing.access_for_many(sorted(readers), now)

        def entitled(account_id: str) -> bool:
            found = access.get(account_id)
            return found is not None and FEATURE in found.features

        pushes = []
        for candidate in candidates:
            if entitled(candidate.account_id):
                pushes.append(candidate)
            else:
                skipped.setdefault("not_entitled", []).append(candidate.delivery_id)
        for delivery_id, account_id in emails_due:
            self._email_one(delivery_id, account_id, story, entitled(account_id))
        if signed_out:
            self.session.execute(
                delete(PushSubscription).where(PushSubscription.id.in_(signed_out)),
                execution_options={"synchronize_session": False},
            )
        for reason, ids in sorted(skipped.items()):
            self._finish(ids, PUSH, SKIPPED, reason)
        return pushes

    @contextmanager
    def _answers(self) -> Iterator[Connection]:
        """A connection of its own, in autocommit, for recording push answers: each answer is
        one statement that is durable when it returns (no ping, BEGIN or COMMIT around it)."""
        with self.session.get_bind().engine.connect() as conn:
            yield conn.execution_options(isolation_level="AUTOCOMMIT")

    def _record(self, answers: Connection, push: _Push, answer: PushResult) -> bool:
        """Record a push service's answer: one UPDATE, durable at once (and for a gone
        subscription a DELETE after it: a worker dying between leaves a subscription that the
        push service answers 410 for again next time)."""
        what = f"push service answered {answer.status}" if answer.status else answer.detail
        values: dict[str, Any] = {"reason": None, "finished_at": utcnow(), "next_attempt_at": None}
        if answer.delivered:
            status = DELIVERED
        elif answer.gone:
            status, values["reason"] = GONE, what
        elif answer.status == 413:
            log.warning("push message too large", extra={"id": push.delivery_id})
            status, values["reason"] = FAILED, what
        elif answer.retryable and push.attempts < self.settings.max_attempts:
            delay = backoff_seconds(push.attempts, self.settings.backoff, answer.retry_after)
            status = RETRY
            values = {
                "reason": what[:200],
                "next_attempt_at": utcnow() + timedelta(seconds=delay),
            }
        else:
            log.warning("push message failed", extra={"id": push.delivery_id, "reason": what})
            status, values["reason"] = FAILED, (what or "failed")[:200]
        answers.execute(
            update(StoryDelivery)
            .where(StoryDelivery.id == push.delivery_id, StoryDelivery.status == SENDING)
            .values(status=status, **values)
        )
        if status == GONE:
            answers.execute(
                delete(PushSubscription).where(PushSubscription.id == push.subscription_id)
            )
        if status != RETRY:
            metrics.NOTIFICATIONS.labels(PUSH, status).inc()
        return status == DELIVERED

    def _email_one(self, delivery_id: int, account_id: str, story: Story, entitled: bool) -> None:
        account = self.session.get(Account, account_id)
        pref = self.session.get(NotificationPreference, account_id)
        if account is None or pref is None or not pref.email_alerts:
            self._finish([delivery_id], EMAIL, SKIPPED, "unsubscribed")
            return
        if not entitled:
            self._finish([delivery_id], EMAIL, SKIPPED, "not_entitled")
            return
        link = (
            self.settings.public_url.rstrip("/")
            + "/notifications/unsubscribe?token="
            + self.notifications.unsubscribe_token(account.id)
        )
        email = emails.story_alert(story.title, story.summary, story.url, link)
        self.outbox.enqueue(
            kind=email.kind,
            to=account.email,
            subject=email.subject,
            body=email.body,
            # The outbox's unique key makes the email once per (story, reader), whatever reruns.
            dedupe_key=f"story-alert:{story.id}:{account.id}",
            headers={
                "List-Unsubscribe": f"<{link}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            },
        )
        self._finish([delivery_id], EMAIL, DELIVERED, None)

    def _finish(self, ids: Sequence[int], channel: str, status: str, reason: str | None) -> bool:
        """Settle claimed rows in one UPDATE; a row no longer ``sending`` (another worker
        took it after this one's lease ran out) is left as that worker recorded it."""
        self.session.execute(
            update(StoryDelivery)
            .where(StoryDelivery.id.in_(list(ids)), StoryDelivery.status == SENDING)
            .values(status=status, reason=reason, finished_at=utcnow(), next_attempt_at=None),
            execution_options={"synchronize_session": False},
        )
        finished = metrics.NOTIFICATIONS.labels(channel, status)
        metrics.count_on_commit(self.session, finished, len(ids))
        return status == DELIVERED

    def _next_due(self, story_id: str, batch: int) -> float | None:
        """Seconds until a row of the batch can be claimed again: a retry falls due, or the
        lease of a row another worker claimed (and may have died holding) runs out."""
        where = (StoryDelivery.story_id == story_id, StoryDelivery.batch == batch)
        retry = self.session.scalar(
            select(func.min(StoryDelivery.next_attempt_at)).where(
                *where, StoryDelivery.status == RETRY
            )
        )
        claimed = self.session.scalar(
            select(func.min(StoryDelivery.claimed_at)).where(
                *where, StoryDelivery.status == SENDING
            )
        )
        due = [_aware(retry)] if retry is not None else []
        if claimed is not None:
            due.append(_aware(claimed) + self.settings.claim_lease)
        if not due:
            return None
        return max(0.0, (min(due) - utcnow()).total_seconds())

    def _finish_if_done(self, story_id: str) -> None:
        left = self.session.scalar(
            select(func.count())
            .select_from(StoryDelivery)
            .where(StoryDelivery.story_id == story_id, StoryDelivery.status.in_(PENDING))
        )
        if not left:
            self.session.execute(
                update(Story)
                .where(Story.id == story_id, Story.finished_at.is_(None))
                .values(status="sent", finished_at=utcnow()),
                execution_options={"synchronize_session": False},
            )

    def unfinished(self, older_than: timedelta) -> list[str]:
        """Stories whose fan-out no worker finished (for the periodic sweep)."""
        cutoff = utcnow() - older_than
        return list(
            self.session.scalars(
                select(Story.id).where(Story.finished_at.is_(None), Story.created_at < cutoff)
            ).all()
        )


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:  # SQLite's min() bypasses the column type
        from datetime import UTC

        return value.replace(tzinfo=UTC)
    return value


# -- building the services for a request or a task ------------------------------------------------
def push_sender(app: Any) -> PushSender:
    """This process's PushSender (one per process: a forked worker builds its own)."""
    import os

    key = f"paywall.push_sender.{os.getpid()}"
    if key not in app.extensions:
        app.extensions[key] = PushSender(
            app.extensions["paywall.vapid"],
            app.config["VAPID_SUBJECT"],
            timeout=float(app.config["PUSH_TIMEOUT"]),
        )
    return app.extensions[key]  # type: ignore[no-any-return]


def notification_service() -> NotificationService:
    from flask import current_app, g

    from paywall.billing.services import billing_service
    from paywall.extensions import db

    if "notification_service" not in g:
        g.notification_service = NotificationService(
            db.session, billing_service(), NotificationSettings.from_config(current_app.config)
        )
    return g.notification_service  # type: ignore[no-any-return]


def story_service() -> StoryService:
    from flask import current_app, g

    from paywall.extensions import db

    if "story_service" not in g:
        g.story_service = StoryService(
            db.session,
            notification_service(),
            DevicePolicy.from_config(current_app.config),
            Outbox(db.session),
            push_sender(current_app),
        )
    return g.story_service  # type: ignore[no-any-return]
