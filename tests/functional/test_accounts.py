"""Sign-up, verification, password reset through the API, with emails read from real SMTP."""

from __future__ import annotations

import pytest
from flask import Flask

from tests.conftest import PASSWORD, AuthActions, Mailbox, body_of, link_from


def test_signup_sends_verification_and_account_starts_unverified(
    client, auth: AuthActions, mailbox: Mailbox
) -> None:
    response = client.post(
        "/api/v1/accounts", json={"email": "New.Reader@Example.com", "password": PASSWORD}
    )
    assert response.status_code == 202
    [message] = mailbox.wait_for(1)
    assert message["To"] == "new.reader@example.com"
    assert "https://paywall.test/verify-email?token=" in body_of(message)

    browser = auth.browser("new.reader@example.com")
    account = browser.get("/api/v1/account").get_json()
    assert account["email"] == "new.reader@example.com"
    assert account["email_verified"] is False
    assert set(account) >= {"id", "email", "email_verified", "created_at"}

    token = link_from(message, "/verify-email")
    verified = client.post("/api/v1/email-verifications", json={"token": token})
    assert verified.status_code == 200
    assert browser.get("/api/v1/account").get_json()["email_verified"] is True

    reused = client.post("/api/v1/email-verifications", json={"token": token})
    assert reused.status_code == 400
    assert reused.get_json()["error"]["code"] == "token_used"


def test_signup_response_is_identical_for_registered_and_new_addresses(
    client, reader: str, mailbox: Mailbox
) -> None:
    mailbox.wait_for(1)
    mailbox.clear()
    taken = client.post("/api/v1/accounts", json={"email": reader, "password": PASSWORD + "x"})
    fresh = client.post(
        "/api/v1/accounts", json={"email": "other@example.com", "password": PASSWORD}
    )
    assert taken.status_code == fresh.status_code == 202
    assert taken.get_json() == fresh.get_json()
    messages = mailbox.wait_for(2)
    subjects = {m["To"]: m["Subject"] for m in messages}
    assert subjects[reader] == "Someone tried to sign up with your address"
    assert subjects["other@example.com"] == "Confirm your email address"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-email", "password": PASSWORD}, "email"),
        ({"email": "a@example.com", "password": "short"}, "password"),
        ({"email": "a@example.com", "password": "password123"}, "password"),
        ({"email": "a@example.com", "password": "x" * 1025}, "password"),
        ({"email": "a@example.com"}, "password"),
        ({"email": "a@example.com", "password": PASSWORD, "admin": True}, "admin"),
        ({"email": 5, "password": PASSWORD}, "email"),
    ],
)
def test_signup_refuses_bad_input_with_field_errors_and_writes_nothing(
    client, app: Flask, body: dict, field: str
) -> None:
    response = client.post("/api/v1/accounts", json=body)
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["fields"]
    from paywall.accounts.models import Account
    from paywall.extensions import db

    with app.app_context():
        assert db.session.query(Account).count() == 0


def test_long_password_is_never_truncated(client, auth: AuthActions) -> None:
    long_password = "p" * 63 + "-a-very-long-passphrase-" + "q" * 100
    auth.sign_up("long@example.com", long_password)
    _browser, ok = auth.log_in("long@example.com", long_password)
    assert ok.status_code == 201
    _browser, cut = auth.log_in("long@example.com", long_password[:72])
    assert cut.status_code == 401


def test_password_reset_signs_out_every_device_and_tells_the_reader(
    client, auth: AuthActions, reader: str, mailbox: Mailbox
) -> None:
    laptop = auth.browser(name="Laptop")
    phone = auth.browser(name="Phone")
    mailbox.wait_for(1)
    mailbox.clear()

    assert client.post("/api/v1/password-resets", json={"email": reader}).status_code == 202
    [message] = mailbox.wait_for(1)
    token = link_from(message, "/reset-password")

    done = client.post(
        "/api/v1/password-resets/confirm", json={"token": token, "password": "a new passphrase 42"}
    )
    assert done.status_code == 200
    for browser in (laptop, phone):
        after = browser.get("/api/v1/sessions")
        assert after.status_code == 401
        assert after.get_json()["error"]["code"] == "session_revoked"
    notice = mailbox.wait_for(2)[1]
    assert notice["Subject"] == "Your password was changed"

    _b, old = auth.log_in(reader, PASSWORD)
    assert old.status_code == 401
    _b, new = auth.log_in(reader, "a new passphrase 42")
    assert new.status_code == 201

    again = client.post(
        "/api/v1/password-resets/confirm", json={"token": token, "password": "another one 4242"}
    )
    assert again.status_code == 400
    # Used once, and bound to the password it replaced: "used", not merely "invalid".
    assert again.get_json()["error"]["code"] == "token_used"


def test_reset_request_is_identical_for_unknown_addresses(
    client, reader: str, mailbox: Mailbox
) -> None:
    mailbox.wait_for(1)
    mailbox.clear()
    known = client.post("/api/v1/password-resets", json={"email": reader})
    unknown = client.post("/api/v1/password-resets", json={"email": "nobody@example.com"})
    assert known.status_code == unknown.status_code == 202
    assert known.get_json() == unknown.get_json()
    mailbox.wait_for(1)
    assert mailbox.to("nobody@example.com") == []


def test_tokens_refused_when_expired_or_for_another_purpose(
    app: Flask, client, reader: str, mailbox: Mailbox
) -> None:
    [verify_mail] = mailbox.wait_for(1)
    verify_token = link_from(verify_mail, "/verify-email")
    # A verification token is not a reset token (separate salts).
    wrong = client.post(
        "/api/v1/password-resets/confirm",
        json={"token": verify_token, "password": "a new passphrase 42"},
    )
    assert wrong.status_code == 400
    assert wrong.get_json()["error"]["code"] == "token_invalid"

    # Tampered, while the token is still fresh: only the signature can refuse it (it used to
    # run after max_age was set to -1 and accept "expired": it could not fail).
    for position in (-1, len(verify_token) // 2, 0):
        flipped = "A" if verify_token[position] != "A" else "B"
        tampered_token = (
            verify_token[:position] + flipped + verify_token[position:][1:]
            if position >= 0
            else verify_token[:-1] + flipped
        )
        assert tampered_token != verify_token
        tampered = client.post("/api/v1/email-verifications", json={"token": tampered_token})
        assert tampered.status_code == 400, position
        assert tampered.get_json()["error"]["code"] == "token_invalid", position

    app.config["VERIFY_TOKEN_MAX_AGE"] = -1  # every token is now past its max_age
    expired = client.post("/api/v1/email-verifications", json={"token": verify_token})
    assert expired.status_code == 400
    assert expired.get_json()["error"]["code"] == "token_expired"


def test_a_reset_link_expires_after_one_hour(
    client, reader: str, mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """README and docs/security.md promise 1 h; a controlled clock moves past it."""
    from itsdangerous.timed import TimestampSigner

    now = [1_900_000_000]
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda _self: now[0])
    mailbox.wait_for(1)
    client.post("/api/v1/password-resets", json={"email": reader})
    token = link_from(mailbox.wait_for(2)[1], "/reset-password")
    new = {"token": token, "password": "a new passphrase 42"}

    now[0] += 3600 + 1
    late = client.post("/api/v1/password-resets/confirm", json=new)
    assert late.status_code == 400
    assert late.get_json()["error"]["code"] == "token_expired"
    now[0] -= 2  # 3,599 s after it was sent: still good
    assert client.post("/api/v1/password-resets/confirm", json=new).status_code == 200


def test_links_use_public_url_not_the_host_header(client, mailbox: Mailbox) -> None:
    client.post(
        "/api/v1/accounts",
        json={"email": "host@example.com", "password": PASSWORD},
        headers={"Host": "evil.example"},
    )
    [message] = mailbox.wait_for(1)
    assert "evil.example" not in body_of(message)
    assert "https://paywall.test/verify-email?token=" in body_of(message)


def test_resend_verification(auth: AuthActions, reader: str, mailbox: Mailbox) -> None:
    mailbox.wait_for(1)
    browser = auth.browser()
    assert browser.post("/api/v1/account/verification-email").status_code == 202
    assert len(mailbox.wait_for(2)) == 2


def test_change_password_needs_the_current_one_and_signs_out_other_devices(
    auth: AuthActions, reader: str, mailbox: Mailbox
) -> None:
    laptop = auth.browser(name="Laptop")
    phone = auth.browser(name="Phone")
    wrong = laptop.post(
        "/api/v1/account/password",
        json={"current_password": "not it at all", "new_password": "brand new pass 7"},
    )
    assert wrong.status_code == 422
    assert "current_password" in wrong.get_json()["error"]["fields"]
    weak = laptop.post(
        "/api/v1/account/password", json={"current_password": PASSWORD, "new_password": "password"}
    )
    assert weak.status_code == 422
    ok = laptop.post(
        "/api/v1/account/password",
        json={"current_password": PASSWORD, "new_password": "brand new pass 7"},
    )
    assert ok.status_code == 200 and ok.get_json() == {"signed_out_devices": 1}
    assert laptop.get("/api/v1/account").status_code == 200
    assert phone.get("/api/v1/account").get_json()["error"]["code"] == "session_revoked"
    assert auth.log_in(reader, "brand new pass 7")[1].status_code == 201
    assert any(m["Subject"] == "Your password was changed" for m in mailbox.wait_for(2))


def test_opening_the_verification_link_changes_nothing_until_the_reader_confirms(
    client, auth: AuthActions, reader: str, mailbox: Mailbox
) -> None:
    token = link_from(mailbox.wait_for(1)[0], "/verify-email")
    page = client.get(f"/verify-email?token={token}")  # a mail scanner prefetching the link
    assert page.status_code == 200 and b"Confirm my address" in page.data
    browser = auth.browser()
    assert browser.get("/api/v1/account").get_json()["email_verified"] is False
    client.post("/verify-email", data={"token": token})
    assert browser.get("/api/v1/account").get_json()["email_verified"] is True


def test_authentication_attempts_are_logged_without_the_typed_address(
    auth: AuthActions, reader: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="paywall.accounts.services")
    auth.log_in(reader, "wrong password!!")
    auth.log_in("nobody@example.com", "wrong password!!")
    auth.log_in()
    events = [(r.event, r.account_id) for r in caplog.records if hasattr(r, "event")]
    assert [e for e, _ in events] == ["login_failed", "login_failed", "login"]
    assert events[0][1] is not None and events[1][1] is None
    assert all("nobody@example.com" not in r.getMessage() + str(r.__dict__) for r in caplog.records)
