"""Session rotation with reuse detection (issue 9 §2): the session value is replaced every
rotation interval of use; the replaced value works until the new one is used, then for the
grace; after that, its use ends the session for every copy (401 ``session_reused``).

Time passes by moving every stored session time back (the same as the clock moving on)."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from paywall.devices.models import SESSION_REUSED, DeviceSession, RetiredSessionValue
from paywall.devices.services import DevicePolicy, DeviceService, digest
from paywall.extensions import db
from tests.conftest import PASSWORD, AuthActions, Mailbox, body_of

INTERVAL, GRACE = 300, 30
COOKIE = "paywall_session"
HEADER = "Paywall-Session-Token"


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"SESSION_ROTATION_INTERVAL": INTERVAL, "SESSION_ROTATION_GRACE": GRACE}


def advance(app: Flask, seconds: float) -> None:
    """Let ``seconds`` pass for every device session."""
    shift = timedelta(seconds=seconds)
    with app.app_context():
        for device in db.session.scalars(sa.select(DeviceSession)):
            device.created_at -= shift
            device.last_seen_at -= shift
            device.expires_at -= shift
            if device.rotated_at is not None:
                device.rotated_at -= shift
            if device.token_used_at is not None:
                device.token_used_at -= shift
            if device.ended_at is not None:
                device.ended_at -= shift
        for retired in db.session.scalars(sa.select(RetiredSessionValue)):
            retired.retired_at -= shift
            retired.grace_until -= shift
        db.session.commit()


def bearer(client: FlaskClient, value: str, path: str = "/api/v1/account") -> Any:
    return client.get(path, headers={"Authorization": f"Bearer {value}"})


def cookie_value(response: Any) -> str | None:
    for header in response.headers.getlist("Set-Cookie"):
        if header.startswith(COOKIE + "="):
            return str(header.split(";", 1)[0].split("=", 1)[1])
    return None


def only_session(app: Flask) -> DeviceSession:
    with app.app_context():
        device = db.session.scalars(sa.select(DeviceSession)).one()
        db.session.expunge(device)
        return device


def test_no_rotation_before_the_interval(app: Flask, auth: AuthActions, reader: str) -> None:
    token = auth.log_in()[1].get_json()["token"]
    bare = app.test_client(use_cookies=False)
    advance(app, INTERVAL - 5)
    response = bearer(bare, token)
    assert response.status_code == 200
    assert HEADER not in response.headers


def test_bearer_client_gets_the_new_value_in_a_header_and_the_old_one_is_then_refused(
    app: Flask, auth: AuthActions, reader: str, mailbox: Mailbox
) -> None:
    old = auth.log_in()[1].get_json()["token"]
    bare = app.test_client(use_cookies=False)
    advance(app, INTERVAL + 1)
    rotated = bearer(bare, old)
    assert rotated.status_code == 200
    new = rotated.headers[HEADER]
    assert new and new != old
    assert cookie_value(rotated) is None  # a bearer client gets no cookie
    assert rotated.headers["Cache-Control"] == "no-store"

    # Until the new value is used, the old one keeps working (a lost response signs no one out).
    advance(app, INTERVAL - 10)
    still = bearer(bare, old)
    assert still.status_code == 200 and HEADER not in still.headers
    # The new value is used: the old one works for the grace (parallel tabs), no new rotation.
    first_use = bearer(bare, new)
    assert first_use.status_code == 200 and HEADER not in first_use.headers
    advance(app, GRACE - 5)
    assert bearer(bare, old).status_code == 200
    # After the grace, the old value is a copy: the session ends for both copies.
    advance(app, 10)
    reused = bearer(bare, old)
    assert reused.status_code == 401
    assert reused.get_json()["error"]["code"] == "session_reused"
    after = bearer(bare, new)
    assert after.status_code == 401
    assert after.get_json()["error"]["code"] == "session_reused"
    device = only_session(app)
    assert device.ended_at is not None and device.end_reason == SESSION_REUSED

    mail = mailbox.wait_for(2)[-1]  # the sign-in email, then this one
    assert mail["To"] == reader
    assert "used on another device with a copied sign-in" in mail["Subject"]
    assert "https://paywall.test/devices" in body_of(mail)


SITE = "https://www.news.test"


@pytest.mark.parametrize(
    "app_config",
    [
        {
            "SESSION_ROTATION_INTERVAL": INTERVAL,
            "SESSION_ROTATION_GRACE": GRACE,
            "DEVICE_COOKIE_DOMAIN": "news.test",
        }
    ],
)
def test_cookie_client_gets_a_set_cookie_with_the_service_cookie_settings(
    app: Flask, auth: AuthActions, reader: str
) -> None:
    browser = app.test_client()
    login = {"email": reader, "password": PASSWORD}
    assert browser.post("/api/v1/sessions", json=login, base_url=SITE).status_code == 201
    old = browser.get_cookie(COOKIE, domain="news.test").value
    advance(app, INTERVAL + 1)
    response = browser.get("/api/v1/account", base_url=SITE)
    assert response.status_code == 200
    assert HEADER not in response.headers  # a cookie's value never reaches page scripts
    header = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith(COOKIE))
    assert "HttpOnly" in header and "Secure" in header and "SameSite=Lax" in header
    assert "Domain=news.test" in header and "Path=/" in header
    new = cookie_value(response)
    assert new and new != old
    # The browser now sends the new value and keeps working; the stored digest is the new one.
    assert browser.get_cookie(COOKIE, domain="news.test").value == new
    assert browser.get("/api/v1/sessions", base_url=SITE).status_code == 200
    device = only_session(app)
    assert device.token_digest == digest(new) and device.previous_digest == digest(old)


def test_a_copied_cookie_ends_the_session_for_both_browsers(
    app: Flask, auth: AuthActions, reader: str
) -> None:
    owner = auth.browser()
    value = owner.get_cookie(COOKIE).value
    copy = app.test_client()
    copy.set_cookie(COOKIE, value)
    advance(app, INTERVAL + 1)
    assert owner.get("/api/v1/account").status_code == 200  # rotates the owner's cookie
    assert owner.get("/api/v1/account").status_code == 200  # the new value is used
    assert copy.get("/api/v1/account").status_code == 200  # within the grace
    advance(app, GRACE + 1)
    refused = copy.get("/api/v1/account")
    assert refused.status_code == 401
    assert refused.get_json()["error"]["code"] == "session_reused"
    assert owner.get("/api/v1/account").get_json()["error"]["code"] == "session_reused"
    # The account's pages send the signed-out browser to the login page, saying why.
    page = owner.get("/devices")
    assert page.status_code == 302 and "reason=session_reused" in page.headers["Location"]
    login = owner.get(page.headers["Location"])
    assert "copied" in login.get_data(as_text=True)


def test_token_endpoint_returns_the_rotated_value_in_its_body(
    app: Flask, auth: AuthActions, reader: str
) -> None:
    old = auth.log_in()[1].get_json()["token"]
    bare = app.test_client(use_cookies=False)
    advance(app, INTERVAL + 1)
    issued = bare.post("/api/v1/entitlements/token", headers={"Authorization": f"Bearer {old}"})
    assert issued.status_code == 200
    body = issued.get_json()
    assert body["session_token"] == issued.headers[HEADER]
    assert bearer(bare, body["session_token"]).status_code == 200
    again = bare.post(
        "/api/v1/entitlements/token",
        headers={"Authorization": f"Bearer {body['session_token']}"},
    )
    assert "session_token" not in again.get_json()


def test_a_lost_rotation_is_offered_again_after_another_interval(
    app: Flask, auth: AuthActions, reader: str
) -> None:
    old = auth.log_in()[1].get_json()["token"]
    bare = app.test_client(use_cookies=False)
    advance(app, INTERVAL + 1)
    lost = bearer(bare, old).headers[HEADER]  # the client never received this
    advance(app, 10)
    assert HEADER not in bearer(bare, old).headers
    advance(app, INTERVAL)
    offered = bearer(bare, old)
    assert offered.status_code == 200
    second = offered.headers[HEADER]
    assert second not in (old, lost)
    assert bearer(bare, lost).status_code == 401  # never used, now replaced
    assert bearer(bare, second).status_code == 200
    advance(app, GRACE + 1)
    assert bearer(bare, old).get_json()["error"]["code"] == "session_reused"


def test_a_copy_two_rotations_old_also_ends_the_session(
    app: Flask, auth: AuthActions, reader: str
) -> None:
    old = auth.log_in()[1].get_json()["token"]
    bare = app.test_client(use_cookies=False)
    advance(app, INTERVAL + 1)
    first = bearer(bare, old).headers[HEADER]
    assert bearer(bare, first).status_code == 200
    advance(app, INTERVAL + 1)
    second = bearer(bare, first).headers[HEADER]
    assert bearer(bare, second).status_code == 200
    advance(app, GRACE + 1)
    reused = bearer(bare, old)  # neither the current nor the last replaced value
    assert reused.status_code == 401
    assert reused.get_json()["error"]["code"] == "session_reused"
    assert bearer(bare, second).get_json()["error"]["code"] == "session_reused"


def test_a_value_replaced_twice_within_its_grace_still_works_until_the_grace_ends(
    app: Flask, auth: AuthActions, reader: str
) -> None:
    old = auth.log_in()[1].get_json()["token"]
    bare = app.test_client(use_cookies=False)
    advance(app, INTERVAL + 1)
    first = bearer(bare, old).headers[HEADER]
    advance(app, INTERVAL + 1)
    # The first use of ``first`` comes an interval late and rotates it at once: ``old``'s
    # grace starts only now.
    second = bearer(bare, first).headers[HEADER]
    assert second not in (old, first)
    assert bearer(bare, old).status_code == 200
    advance(app, GRACE + 1)
    assert bearer(bare, old).get_json()["error"]["code"] == "session_reused"


def test_only_the_last_rotated_out_values_are_kept(
    app: Flask, auth: AuthActions, reader: str
) -> None:
    from paywall.devices.services import RETIRED_VALUES_KEPT

    value = auth.log_in()[1].get_json()["token"]
    bare = app.test_client(use_cookies=False)
    values = [value]
    for _ in range(RETIRED_VALUES_KEPT + 4):
        advance(app, INTERVAL + 1)
        value = bearer(bare, value).headers[HEADER]
        assert bearer(bare, value).status_code == 200
        values.append(value)
    with app.app_context():
        kept = set(db.session.scalars(sa.select(RetiredSessionValue.digest)))
    assert len(kept) == RETIRED_VALUES_KEPT
    # The newest ones are kept: the current, the previous, then the last 12 before those.
    assert kept == {digest(v) for v in values[-2 - RETIRED_VALUES_KEPT : -2]}
    advance(app, GRACE + 1)
    assert bearer(bare, values[0]).get_json()["error"]["code"] == "unauthorized"  # too old
    assert bearer(bare, values[-1]).status_code == 200
    assert bearer(bare, values[-5]).get_json()["error"]["code"] == "session_reused"


def test_purging_a_session_removes_its_rotated_out_values(
    app: Flask, auth: AuthActions, reader: str
) -> None:
    from paywall.devices.services import device_service

    value = auth.log_in()[1].get_json()["token"]
    bare = app.test_client(use_cookies=False)
    for _ in range(3):
        advance(app, INTERVAL + 1)
        value = bearer(bare, value).headers[HEADER]
        bearer(bare, value)
    assert (
        bare.delete(
            "/api/v1/sessions/current", headers={"Authorization": f"Bearer {value}"}
        ).status_code
        == 204
    )
    advance(app, 31 * 24 * 3600)
    with app.test_request_context():
        assert device_service().purge_ended(timedelta(days=30)) == 1
        db.session.commit()
        assert db.session.scalars(sa.select(RetiredSessionValue)).all() == []


def test_logging_out_in_a_rotating_request_does_not_set_the_cookie_again(
    app: Flask, auth: AuthActions, reader: str
) -> None:
    browser = auth.browser()
    advance(app, INTERVAL + 1)
    response = browser.delete("/api/v1/sessions/current")
    assert response.status_code == 204
    assert cookie_value(response) == ""  # only the deletion
    assert only_session(app).end_reason == "signed_out"


SHARING_PACES = {
    # Readers slower than the rotation: by the time a copy comes back, the value it holds is
    # two rotations old and unknown.
    "slow": {"interval": 0.5, "grace": 0.5, "pause": 0.6},
    # Readers faster than the rotation: the copies come back with the last rotated-out value
    # after its grace, and reuse detection ends the session for everyone.
    "fast": {"interval": 3.0, "grace": 0.5, "pause": 0.2},
}


@pytest.mark.parametrize("pace", sorted(SHARING_PACES))
def test_a_session_value_copied_to_25_clients_reads_premium_on_at_most_one(
    database_url: str,
    smtp_server: tuple[Mailbox, int],
    mailbox: Mailbox,
    pace: str,
    artifacts_dir: Path,
) -> None:
    """Issue 9: "a session value copied to 25 machines reads premium on at most one machine
    once a rotation interval and its grace have passed". Real time, short settings; every
    client follows the rotations it is given, as a browser or an app does, and asks for an
    entitlement token (what a premium page needs) once per round, one after the other."""
    from tests.conftest import make_app, truncate_all

    settings = SHARING_PACES[pace]
    app = make_app(
        database_url,
        smtp_server[1],
        SESSION_ROTATION_INTERVAL=settings["interval"],
        SESSION_ROTATION_GRACE=settings["grace"],
        SESSION_TOUCH_INTERVAL=0,
    )
    try:
        auth = AuthActions(app)
        auth.sign_up()
        value = auth.log_in()[1].get_json()["token"]
        started = time.monotonic()
        clients = [SharedClient(app, value) for _ in range(25)]
        rounds = [[c.reads_premium() for c in clients]]
        assert sum(rounds[0]) == 25  # before any rotation every copy reads
        settled_after = settings["interval"] + settings["grace"]
        deadline = started + settled_after + 120  # a liveness bound, not a timing claim
        while time.monotonic() < deadline:
            time.sleep(settings["pause"])
            rounds.append([c.reads_premium() for c in clients])
            if time.monotonic() - started > settled_after and sum(rounds[-1]) <= 1:
                break
        assert sum(rounds[-1]) <= 1, rounds[-1]
        # And it stays so: a further interval and grace later, still at most one reads.
        time.sleep(settled_after)
        final = [c.reads_premium() for c in clients]
        assert sum(final) <= 1, final
        codes = sorted({c.last_code for c in clients if c.last_code})
        assert set(codes) <= {"session_reused", "unauthorized"}, codes
        with app.app_context():
            device = db.session.scalars(sa.select(DeviceSession)).one()
            ended = device.end_reason
        record = {
            "pace": pace,
            **settings,
            "clients": len(clients),
            "reading_per_round": [sum(r) for r in rounds] + [sum(final)],
            "seconds_until_at_most_one": round(time.monotonic() - started - settled_after, 2),
            "refusal_codes": codes,
            "session_end_reason": ended,
            "database": database_url.split(":", 1)[0],
        }
        out = artifacts_dir / f"session_sharing_{pace}_{record['database']}.json"
        out.write_text(json.dumps(record, indent=2))
        print(record)
    finally:
        truncate_all(app)


class SharedClient:
    """One machine holding a copy of the session value; it follows rotations."""

    def __init__(self, app: Flask, value: str) -> None:
        self.client = app.test_client(use_cookies=False)
        self.value = value
        self.last_code: str | None = None

    def reads_premium(self) -> bool:
        """Whether this machine gets an entitlement token (what premium pages need)."""
        response = self.client.post(
            "/api/v1/entitlements/token", headers={"Authorization": f"Bearer {self.value}"}
        )
        self.value = response.headers.get(HEADER, self.value)
        if response.status_code != 200:
            self.last_code = response.get_json()["error"]["code"]
            return False
        return True


def test_two_requests_racing_with_the_old_value_rotate_once(
    app: Flask, auth: AuthActions, reader: str, db_kind: str
) -> None:
    """Two requests presenting the same value at rotation time: the second one's UPDATE waits
    for the first's row lock, then matches no row (compare-and-set), so only one rotates."""
    if db_kind != "postgresql":
        pytest.skip("the race needs concurrent writers (SQLite serialises whole transactions)")
    old = auth.log_in()[1].get_json()["token"]
    advance(app, INTERVAL + 1)
    with app.app_context():
        policy = DevicePolicy.from_config(app.config)
        engine = db.engine
        first_db = sa.orm.Session(engine)
        second_db = sa.orm.Session(engine)
        try:
            first = DeviceService(first_db, policy).authenticate(old)
            assert first.new_value is not None  # holds the row lock, not committed yet
            outcome: dict[str, Any] = {}

            def racer() -> None:
                try:
                    outcome["result"] = DeviceService(second_db, policy).authenticate(old)
                    outcome["seen"] = outcome["result"].device.token_digest  # before commit
                    second_db.commit()
                except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                    outcome["error"] = exc

            thread = threading.Thread(target=racer)
            thread.start()
            wait_for_lock_waiter(engine)
            first_db.commit()
            thread.join(timeout=60)
            assert not thread.is_alive()
            assert "error" not in outcome, outcome.get("error")
            assert outcome["result"].new_value is None  # it lost the compare-and-set
            # and its request still sees the value it was authenticated with
            assert outcome["seen"] == digest(old)
        finally:
            first_db.close()
            second_db.close()
    device = only_session(app)
    assert device.token_digest == digest(first.new_value)
    assert device.previous_digest == digest(old)
    bare = app.test_client(use_cookies=False)
    assert bearer(bare, old).status_code == 200  # the loser's client still works
    assert bearer(bare, first.new_value).status_code == 200


def wait_for_lock_waiter(engine: sa.Engine) -> None:
    """Until some backend waits for a row lock (the racing UPDATE); at most 60 s."""
    deadline = time.monotonic() + 60
    with engine.connect() as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )
            ).scalar_one()
            if waiting:
                return
            conn.rollback()
            time.sleep(0.02)
    raise AssertionError("the racing request never waited for the row lock")


def test_two_requests_reusing_the_old_value_end_the_session_once(
    app: Flask, auth: AuthActions, reader: str, mailbox: Mailbox
) -> None:
    old = auth.log_in()[1].get_json()["token"]
    bare = app.test_client(use_cookies=False)
    advance(app, INTERVAL + 1)
    new = bearer(bare, old).headers[HEADER]
    bearer(bare, new)
    advance(app, GRACE + 1)
    results = [bearer(bare, old) for _ in range(2)]
    assert [r.get_json()["error"]["code"] for r in results] == ["session_reused"] * 2
    mailbox.wait_for(2)
    time.sleep(0.3)  # a duplicate would be sent right after
    assert len(mailbox.to(reader)) == 2  # the sign-in email and one reuse email
