"""``make run``'s push journey: the service may POST to the push stand-in, the browsers' push
services stay allowed, and ``demo publish`` finds the demo newsroom's key."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

import demo.__main__ as demo
from paywall.config import DEFAULTS
from paywall.notifications.services import endpoint_allowed


def test_the_demo_allows_the_push_standin_and_the_browsers_push_services() -> None:
    env, _ = demo.demo_environment({})
    allowed = env["PAYWALL_PUSH_ALLOWED_ORIGINS"].split(",")
    assert set(DEFAULTS["PUSH_ALLOWED_ORIGINS"]) <= set(allowed)
    assert endpoint_allowed(f"http://127.0.0.1:{demo.PUSH_PORT}/push/abc", allowed)
    assert not endpoint_allowed("http://127.0.0.1:6379/push/abc", allowed)
    mine = demo.demo_environment({"PAYWALL_PUSH_ALLOWED_ORIGINS": "https://fcm.googleapis.com"})
    assert mine[0]["PAYWALL_PUSH_ALLOWED_ORIGINS"] == "https://fcm.googleapis.com"


def test_the_demo_publisher_key_is_made_once_and_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo, "PUBLISHER_KEY_FILE", tmp_path / "instance" / "demo-publisher-key")
    first = demo.publisher_key()
    assert len(first) >= 32  # PAYWALL_PUBLISHER_API_KEYS refuses shorter keys outside demo
    assert demo.publisher_key() == first
    assert stat.S_IMODE(demo.PUBLISHER_KEY_FILE.stat().st_mode) == 0o600


def test_the_newsroom_key_joins_the_sites_key() -> None:
    env, _ = demo.demo_environment({})
    site = env["ARTICLE_SITE_PUBLISHER_KEY"]
    demo.add_newsroom_key(env, "pk_demo_" + "n" * 40)
    demo.add_newsroom_key(env, "pk_demo_" + "n" * 40)  # once
    assert demo.publisher_keys(env["PAYWALL_PUBLISHER_API_KEYS"]) == [site, "pk_demo_" + "n" * 40]
