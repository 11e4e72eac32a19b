"""The asyncio feed server answers as the Flask endpoint does: publisher key, cursor, long poll
woken by a change committed by the service (another process's state, through the table)."""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from flask import Flask

from tests.conftest import AuthActions, Mailbox, base_config, free_port

PUBLISHER_KEY = secrets.token_urlsafe(32)


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"PUBLISHER_API_KEYS": [PUBLISHER_KEY]}


@pytest.fixture
def feed_url(app: Flask, database_url: str, smtp_server: tuple[Mailbox, int]) -> Iterator[str]:
    from aiohttp import web

    from paywall.entitlements.feed_server import FEED, PATH, build

    application = build(
        base_config(database_url, smtp_server[1], PUBLISHER_API_KEYS=[PUBLISHER_KEY])
    )
    port = free_port()
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(application)
    ready = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(30)
    try:
        yield f"http://127.0.0.1:{port}{PATH}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        application[FEED].state.stop()


def get(url: str, key: str = PUBLISHER_KEY, **params: Any) -> requests.Response:
    return requests.get(url, params=params, headers={"Authorization": f"Bearer {key}"}, timeout=60)


def test_key_cursor_and_wait_are_checked(feed_url: str) -> None:
    for key in ("", "wrong"):
        answer = get(feed_url, key=key)
        assert answer.status_code == 401
        assert answer.json()["error"]["code"] == "publisher_key_required"
    assert get(feed_url, after="5.3").json()["error"]["code"] == "invalid_cursor"
    assert get(feed_url, wait=31).status_code == 422
    assert get(feed_url, wait="soon").status_code == 422
    first = get(feed_url).json()
    assert first["revocations"] == []
    assert get(feed_url, after=first["cursor"], wait=0.3).json() == first


def test_a_long_poll_is_woken_by_a_sign_out_in_the_service(
    feed_url: str, auth: AuthActions, reader: str
) -> None:
    laptop = auth.browser(name="Laptop")
    sid = laptop.get("/api/v1/sessions").get_json()["sessions"][0]["id"]
    cursor = get(feed_url).json()["cursor"]
    timer = threading.Timer(0.5, lambda: laptop.delete("/api/v1/sessions/current"))
    timer.start()
    try:
        answer = get(feed_url, after=cursor, wait=30).json()
    finally:
        timer.join()
    assert [(e["event"], e["sid"], e["reason"]) for e in answer["revocations"]] == [
        ("session.ended", sid, "signed_out")
    ]
    assert get(feed_url, after=answer["cursor"]).json()["revocations"] == []
