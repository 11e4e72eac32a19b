"""Granted access: `flask access grant|revoke|list`, audited, shown in the account, used for
tokens and the device cap, combined with a subscription, ended at its date."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Flask

from paywall.clock import utcnow
from paywall.extensions import db
from paywall.grants.models import AccessGrant
from tests.conftest import AuthActions, Mailbox, Stripe, body_of


def cli(app: Flask, *args: str) -> Any:
    return app.test_cli_runner().invoke(args=["access", *args])


def until(days: int = 30) -> str:
    return (utcnow() + timedelta(days=days)).date().isoformat()


def entitlements(browser: Any) -> dict[str, Any]:
    response = browser.get("/api/v1/account")
    assert response.status_code == 200
    return response.get_json()["entitlements"]  # type: ignore[no-any-return]


def end_grants_now(app: Flask) -> None:
    """Time passes: the grant's date is reached."""
    with app.app_context():
        for row in db.session.query(AccessGrant).all():
            row.until = utcnow() - timedelta(seconds=1)
        db.session.commit()


def test_a_grant_starts_shows_in_the_account_and_the_token(
    app: Flask, auth: AuthActions, reader: str
) -> None:
    browser = auth.browser()
    assert entitlements(browser)["features"] == []
    result = cli(
        app,
        "grant",
        "READER@example.com",
        "--features",
        "premium_content,notifications",
        "--until",
        until(),
        "--reason",
        "Press pass: The Herald",
        "--by",
        "editor@news.test",
        "--max-devices",
        "7",
    )
    assert result.exit_code == 0, result.output
    granted = entitlements(browser)
    assert granted["reason"] == "granted"
    assert granted["features"] == ["premium_content", "notifications"]
    assert granted["max_devices"] == 7
    token = browser.post("/api/v1/entitlements/token").get_json()
    assert "premium_content" in token["entitlements"]["features"]
    assert browser.get("/api/v1/sessions").get_json()["limit"] == 7
    account = browser.get("/api/v1/account").get_json()
    assert account["granted"]["features"] == ["premium_content", "notifications"]
    assert account["granted"]["max_devices"] == 7
    assert account["granted"]["until"].startswith(until())
    # The reader's account page says so (not "Free account").
    page = browser.get("/").get_data(as_text=True)
    assert 'id="granted-access"' in page and "Complimentary access until" in page
    assert "Every article in full" in page and "up to 7 devices at once" in page
    assert "Free account" not in page
    listing = cli(app, "list").output
    assert "reader@example.com" in listing and "Press pass: The Herald" in listing
    assert "editor@news.test" in listing and "active" in listing


def test_a_grant_ends_at_its_date_and_its_tokens_are_revoked(
    app: Flask, auth: AuthActions, reader: str, mailbox: Mailbox
) -> None:
    browser = auth.browser()
    cli(
        app,
        "grant",
        reader,
        "--features",
        "premium_content",
        "--until",
        until(),
        "--reason",
        "School licence",
    )
    token = browser.post("/api/v1/entitlements/token").get_json()["token"]
    app.config["PUBLISHER_API_KEYS"] = [publisher := "p" * 40]
    as_publisher = {"Authorization": f"Bearer {publisher}"}
    verify = app.test_client().post
    assert verify(
        "/api/v1/entitlements/verify", json={"token": token}, headers=as_publisher
    ).get_json()["valid"]
    __import__("time").sleep(1.1)  # the grant ends (1 s back-dated) after the token's iat
    end_grants_now(app)
    assert browser.get("/api/v1/account").get_json()["granted"] is None
    assert 'id="granted-access"' not in browser.get("/").get_data(as_text=True)
    assert entitlements(browser) == {**entitlements(browser), "features": []}
    assert entitlements(browser)["reason"] != "granted"
    # The online check answers from the revocation feed: the beat's sweep records what ends by
    # the clock (every PAYWALL_REVOCATION_SWEEP_INTERVAL seconds); run it as the beat would.
    from paywall.entitlements.revocations import sweep

    with app.app_context():
        assert sweep(db.session) >= 1
        db.session.commit()
    verdict = verify(
        "/api/v1/entitlements/verify", json={"token": token}, headers=as_publisher
    ).get_json()
    assert verdict == {"valid": False, "reason": "revoked"}
    assert "ended" in cli(app, "list").output
    mailbox.clear()
    assert cli(app, "end-expired").exit_code == 0
    assert cli(app, "end-expired").exit_code == 0  # twice: one email
    app.test_cli_runner().invoke(args=["outbox", "send"])
    told = mailbox.wait_for(1)
    assert len(mailbox.to(reader)) == 1
    assert "ended" in told[0]["Subject"]


def test_revoke_ends_a_grant_and_is_audited(app: Flask, auth: AuthActions, reader: str) -> None:
    browser = auth.browser()
    cli(
        app,
        "grant",
        reader,
        "--features",
        "premium_content",
        "--until",
        until(),
        "--reason",
        "Complaint #42 settled",
    )
    result = cli(app, "revoke", reader, "--by", "support@news.test")
    assert result.exit_code == 0 and "revoked 1 grant" in result.output
    assert entitlements(browser)["features"] == []
    assert "revoked" in cli(app, "list").output and "support@news.test" in cli(app, "list").output


def test_bad_grants_are_refused_and_write_nothing(
    app: Flask, auth: AuthActions, reader: str
) -> None:
    cases = [
        [
            "nobody@example.com",
            "--features",
            "premium_content",
            "--until",
            until(),
            "--reason",
            "x",
        ],
        [reader, "--features", "everything", "--until", until(), "--reason", "x"],
        [reader, "--features", "premium_content", "--until", until(-1), "--reason", "x"],
        [reader, "--features", "premium_content", "--until", "soon", "--reason", "x"],
        [reader, "--features", "premium_content", "--until", until(), "--reason", " "],
        [
            reader,
            "--features",
            "premium_content",
            "--until",
            until(),
            "--reason",
            "x",
            "--max-devices",
            "0",
        ],
    ]
    for args in cases:
        result = cli(app, "grant", *args)
        assert result.exit_code != 0, args
        assert "Traceback" not in result.output
    with app.app_context():
        assert db.session.query(AccessGrant).count() == 0


def test_a_grant_combines_with_a_subscription(
    billing_app: Flask, billing_auth: AuthActions, stripe_actions: Stripe
) -> None:
    billing_auth.sign_up()
    browser = billing_auth.browser()
    stripe_actions.subscribe(browser)
    stripe_actions.deliver()
    subscribed = entitlements(browser)
    assert "premium_content" in subscribed["features"]
    # A grant of what the plan already gives, with more devices: the better cap, the plan stays.
    cli(
        billing_app,
        "grant",
        "reader@example.com",
        "--features",
        "premium_content",
        "--until",
        until(),
        "--reason",
        "Extra devices for a family",
        "--max-devices",
        "9",
    )
    combined = entitlements(browser)
    assert combined["max_devices"] == 9 and combined["plan"] == subscribed["plan"]
    assert combined["reason"] == subscribed["reason"]
    assert set(subscribed["features"]) <= set(combined["features"])
    # The grant ends: back to the subscription alone.
    end_grants_now(billing_app)
    assert entitlements(browser) == subscribed


def active_devices(app: Flask, email: str = "reader@example.com") -> list[str]:
    from paywall.accounts.models import Account
    from paywall.devices.models import DeviceSession

    with app.app_context():
        account = db.session.query(Account).filter_by(email=email).one()
        rows = (
            db.session.query(DeviceSession)
            .filter_by(account_id=account.id, ended_at=None)
            .order_by(DeviceSession.created_at)
            .all()
        )
        return [row.device_name for row in rows]


def signed_in_on(auth: AuthActions, count: int) -> list[Any]:
    return [auth.browser(name=f"Device {n}") for n in range(count)]


def grant_devices(app: Flask, reader: str, devices: str, **extra: str) -> None:
    args = ["grant", reader, "--features", "premium_content", "--until", until()]
    args += ["--reason", "Family pass", "--max-devices", devices]
    assert cli(app, *args).exit_code == 0


def test_a_grant_ending_at_its_date_signs_out_devices_over_the_cap(
    app: Flask, auth: AuthActions, reader: str, mailbox: Mailbox
) -> None:
    """The default cap is 5; a grant allowed 7. At its end the two least recently used go, as
    after a plan downgrade, and the reader is told which."""
    grant_devices(app, reader, "7")
    browsers = signed_in_on(auth, 7)
    for browser in browsers[2:]:
        assert browser.get("/api/v1/sessions").status_code == 200  # used since: not the LRU
    end_grants_now(app)
    mailbox.clear()
    assert cli(app, "end-expired").exit_code == 0
    assert active_devices(app) == [f"Device {n}" for n in range(2, 7)]
    assert browsers[0].get("/api/v1/sessions").status_code == 401
    assert browsers[6].get("/api/v1/sessions").get_json()["limit"] == 5
    app.test_cli_runner().invoke(args=["outbox", "send"])
    body = body_of(mailbox.wait_for(1)[0])
    assert "Device 0" in body and "Device 1" in body and "Device 2" not in body
    # Again: nothing more to do, nobody else signed out, no second email.
    assert cli(app, "end-expired").exit_code == 0
    assert len(active_devices(app)) == 5


def test_revoking_a_grant_signs_out_devices_over_the_cap_at_once(
    app: Flask, auth: AuthActions, reader: str
) -> None:
    grant_devices(app, reader, "6")
    signed_in_on(auth, 6)
    assert len(active_devices(app)) == 6
    assert cli(app, "revoke", reader).exit_code == 0
    assert active_devices(app) == [f"Device {n}" for n in range(1, 6)]


def test_a_replacing_grant_with_fewer_devices_signs_out_the_overflow(
    app: Flask, auth: AuthActions, reader: str
) -> None:
    grant_devices(app, reader, "8")
    signed_in_on(auth, 8)
    grant_devices(app, reader, "6")
    assert active_devices(app) == [f"Device {n}" for n in range(2, 8)]


def test_a_grant_ending_under_a_subscription_keeps_the_plans_cap(
    billing_app: Flask, billing_auth: AuthActions, stripe_actions: Stripe
) -> None:
    billing_auth.sign_up()
    browser = billing_auth.browser(name="Device 0")
    stripe_actions.subscribe(browser)
    stripe_actions.deliver()
    plan_cap = browser.get("/api/v1/sessions").get_json()["limit"]
    grant_devices(billing_app, "reader@example.com", str(plan_cap + 2))
    signed_in_on(billing_auth, plan_cap + 1)  # with Device 0: two over the plan's cap
    assert len(active_devices(billing_app)) == plan_cap + 2
    end_grants_now(billing_app)
    assert cli(billing_app, "end-expired").exit_code == 0
    assert len(active_devices(billing_app)) == plan_cap
