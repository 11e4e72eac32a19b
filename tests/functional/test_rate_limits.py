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
        assert ok.status_code == 201  # five devices: the cap, not passed


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


# -- findings of the security assessment (issue 11) ----------------------------------------
def test_page_views_do_not_count_as_attempts(client, auth: AuthActions, reader: str) -> None:
    for _ in range(10):
        assert client.get("/forgot-password").status_code == 200
        assert client.get("/signup").status_code == 200
        assert client.get("/login").status_code == 200
    assert client.post("/forgot-password", data={"email": reader}).status_code == 200
    signup = client.post("/signup", data={"email": "new@example.com", "password": PASSWORD})
    assert signup.status_code == 200
    _b, login = auth.log_in(reader, PASSWORD)
    assert login.status_code == 201


def test_a_submission_without_an_email_never_shares_a_per_account_key(client) -> None:
    for _ in range(3):
        assert client.post("/forgot-password", data={}).status_code == 200
    assert client.post("/forgot-password", data={"email": "a@example.com"}).status_code == 200
    assert client.post("/forgot-password", data={"email": "b@example.com"}).status_code == 200


@pytest.mark.parametrize("variant", ["reader@\uff45xample.com", "reader@example\u3002com"])
def test_unicode_variants_of_an_address_share_its_counters(
    client, auth: AuthActions, reader: str, variant: str
) -> None:
    # The variant is the same account for the lookup...
    _b, ok = auth.log_in(variant, PASSWORD)
    assert ok.status_code == 201
    # ...so it is the same counter for the limiter.
    assert auth.log_in(reader, "wrong password!!")[1].status_code == 401
    assert auth.log_in(variant, "wrong password!!")[1].status_code == 401
    assert auth.log_in(variant.upper(), "wrong password!!")[1].status_code == 401
    assert auth.log_in(reader, PASSWORD)[1].status_code == 429
    resets = [
        client.post("/api/v1/password-resets", json={"email": e}).status_code
        for e in (reader, variant, " " + variant.upper())
    ]
    assert resets == [202, 202, 429]


def test_password_change_is_limited_per_session_and_per_account(
    auth: AuthActions, reader: str
) -> None:
    laptop, phone = auth.browser(name="Laptop"), auth.browser(name="Phone")

    def change(browser, current: str) -> int:
        return int(
            browser.post(
                "/api/v1/account/password",
                json={"current_password": current, "new_password": "a brand new passphrase"},
            ).status_code
        )

    assert [change(laptop, f"guess number {i}") for i in range(3)] == [422, 422, 422]
    assert change(laptop, PASSWORD) == 429  # per session: even the right one waits
    assert [change(phone, f"other guess {i}") for i in range(2)] == [422, 422]
    assert change(phone, "one more guess") == 429  # per account: 5 across sessions


class TestDeviceCookie:
    def test_an_attacker_cannot_lock_the_owner_out_of_a_known_device(
        self, auth: AuthActions, reader: str
    ) -> None:
        owner = auth.browser()  # signed in before: this browser is a known device
        assert owner.delete("/api/v1/sessions/current").status_code == 204
        for _ in range(3):
            assert auth.log_in(reader, "attacker guess 123")[1].status_code == 401
        # Unknown devices are locked out, even with the right password...
        assert auth.log_in(reader, PASSWORD)[1].status_code == 429
        # ...the owner's browser is not.
        again = owner.post("/api/v1/sessions", json={"email": reader, "password": PASSWORD})
        assert again.status_code == 201, again.get_json()

    def test_a_known_device_has_its_own_limit(self, auth: AuthActions, reader: str) -> None:
        owner = auth.browser()
        body = {"email": reader, "password": "wrong password!!"}
        statuses = [owner.post("/api/v1/sessions", json=body).status_code for _ in range(4)]
        assert statuses == [401, 401, 401, 429]
        # Its failures did not touch the counter of unknown devices.
        assert auth.log_in(reader, PASSWORD)[1].status_code == 201

    def test_a_device_cookie_of_another_account_does_not_count(
        self, auth: AuthActions, reader: str
    ) -> None:
        auth.sign_up("attacker@example.com")
        attacker = auth.browser("attacker@example.com")
        for _ in range(3):
            assert auth.log_in(reader, "attacker guess 123")[1].status_code == 401
        stolen = attacker.post("/api/v1/sessions", json={"email": reader, "password": PASSWORD})
        assert stolen.status_code == 429


@pytest.fixture
def tight_limits(app_config: dict) -> dict:
    return app_config


LIMITS.update(
    {
        "LOGIN_LIMIT_PER_DEVICE": "3 per 15 minutes",
        "PASSWORD_CHANGE_LIMIT_PER_SESSION": "3 per 15 minutes",
        "PASSWORD_CHANGE_LIMIT_PER_ACCOUNT": "5 per hour",
    }
)


class TestBurst:
    @pytest.fixture
    def app_config(self) -> dict:
        # Real hashing cost, so the 40 checks overlap as they do in production.
        return {
            **LIMITS,
            "LOGIN_LIMIT_PER_ACCOUNT": "10 per 15 minutes",
            "LOGIN_LIMIT_PER_ADDRESS": "1000 per minute",
            "ARGON2_TIME_COST": 2,
            "ARGON2_MEMORY_COST": 19456,
        }

    def test_a_burst_of_failures_never_passes_the_limit(self, app, auth: AuthActions) -> None:
        import threading

        auth.sign_up()
        barrier = threading.Barrier(40)
        statuses: list[int] = []

        def attempt(i: int) -> None:
            browser = app.test_client()
            barrier.wait()
            response = browser.post(
                "/api/v1/sessions", json={"email": "reader@example.com", "password": f"guess {i}!!"}
            )
            statuses.append(response.status_code)

        threads = [threading.Thread(target=attempt, args=(i,)) for i in range(40)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(statuses) == [401] * 10 + [429] * 30


class TestSharedStoreDown:
    @pytest.fixture
    def app_config(self) -> dict:
        from tests.conftest import free_port

        down = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
        return {**LIMITS, "RATELIMIT_STORAGE_URI": down, "REDIS_URL": down}

    def test_limits_fall_back_to_the_process_and_never_500(
        self, client, auth: AuthActions, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level("WARNING", logger="paywall.ratelimits")
        reader = "reader@example.com"
        auth.sign_up(reader)
        assert client.get("/login").status_code == 200
        assert (
            client.post("/login", data={"email": reader, "password": "nope nope"}).status_code
            == 401
        )
        assert any(getattr(r, "event", "") == "ratelimit_fallback" for r in caplog.records)
        assert auth.log_in(reader, "wrong password!!")[1].status_code == 401
        assert auth.log_in(reader, "wrong password!!")[1].status_code == 401
        # The limit still holds, counted in this process.
        assert auth.log_in(reader, PASSWORD)[1].status_code == 429
        signup = client.post(
            "/api/v1/accounts", json={"email": "n@example.com", "password": PASSWORD}
        )
        assert signup.status_code == 202
        assert client.post("/api/v1/password-resets", json={"email": reader}).status_code == 202
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.get_json()["status"] == "degraded"
        assert ready.get_json()["checks"] == {"database": "ok", "rate_limit_store": "unreachable"}
