"""Accounts and redirects findings of the outside security assessment (issue 11)."""

from __future__ import annotations

import pytest
from flask import Flask

from paywall.accounts.models import Account
from paywall.clock import utcnow
from paywall.devices.models import DeviceSession
from paywall.extensions import db
from tests.conftest import PASSWORD, AuthActions, Mailbox, link_from


def test_a_login_in_flight_does_not_survive_a_password_reset(
    app: Flask, auth: AuthActions, reader: str, db_kind: str
) -> None:
    if db_kind != "postgresql":
        pytest.skip("SQLite serialises the two transactions with its write lock")
    from paywall.accounts.services import account_service
    from paywall.devices.services import device_service

    with app.app_context():
        account = account_service().authenticate(reader, PASSWORD)  # the password checked...
        verified = account.password_changed_at
        with app.app_context():  # ...then another request resets it and commits
            other = db.session.scalar(db.select(Account).where(Account.email == reader))
            other.password_hash = "changed-by-a-reset"
            other.password_changed_at = utcnow()
            db.session.commit()
        with pytest.raises(Exception, match="not correct"):
            device_service().open_session(
                account, device_name="Late", verified_changed_at=verified
            )
        db.session.rollback()
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(DeviceSession.id))) == 0


def test_a_verification_link_is_single_use_however_it_is_spelled(
    client, reader: str, mailbox: Mailbox
) -> None:
    token = link_from(mailbox.wait_for(1)[0], "/verify-email")
    assert client.post("/api/v1/email-verifications", json={"token": token}).status_code == 200
    for variant in (token + "=", token + "==", token + "=" * 3):
        again = client.post("/api/v1/email-verifications", json={"token": variant})
        assert again.status_code == 400, variant
        assert again.get_json()["error"]["code"] == "token_used", variant
    assert (
        client.post("/api/v1/email-verifications", json={"token": token + "="}).get_json()["error"][
            "code"
        ]
        == "token_used"
    )


def test_a_reset_link_carries_no_part_of_the_password_hash(
    app: Flask, client, reader: str, mailbox: Mailbox
) -> None:
    from itsdangerous import URLSafeTimedSerializer

    mailbox.wait_for(1)
    client.post("/api/v1/password-resets", json={"email": reader})
    token = link_from(mailbox.wait_for(2)[1], "/reset-password")
    payload = URLSafeTimedSerializer("unused").loads_unsafe(token)[1]
    with app.app_context():
        stored = db.session.scalar(db.select(Account.password_hash))
    assert payload["p"] not in stored and stored[-16:] not in token
    ok = client.post(
        "/api/v1/password-resets/confirm", json={"token": token, "password": "n" * 12 + "x!"}
    )
    assert ok.status_code == 200


def test_email_hash_in_logs_is_keyed(app: Flask) -> None:
    import hashlib

    from paywall.accounts.passwords import email_hash

    plain = hashlib.sha256(b"reader@example.com").hexdigest()
    keyed = email_hash("reader@example.com", app.config["SECRET_KEY"])
    assert keyed[:16] != plain[:16]
    assert keyed != email_hash("reader@example.com", "another secret key of some length")
    assert keyed == email_hash("Reader@EXAMPLE.com", app.config["SECRET_KEY"])


@pytest.mark.parametrize(
    "target", ["////evil.example/x", "//evil.example/x", "/\t/evil.example/x", "/\\evil.example"]
)
def test_no_open_redirect_after_login(
    auth: AuthActions, reader: str, app: Flask, target: str
) -> None:
    browser = app.test_client()
    response = browser.post(
        "/login", query_string={"next": target}, data={"email": reader, "password": PASSWORD}
    )
    assert response.status_code == 302
    assert "evil.example" not in response.headers["Location"]


def test_cr_lf_in_next_is_settled_before_the_login_commits(
    auth: AuthActions, reader: str, app: Flask
) -> None:
    statuses = []
    for _ in range(6):  # more than the device cap: each one must end in a cookie
        browser = app.test_client()
        response = browser.post(
            "/login",
            query_string={"next": "/x\r\nSet-Cookie: a=b"},
            data={"email": reader, "password": PASSWORD},
        )
        statuses.append(response.status_code)
        if response.status_code == 302:
            assert response.headers["Location"] == "/", response.headers["Location"]
    # Five devices signed in (sent home, not to the bad target); the sixth meets the cap.
    assert statuses == [302] * 5 + [409], statuses
    with app.app_context():
        sessions = db.session.scalar(
            db.select(db.func.count(DeviceSession.id)).where(DeviceSession.ended_at.is_(None))
        )
    assert sessions == 5


def test_a_login_racing_another_logins_rehash_is_not_refused(
    app: Flask, auth: AuthActions, reader: str, db_kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by the two-instance run (issue 12): logins racing while the stored hash needs an
    upgrade (argon2 parameters raised) got 401 "not correct" for the right password, because
    another login's rehash looked like a password change to the re-check under the lock. A
    rehash keeps the password; only a change or reset may refuse the login in flight."""
    if db_kind != "postgresql":
        pytest.skip("SQLite serialises the two transactions with its write lock")
    from paywall.accounts.services import AccountService

    original = AccountService.authenticate

    def then_another_login_rehashes(self: AccountService, email: str, password: str) -> Account:
        account = original(self, email, password)
        with app.app_context():  # another login upgraded the stored hash and committed
            other = db.session.scalar(db.select(Account).where(Account.email == reader))
            other.password_hash = self.hashing.hash(PASSWORD)
            db.session.commit()
        return account

    monkeypatch.setattr(AccountService, "authenticate", then_another_login_rehashes)
    _browser, response = auth.log_in()
    assert response.status_code == 201, response.get_json()
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(DeviceSession.id))) == 1
