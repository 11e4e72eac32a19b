"""Rate limits on login, sign-up and reset: 429 with Retry-After; the owner keeps reset."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD, AuthActions

LIMITS = {
    "RATELIMIT_ENABLED": True,
    "LOGIN_LIMIT_PER_ACCOUNT": "3 per 15 minutes",
    "LOGIN_LIMIT_PER_ADDRESS": "8 per minute",
    "SIGNUP_LIMIT_PER_ADDRESS": "2 per hour",
    "RESET_LIMIT_PER_ACCOUNT": "2 per hour",
    "RESET_LIMIT_PER_ADDRESS": "20 per hour",
}


@pytest.fixture
def app_config() -> dict:
    return dict(LIMITS)


def test_failed_logins_per_account_get_429_with_retry_after(auth: AuthActions, reader: str) -> None:
    for _ in range(3):
        _b, wrong = auth.log_in(reader, "wrong password!!")
        assert wrong.status_code == 401
    _b, limited = auth.log_in(reader, PASSWORD)
    assert limited.status_code == 429
    assert limited.get_json()["error"]["code"] == "rate_limited"
    assert 0 < int(limited.headers["Retry-After"]) <= 15 * 60
    # Another account from the same address is not locked by this one's failures.
    auth.sign_up("other@example.com")
    _b, other = auth.log_in("other@example.com", PASSWORD)
    assert other.status_code == 201


def test_successful_logins_do_not_count_against_the_account(auth: AuthActions, reader: str) -> None:
    for _ in range(5):
        _b, ok = auth.log_in(reader, PASSWORD)
        assert ok.status_code in (201, 409)


def test_logins_per_address_are_limited(auth: AuthActions, reader: str) -> None:
    statuses = [
        auth.log_in(f"user{i}@example.com", "whatever pass")[1].status_code for i in range(9)
    ]
    assert statuses[:8] == [401] * 8
    assert statuses[8] == 429


def test_signup_per_address_is_limited(client) -> None:
    statuses = [
        client.post(
            "/api/v1/accounts", json={"email": f"s{i}@example.com", "password": PASSWORD}
        ).status_code
        for i in range(3)
    ]
    assert statuses == [202, 202, 429]


def test_locked_out_login_does_not_block_the_owners_password_reset(
    client, auth: AuthActions, reader: str, mailbox
) -> None:
    mailbox.wait_for(1)
    for _ in range(4):
        auth.log_in(reader, "attacker guess 123")
    assert auth.log_in(reader, PASSWORD)[1].status_code == 429
    reset = client.post("/api/v1/password-resets", json={"email": reader})
    assert reset.status_code == 202
    assert len(mailbox.wait_for(2)) == 2


def test_reset_requests_per_account_are_limited_without_revealing_the_account(client) -> None:
    statuses = [
        client.post("/api/v1/password-resets", json={"email": "x@example.com"}).status_code
        for _ in range(3)
    ]
    assert statuses == [202, 202, 429]
