"""Sending one email: a job per message, so each has its own retry schedule."""

from __future__ import annotations

import logging
import smtplib

from flask import current_app

from paywall import metrics
from paywall.brand import html_email
from paywall.extensions import db
from paywall.outbox.services import SEND_EMAIL, send_one, transport_for
from paywall.queue import AppTask, RetryLater, task

log = logging.getLogger(__name__)


class MailTask(AppTask):
    abstract = True
    retry_schedule_setting = "MAIL_RETRY_SCHEDULE"


@task(SEND_EMAIL, base=MailTask)
def send_email(email_id: int) -> bool:
    """Send the email; an SMTP failure counts against this email only, and it tries again
    after the next wait in ``MAIL_RETRY_SCHEDULE``."""
    try:
        sent = send_one(
            db.session,
            email_id,
            transport_for(current_app),
            current_app.config["MAIL_FROM"],
            html=html_email,
        )
    except (OSError, smtplib.SMTPException) as exc:
        log.warning("email not sent, will retry", extra={"email_id": email_id})
        metrics.EMAILS.labels("deferred").inc()
        raise RetryLater(str(exc)) from exc
    if sent:
        metrics.EMAILS.labels("sent").inc()
    return sent
