"""Queue emails in the caller's transaction; a worker sends each one after it commits."""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Callable
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import make_msgid
from typing import Protocol
from urllib.parse import unquote, urlsplit

from flask import Flask
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from paywall.clock import utcnow
from paywall.outbox.models import OutboxEmail
from paywall.queue import defer
from paywall.types import DbSession

log = logging.getLogger(__name__)
_LONG_LINES = default_policy.clone(max_line_length=998)

#: The job that sends one email (paywall.outbox.tasks).
SEND_EMAIL = "outbox.send_email"


class Transport(Protocol):
    def send(self, message: EmailMessage) -> None: ...


class SmtpTransport:
    """Sends over SMTP; ``smtp://user:pass@host:port`` or ``smtps://`` for implicit TLS."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        self.scheme = parts.scheme
        self.host = parts.hostname or "localhost"
        self.port = parts.port or (465 if parts.scheme == "smtps" else 25)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.starttls = "starttls=1" in parts.query
        self.timeout = timeout

    def send(self, message: EmailMessage) -> None:
        cls = smtplib.SMTP_SSL if self.scheme == "smtps" else smtplib.SMTP
        with cls(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(message)


class LogTransport:
    """Prints each email to the log: what ``make run`` uses, so no mail server is needed."""

    def send(self, message: EmailMessage) -> None:
        log.info(
            "email",
            extra={
                "to": message["To"],
                "subject": message["Subject"],
                "body": (message.get_body(("plain",)) or message).get_content(),
            },
        )


def transport_for(app: Flask) -> Transport:
    url = app.config.get("SMTP_URL")
    return SmtpTransport(url) if url else LogTransport()


class Outbox:
    """Writes emails to the outbox table; the request that wrote them commits them."""

    def __init__(self, session: DbSession) -> None:
        self.session = session

    def enqueue(
        self,
        *,
        kind: str,
        to: str,
        subject: str,
        body: str,
        dedupe_key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Queue one email. With ``dedupe_key``, a second email with the same key is dropped."""
        email = OutboxEmail(
            kind=kind, to=to, subject=subject, body=body, dedupe_key=dedupe_key, headers=headers
        )
        if dedupe_key is None:
            self.session.add(email)
        else:
            exists = self.session.scalar(
                select(OutboxEmail.id).where(OutboxEmail.dedupe_key == dedupe_key)
            )
            if exists is not None:
                return
            try:
                with self.session.begin_nested():
                    self.session.add(email)
            except IntegrityError:
                return
        self.session.flush()
        defer(SEND_EMAIL, email.id, session=self.session)


def send_one(
    session: DbSession,
    email_id: int,
    transport: Transport,
    sender: str,
    html: Callable[[str, str], str] | None = None,
) -> bool:
    """Send one queued email unless it already went; returns whether it went now. A transport
    error propagates after the attempt is counted on this email (the caller commits).
    ``html(subject, body)``, if given, renders the HTML alternative of the plain text."""
    email = session.get(OutboxEmail, email_id)
    if email is None or email.sent_at is not None:
        return False
    email.attempts += 1
    # Long one-token headers (List-Unsubscribe URLs) must stay plain, not RFC 2047 words:
    # allow RFC 5322's 998 characters per line for emails that carry extra headers.
    message = EmailMessage(policy=_LONG_LINES) if email.headers else EmailMessage()
    message["From"] = sender
    message["To"] = email.to
    message["Subject"] = email.subject
    # One Message-ID per email, so a receiving server can drop a resend it already has.
    message["Message-ID"] = make_msgid(idstring=f"outbox-{email.id}")
    for name, value in (email.headers or {}).items():
        message[name] = value
    message.set_content(email.body)
    if html is not None:
        try:
            message.add_alternative(html(email.subject, email.body), subtype="html")
        except Exception:  # noqa: BLE001 - a broken template must not hold the mail back
            log.exception("email html part failed; sending plain text only")
    try:
        transport.send(message)
    except (OSError, smtplib.SMTPException) as exc:
        email.last_error = str(exc)[:500]
        raise
    email.sent_at = utcnow()
    email.last_error = None
    return True
