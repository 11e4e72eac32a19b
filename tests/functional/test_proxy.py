"""Behind a reverse proxy: through a real nginx (Debian's), started here with a generated config,
each reader keeps their own address for the rate limits; X-Forwarded-For cannot be spoofed."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port, make_app
from tests.stack import Served, serve

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
LIMITS = {"RATELIMIT_ENABLED": True, "LOGIN_LIMIT_PER_ADDRESS": "3 per minute"}


def start_nginx(
    tmp: Path, upstream_port: int, also: list[int] | None = None
) -> tuple[subprocess.Popen[bytes], int]:
    """nginx in front of the service on ``upstream_port`` (round robin with ``also``)."""
    if not os.path.exists(NGINX):
        pytest.fail("nginx is not installed (apt-get install nginx; .ci/run does it)")
    port = free_port()
    user = "user root;" if os.geteuid() == 0 else ""
    servers = " ".join(f"server 127.0.0.1:{p};" for p in [upstream_port, *(also or [])])
    (tmp / "nginx.conf").write_text(
        f"""
{user}
daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/body;
  proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi;
  scgi_temp_path {tmp}/scgi;
  upstream paywall {{ {servers} }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://paywall;
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
    }}
  }}
}}
"""
    )
    proc = subprocess.Popen([NGINX, "-p", str(tmp), "-c", str(tmp / "nginx.conf")])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            http.client.HTTPConnection("127.0.0.1", port, timeout=1).connect()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError((tmp / "error.log").read_text())


def login(port: int, source: str, headers: dict[str, str] | None = None) -> int:
    """A wrong-password login from the loopback address ``source`` (a distinct reader)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    body = json.dumps({"email": "nobody@example.com", "password": "wrong password!!"})
    conn.request(
        "POST", "/api/v1/sessions", body, {"Content-Type": "application/json", **(headers or {})}
    )
    status = conn.getresponse().status
    conn.close()
    return status


@pytest.fixture
def service(
    database_url: str, smtp_server: Any, request: pytest.FixtureRequest
) -> Iterator[Served]:
    _box, smtp_port = smtp_server
    served = serve(make_app(database_url, smtp_port, **LIMITS, **request.param))
    from paywall.extensions import limiter

    with served.app.app_context():
        limiter.reset()
    try:
        yield served
    finally:
        served.stop()


@pytest.mark.parametrize("service", [{"TRUSTED_PROXY_COUNT": 1}], indirect=True)
def test_behind_nginx_each_reader_keeps_their_own_limit(service: Served, tmp_path: Path) -> None:
    proc, port = start_nginx(tmp_path, service.server.server_port)
    try:
        assert [login(port, "127.0.0.2") for _ in range(4)] == [401, 401, 401, 429]
        # Another reader behind the same proxy is not locked out by the first one.
        assert login(port, "127.0.0.3") == 401
        # A forged X-Forwarded-For is one hop further left: the proxy's own entry counts.
        assert login(port, "127.0.0.2", {"X-Forwarded-For": "203.0.113.9"}) == 429
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.parametrize("service", [{"TRUSTED_PROXY_COUNT": 0}], indirect=True)
def test_without_trusted_proxies_x_forwarded_for_is_ignored(service: Served) -> None:
    port = service.server.server_port
    assert [login(port, "127.0.0.2") for _ in range(4)] == [401, 401, 401, 429]
    assert login(port, "127.0.0.2", {"X-Forwarded-For": "203.0.113.10"}) == 429
    assert login(port, "127.0.0.4") == 401
