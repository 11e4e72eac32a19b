"""The revocation feed's long polls on asyncio (aiohttp): thousands of waiting frontends in one
process, a few KiB each, instead of a worker thread each.

    python -m paywall.entitlements.feed_server --host 0.0.0.0 --port 8002

Same settings (``PAYWALL_*``), same answer and errors as ``GET /api/v1/entitlements/revocations``
in the Flask app; route that path to this process at the proxy. It loads the configuration and
a database engine, not the whole service: the rows come from the same in-process
:class:`~paywall.entitlements.revocations.RevocationState` (one query per refresh interval, in a
thread), and every waiting poll is a coroutine woken when the state changes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
from typing import Any

from aiohttp import web

from paywall.entitlements.revocations import Cursor, InvalidCursor, RevocationState
from paywall.publishers.auth import PublisherKeyRequired, matching_key_index

PATH = "/api/v1/entitlements/revocations"
FEED: web.AppKey[FeedServer] = web.AppKey("paywall.feed")
NO_STORE = {"Cache-Control": "no-store"}


def _error(code: str, message: str, status: int) -> web.Response:
    return web.json_response(
        {"error": {"code": code, "message": message}}, status=status, headers=NO_STORE
    )


class FeedServer:
    """The aiohttp application around one ``RevocationState``."""

    def __init__(self, state: RevocationState, keys: list[str], max_wait: float) -> None:
        self.state = state
        self.keys = keys
        self.max_wait = max_wait
        self.waiting = 0
        self._changed: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._version = 0  # bumped on every change: answers are cached per (cursor, version)
        self._answers: dict[tuple[str, int], tuple[bool, str]] = {}

    def app(self) -> web.Application:
        application = web.Application()
        application[FEED] = self
        application.router.add_get(PATH, self.feed)
        application.router.add_get("/healthz", self.healthz)
        application.on_startup.append(self._start)
        return application

    async def _start(self, _app: web.Application) -> None:
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        self.state.listen(self._wake_threadsafe)
        self._keeper = asyncio.create_task(self._keep_fresh())

    def _wake_threadsafe(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        assert self._changed is not None
        self._version += 1
        self._answers.clear()
        self._changed.set()
        self._changed = asyncio.Event()  # the next waiters wait for the next change

    async def _keep_fresh(self) -> None:
        """While polls wait, keep the state's refresh thread running (it stops when idle)."""
        while True:
            if self.waiting:
                await asyncio.to_thread(self.state.touch)
            await asyncio.sleep(1.0)

    async def healthz(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "waiting": self.waiting})

    async def feed(self, request: web.Request) -> web.Response:
        header = request.headers.get("Authorization", "")
        presented = header[7:].strip() if header[:7].lower() == "bearer " else None
        if matching_key_index(presented, self.keys) is None:
            error = PublisherKeyRequired()
            return _error(error.code, error.message, error.status)
        try:
            wait = float(request.query.get("wait", "0"))
        except ValueError:
            wait = -1.0
        if not (0 <= wait <= 30) or math.isnan(wait):
            return _error("validation_error", "wait must be a number of seconds, 0 to 30.", 422)
        try:
            cursor = Cursor.parse(request.query.get("after"))
        except InvalidCursor as exc:
            return _error(exc.code, exc.message, exc.status)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(wait, self.max_wait)
        found, text = self._answer(cursor)
        self.waiting += 1
        try:
            while not found and loop.time() < deadline:
                assert self._changed is not None
                # asyncio.timeout, not wait_for: no extra task per waiting poll.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout_at(deadline):
                        await self._changed.wait()
                found, text = self._answer(cursor)
        finally:
            self.waiting -= 1
        return web.Response(text=text, content_type="application/json", headers=NO_STORE)

    def _answer(self, cursor: Cursor) -> tuple[bool, str]:
        """(anything new, the JSON body) for ``cursor``; the thousands of polls waiting on the
        same cursor share one body per change."""
        key = (str(cursor), self._version)
        cached = self._answers.get(key)
        if cached is None:
            found, after = self.state.since(cursor)
            body = {"revocations": [e.public() for e in found], "cursor": str(after)}
            cached = (bool(found), json.dumps(body))
            if len(self._answers) < 10_000:
                self._answers[key] = cached
        return cached


def build(config: dict[str, Any] | None = None) -> web.Application:
    """The application, configured from ``PAYWALL_*`` (and ``config`` overrides)."""
    from flask import Flask
    from sqlalchemy import create_engine

    from paywall.config import load_config

    flask_app = Flask("paywall.feed")
    load_config(flask_app, config)
    cfg = flask_app.config
    options = dict(cfg.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    engine = create_engine(cfg["SQLALCHEMY_DATABASE_URI"], pool_size=2, **options)
    from paywall.database import configure_engine

    configure_engine(engine, cfg)
    state = RevocationState(
        engine,
        interval=float(cfg["REVOCATION_REFRESH_INTERVAL"]),
        settle=float(cfg["REVOCATION_GAP_SETTLE"]),
    )
    state.touch()
    return FeedServer(
        state, list(cfg["PUBLISHER_API_KEYS"]), float(cfg["REVOCATION_MAX_WAIT"])
    ).app()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m paywall.entitlements.feed_server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8002)
    args = parser.parse_args(argv)
    web.run_app(build(), host=args.host, port=args.port, access_log=None, backlog=4096)


if __name__ == "__main__":
    main()
