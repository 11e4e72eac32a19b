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


# -- the demo's exposure --------------------------------------------------------------------
def test_the_demo_passes_per_run_secrets_by_environment() -> None:
    """``make run`` signed links with a published secret and put the stand-in's API key and
    webhook secret on its command line (visible in ``ps``)."""
    from demo.__main__ import demo_environment, standin_process
    from paywall.config import DEMO_SECRET

    first, use_standin = demo_environment({})
    second, _ = demo_environment({})
    assert use_standin
    for name in ("PAYWALL_SECRET_KEY", "ARTICLE_SITE_SECRET_KEY", "PAYWALL_STRIPE_API_KEY"):
        assert first[name] != second[name], name  # generated per run
        assert len(first[name]) >= 32
    assert first["PAYWALL_SECRET_KEY"] != DEMO_SECRET
    command, env = standin_process(first)
    secrets_ = (first["PAYWALL_STRIPE_API_KEY"], first["PAYWALL_STRIPE_WEBHOOK_SECRET"])
    assert not any(secret in part for part in command for secret in secrets_)
    assert (env["STANDIN_API_KEY"], env["STANDIN_WEBHOOK_SECRET"]) == secrets_
    # An operator's own settings win.
    assert demo_environment({"PAYWALL_SECRET_KEY": "mine" * 10})[0]["PAYWALL_SECRET_KEY"] == (
        "mine" * 10
    )


def test_the_standins_control_endpoints_need_its_api_key(standin: Any) -> None:
    """``/_standin/*`` listed every customer's email and moved money for anyone."""
    import requests

    from tests.conftest import STANDIN_API_KEY

    for method, path in (("get", "/_standin/clock"), ("post", "/_standin/clock/advance")):
        for headers in ({}, {"Authorization": "Bearer sk_test_wrong"}, {"Authorization": "x"}):
            refused = requests.request(method, standin.url + path, headers=headers, timeout=10)
            assert refused.status_code == 401, (path, headers)
            assert refused.json()["error"]["message"]
    allowed = requests.get(
        standin.url + "/_standin/clock",
        headers={"Authorization": f"Bearer {STANDIN_API_KEY}"},
        timeout=10,
    )
    assert allowed.status_code == 200 and "now" in allowed.json()


def test_the_site_refuses_unsafe_settings_outside_demo() -> None:
    """The article site fell back to hard-coded secrets and never refused them."""
    from article_site import OLD_DEMO_SECRET, SiteConfigError
    from article_site import create_app as create_site

    # No token key at all: the site verifies with the service's public JWKS (issue 9).
    safe = {"SECRET_KEY": "s" * 40, "DEMO": False}
    assert create_site(safe).config["SECRET_KEY"] == "s" * 40
    for change, setting in (
        ({"SECRET_KEY": None}, "ARTICLE_SITE_SECRET_KEY"),
        ({"SECRET_KEY": OLD_DEMO_SECRET}, "ARTICLE_SITE_SECRET_KEY"),
        ({"SECRET_KEY": "short"}, "ARTICLE_SITE_SECRET_KEY"),
    ):
        with pytest.raises(SiteConfigError, match=setting):
            create_site({**safe, **change})
    # Demo mode starts without them, with a secret of its own (never the published one).
    demo = create_site({"DEMO": True, "SECRET_KEY": None})
    assert demo.config["SECRET_KEY"] not in (None, OLD_DEMO_SECRET)
    assert len(demo.config["SECRET_KEY"]) >= 32


def test_the_site_reads_the_demo_switch_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from article_site import SiteConfigError
    from article_site import create_app as create_site

    for name in ("PAYWALL_DEMO", "ARTICLE_SITE_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SiteConfigError):
        create_site()
    monkeypatch.setenv("PAYWALL_DEMO", "true")
    assert create_site().config["DEMO"] is True


def test_demo_files_are_readable_by_their_owner_only(tmp_path: Any) -> None:
    """The demo's SQLite file was world-readable."""
    import os

    from paywall.instance import instance_secret, private_file

    old = os.umask(0o022)  # a usual umask: files would be 0644
    try:
        database = private_file(tmp_path / "instance" / "paywall.sqlite3")
        secret = instance_secret(tmp_path / "instance", "secret_key")
        existing = tmp_path / "instance" / "broker.sqlite3"
        existing.write_text("")
        private_file(existing)
    finally:
        os.umask(old)
    for path in (database, tmp_path / "instance" / "secret_key", existing):
        assert path.stat().st_mode & 0o777 == 0o600, path
    assert (tmp_path / "instance").stat().st_mode & 0o777 == 0o700
    assert len(secret) >= 32
    assert instance_secret(tmp_path / "instance", "secret_key") == secret  # kept, shared


def test_a_demo_app_has_no_published_secret_and_a_private_database() -> None:
    from pathlib import Path

    from paywall import create_app
    from paywall.config import DEMO_SECRET

    app = create_app({"DEMO": True})
    assert app.config["SECRET_KEY"] != DEMO_SECRET and len(app.config["SECRET_KEY"]) >= 32
    database = Path(app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///"))
    assert database.stat().st_mode & 0o777 == 0o600
    assert (Path(app.instance_path) / "secret_key").stat().st_mode & 0o777 == 0o600


# -- access logs ----------------------------------------------------------------------------
def tiny_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """A WSGI app for the gunicorn test (the log line is gunicorn's, whatever the app)."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def test_gunicorn_access_log_redacts_tokens(tmp_path: Any) -> None:
    """``?token=`` and ``session_id=`` reached gunicorn's access log."""
    import subprocess
    import sys
    import time
    from pathlib import Path

    import requests

    from tests.conftest import free_port

    port = free_port()
    log_file = tmp_path / "access.log"
    root = Path(__file__).resolve().parents[2]
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--access-logfile",
            str(log_file),
            "--access-logformat",
            '%(h)s "%(r)s" %(s)s q=%(q)s ref="%(f)s"',
            "--logger-class",
            "paywall.logs.GunicornLogger",
            "tests.functional.test_assessment_findings:tiny_app",
        ],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    secret = "SeCrEt" + "x" * 20
    try:
        deadline = time.monotonic() + 60  # a liveness bound, not a timing target
        while True:
            try:
                requests.get(
                    f"http://127.0.0.1:{port}/reset-password?token={secret}&lang=en",
                    headers={"Referer": f"http://127.0.0.1/billing/return?session_id={secret}"},
                    timeout=5,
                )
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        requests.get(f"http://127.0.0.1:{port}/billing/return?session_id={secret}", timeout=5)
        while time.monotonic() < deadline and log_file.read_text().count("\n") < 2:
            time.sleep(0.1)
    finally:
        server.terminate()
        server.wait(timeout=60)
    lines = log_file.read_text().splitlines()
    assert len(lines) == 2, lines
    assert all(secret not in line for line in lines), lines
    assert "/reset-password?token=[redacted]&lang=en" in lines[0]
    assert "q=token=[redacted]&lang=en" in lines[0]
    assert "session_id=[redacted]" in lines[0] and "session_id=[redacted]" in lines[1]


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("/verify-email?token=abc&next=/x", "/verify-email?token=[redacted]&next=/x"),
        ("/a?x=1&session_id=cs_1", "/a?x=1&session_id=[redacted]"),
        ("/unsubscribe?unsubscribe_token=u", "/unsubscribe?unsubscribe_token=[redacted]"),
        ("/plain?next=/article", "/plain?next=/article"),
    ],
)
def test_redact_url(url: str, redacted: str) -> None:
    from paywall.logs import redact_url

    assert redact_url(url) == redacted
