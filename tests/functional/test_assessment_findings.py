"""Findings of the outside security assessment (issue 11): reset timing, GET state, the
demo's exposure, access logs."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from paywall import queue
from paywall.extensions import db
from tests.conftest import Mailbox, link_from


class WorkRecorder:
    """What a request does: every SQL statement (without its values) and every job it hands
    to the broker. The jobs are held back, so the worker's half does not count."""

    def __init__(self, app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
        self.statements: list[str] = []
        self.jobs: list[tuple[str, list[Any]]] = []
        self.held: list[tuple[str, int, list[Any]]] = []
        with app.app_context():
            self.engine = db.engine
        sa.event.listen(self.engine, "before_cursor_execute", self._statement)
        monkeypatch.setattr(queue, "_send", self._send)

    def _statement(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self.statements.append(statement)

    def _send(self, name: str, job_id: int, args: list[Any], countdown: Any = None) -> None:
        self.jobs.append((name, args))
        self.held.append((name, job_id, args))

    def take(self) -> tuple[list[str], list[tuple[str, list[Any]]]]:
        done = (self.statements, self.jobs)
        self.statements, self.jobs = [], []
        return done

    def close(self) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self._statement)


@pytest.mark.parametrize("path", ["/api/v1/password-resets", "/forgot-password"])
def test_reset_does_the_same_work_for_known_and_unknown_addresses(
    app: Flask, client, reader: str, mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    """Timing told who had an account (the known path signed a link and queued the email on
    the request). Counted, not timed: the same statements and the same job for both."""
    mailbox.wait_for(1)  # the verification email
    recorder = WorkRecorder(app, monkeypatch)
    try:
        answers = []
        work = []
        for address in (reader, "nobody@example.com"):
            if path.startswith("/api"):
                response = client.post(path, json={"email": address})
            else:
                response = client.post(path, data={"email": address})
            answers.append((response.status_code, response.get_data()))
            work.append(recorder.take())
    finally:
        recorder.close()
    assert answers[0] == answers[1]
    (known_sql, known_jobs), (unknown_sql, unknown_jobs) = work
    assert known_sql == unknown_sql
    assert [name for name, _ in known_jobs] == [name for name, _ in unknown_jobs]
    assert len(known_jobs) == 1
    assert [args for _, args in known_jobs] == [[reader]]
    assert [args for _, args in unknown_jobs] == [["nobody@example.com"]]
    assert len(mailbox.messages) == 1  # nothing was sent on the request

    # The worker's half: the registered address gets its link, the other gets nothing.
    monkeypatch.undo()
    with app.app_context():
        celery = app.extensions["celery"]
        for name, job_id, args in recorder.held:
            celery.tasks[name].apply_async(args=args, kwargs={"job_id": job_id})
    messages = mailbox.wait_for(2)
    assert len(mailbox.messages) == 2
    assert messages[1]["To"] == reader
    assert link_from(messages[1], "/reset-password")


@pytest.mark.parametrize("page", ["/", "/plans"])
def test_a_get_with_next_stores_nothing(
    billing_app: Flask, billing_auth: Any, standin: Any, page: str
) -> None:
    """``GET /?next=`` stored a post-Checkout target in the session: a GET changed state.
    The target now rides in the subscribe form."""
    billing_auth.sign_up()
    browser = billing_auth.browser()
    article = "https://news.test/a/article"
    response = browser.get(page, query_string={"next": article})
    assert response.status_code == 200
    with browser.session_transaction() as stored:  # (a CSRF token for the form is fine)
        assert "after_checkout" not in stored
    assert f'name="next" value="{article}"' in response.get_data(as_text=True)

    # A subscribe that does not carry the page goes back to the default, not the stored one.
    plain = browser.post("/billing/subscribe", data={"plan": "premium_monthly"})
    assert plain.status_code == 303
    session_id = plain.headers["Location"].rsplit("/", 1)[1]
    assert standin.get(session_id)["cancel_url"] == "https://news.test/?checkout=canceled"

    carried = browser.post("/billing/subscribe", data={"plan": "premium_monthly", "next": article})
    assert carried.status_code == 303
    assert standin.get(carried.headers["Location"].rsplit("/", 1)[1])["cancel_url"] == article


def test_a_subscribe_form_refuses_a_foreign_next(
    billing_app: Flask, billing_auth: Any, standin: Any
) -> None:
    billing_auth.sign_up()
    browser = billing_auth.browser()
    response = browser.post(
        "/billing/subscribe", data={"plan": "premium_monthly", "next": "////evil.example/x"}
    )
    assert response.status_code == 303
    cancel = standin.get(response.headers["Location"].rsplit("/", 1)[1])["cancel_url"]
    assert "evil.example" not in cancel
