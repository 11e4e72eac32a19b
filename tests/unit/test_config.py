"""The app refuses unsafe configuration outside demo mode, naming the setting."""

from __future__ import annotations

import pytest

from paywall import create_app
from paywall.config import DEMO_SECRET, ConfigError
from paywall.entitlements.keys import DEMO_KEY_FILE, generate_pem
from tests.conftest import VAPID_KEY

SIGNING_KEY = generate_pem()

SAFE = {
    "DATABASE_URL": "sqlite://",
    "SECRET_KEY": "s" * 40,
    "ENTITLEMENT_SIGNING_KEYS": [SIGNING_KEY],
    "STRIPE_API_KEY": "sk_test_fake",
    "STRIPE_WEBHOOK_SECRET": "whsec_fake",
    "SMTP_URL": "smtp://127.0.0.1:2525",
    "REDIS_URL": "redis://127.0.0.1:6379/15",
    "VAPID_PRIVATE_KEY": VAPID_KEY,
}


def test_safe_production_config_starts() -> None:
    app = create_app(SAFE)
    assert app.config["SESSION_COOKIE_SECURE"] is True


@pytest.mark.parametrize(
    ("change", "setting"),
    [
        ({"SECRET_KEY": None}, "PAYWALL_SECRET_KEY"),
        ({"SECRET_KEY": DEMO_SECRET}, "PAYWALL_SECRET_KEY"),
        ({"SECRET_KEY": "short"}, "PAYWALL_SECRET_KEY"),
        ({"ENTITLEMENT_SIGNING_KEYS": []}, "PAYWALL_ENTITLEMENT_SIGNING_KEYS"),
        ({"ENTITLEMENT_SIGNING_KEYS": ["k" * 40]}, "PAYWALL_ENTITLEMENT_SIGNING_KEYS"),
        ({"ENTITLEMENT_SIGNING_KEYS": [VAPID_KEY]}, "PAYWALL_ENTITLEMENT_SIGNING_KEYS"),  # P-256
        ({"ENTITLEMENT_SIGNING_KEYS": [{"kty": "oct", "k": "abc"}]}, "SIGNING_KEYS"),
        ({"ENTITLEMENT_KEYS": ["k" * 40]}, "PAYWALL_ENTITLEMENT_KEYS"),  # the old HMAC setting
        ({"STRIPE_WEBHOOK_SECRET": []}, "PAYWALL_STRIPE_WEBHOOK_SECRET"),
        ({"DEVICE_POLICY": "random"}, "PAYWALL_DEVICE_POLICY"),
        ({"MAX_DEVICES": 0}, "PAYWALL_MAX_DEVICES"),
        ({"SESSION_ROTATION_INTERVAL": 0}, "PAYWALL_SESSION_ROTATION_INTERVAL"),
        ({"SESSION_ROTATION_INTERVAL": "5m"}, "PAYWALL_SESSION_ROTATION_INTERVAL"),
        ({"SESSION_ROTATION_GRACE": -1}, "PAYWALL_SESSION_ROTATION_GRACE"),
        ({"VAPID_PRIVATE_KEY": None}, "PAYWALL_VAPID_PRIVATE_KEY"),
        ({"VAPID_PRIVATE_KEY": "not a key"}, "PAYWALL_VAPID_PRIVATE_KEY"),
        ({"VAPID_SUBJECT": "newsroom@example.com"}, "PAYWALL_VAPID_SUBJECT"),
        ({"PUBLISHER_API_KEYS": ["short"]}, "PAYWALL_PUBLISHER_API_KEYS"),
        # Without Stripe or a mail server nothing can be sold and no link can be sent.
        ({"STRIPE_API_KEY": None}, "PAYWALL_STRIPE_API_KEY"),
        ({"SMTP_URL": None}, "PAYWALL_SMTP_URL"),
        ({"SMTP_URL": ""}, "PAYWALL_SMTP_URL"),
    ],
)
def test_unsafe_config_is_refused_naming_the_setting(change: dict, setting: str) -> None:
    with pytest.raises(ConfigError, match=setting):
        create_app({**SAFE, **change})


def test_environment_overrides_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYWALL_MAX_DEVICES", "3")
    monkeypatch.setenv("PAYWALL_DEVICE_POLICY", "evict_lru")
    import json

    from paywall.entitlements.keys import signing_keys

    jwk = json.loads(
        __import__("jwt").algorithms.OKPAlgorithm.to_jwk(
            signing_keys([generate_pem()]).keys[0].private
        )
    )
    monkeypatch.setenv("PAYWALL_ENTITLEMENT_SIGNING_KEYS", json.dumps([jwk, SIGNING_KEY]))
    app = create_app({k: v for k, v in SAFE.items() if k != "ENTITLEMENT_SIGNING_KEYS"})
    assert app.config["MAX_DEVICES"] == 3
    assert app.config["DEVICE_POLICY"] == "evict_lru"
    keys = signing_keys(app.config["ENTITLEMENT_SIGNING_KEYS"]).keys
    assert len(keys) == 2 and keys[1].kid == signing_keys([SIGNING_KEY]).keys[0].kid


def test_demo_mode_starts_without_secrets(tmp_path) -> None:
    app = create_app({"DEMO": True, "DATABASE_URL": f"sqlite:///{tmp_path}/demo.sqlite3"})
    # A secret of its own (kept in instance/, 0600), never the one published in the source.
    assert app.config["SECRET_KEY"] != DEMO_SECRET and len(app.config["SECRET_KEY"]) >= 32
    assert app.config["SESSION_COOKIE_SECURE"] is False


def test_demo_mode_keeps_a_generated_signing_key_in_instance(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import stat

    from flask import Flask

    from paywall.config import load_config

    def demo_app() -> Flask:
        app = Flask("demo", instance_path=str(tmp_path / "instance"))
        load_config(app, {"DEMO": True, "DATABASE_URL": f"sqlite:///{tmp_path}/d.sqlite3"})
        return app

    first, second = demo_app(), demo_app()
    path = tmp_path / "instance" / DEMO_KEY_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert first.config["ENTITLEMENT_SIGNING_KEYS"] == [path.read_text()]
    assert second.config["ENTITLEMENT_SIGNING_KEYS"] == first.config["ENTITLEMENT_SIGNING_KEYS"]
    assert "BEGIN PRIVATE KEY" in path.read_text()


def test_production_refuses_to_count_limits_per_process() -> None:
    without_store = {k: v for k, v in SAFE.items() if k != "REDIS_URL"}
    with pytest.raises(ConfigError, match="PAYWALL_REDIS_URL"):
        create_app(without_store)
    # A store named explicitly is the operator's choice.
    app = create_app({**without_store, "RATELIMIT_STORAGE_URI": "memory://"})
    assert app.config["RATELIMIT_STORAGE_URI"] == "memory://"
    assert create_app(SAFE).config["RATELIMIT_STORAGE_URI"] == SAFE["REDIS_URL"]


@pytest.mark.parametrize("count", [-1, "two", True])
def test_trusted_proxy_count_must_be_a_count(count: object) -> None:
    with pytest.raises(ConfigError, match="PAYWALL_TRUSTED_PROXY_COUNT"):
        create_app({**SAFE, "TRUSTED_PROXY_COUNT": count})


def test_demo_generates_a_vapid_key_once_readable_only_by_its_owner(tmp_path) -> None:
    from paywall.notifications.push import demo_vapid_key, load_vapid_key

    first = demo_vapid_key(str(tmp_path))
    path = tmp_path / "vapid_private_key.pem"
    assert path.stat().st_mode & 0o777 == 0o600
    assert demo_vapid_key(str(tmp_path)) == first  # kept, not regenerated
    load_vapid_key(first)  # a usable P-256 key


@pytest.mark.parametrize("debug", [{"DEBUG": True}, {"DEBUG": 1}])
def test_debug_never_implies_demo(debug: dict) -> None:
    with pytest.raises(ConfigError, match="PAYWALL_SECRET_KEY"):
        create_app({**SAFE, "SECRET_KEY": None, **debug})


def test_gift_settings_are_checked() -> None:
    import pytest

    from paywall.config import ConfigError, check_config

    base = {"SQLALCHEMY_DATABASE_URI": "sqlite://", "DEVICE_POLICY": "refuse", "MAX_DEVICES": 5}
    base["METER_LIMIT"] = 3
    check_config(base, demo=True)
    for key, value in (
        ("GIFTS_PER_MONTH", -1),
        ("GIFTS_PER_MONTH", "10"),
        ("GIFT_MAX_READERS", True),
        ("GIFT_TTL_DAYS", 0),
        ("GIFT_URL", "https://news.example/{article}"),
    ):
        with pytest.raises(ConfigError, match=f"PAYWALL_{key}"):
            check_config({**base, key: value}, demo=True)
