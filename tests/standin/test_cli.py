"""``python -m stripe_standin`` serves in the foreground and logs one line per request."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests
import stripe

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_cli_serves_the_api_with_keys_from_the_environment() -> None:
    port = free_port()
    api_key = "sk_test_standin_" + secrets.token_hex(8)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "STANDIN_API_KEY": api_key,
        "STANDIN_WEBHOOK_SECRET": "whsec_standin_" + secrets.token_hex(8),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "stripe_standin", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 15
        while True:
            try:
                requests.get(base + "/", timeout=1)
                break
            except requests.ConnectionError:
                assert process.poll() is None, process.communicate()[0]
                assert time.monotonic() < deadline, "stand-in did not start"
                time.sleep(0.1)
        client = stripe.StripeClient(api_key, base_addresses={"api": base})
        product = client.v1.products.create(params={"name": "From the CLI"})
        assert client.v1.products.retrieve(product.id).name == "From the CLI"
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=10)
    assert process.returncode == 0, output
    assert "POST /v1/products 200" in output
    assert f"GET /v1/products/{product.id} 200" in output


def test_cli_requires_keys() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STANDIN_")}
    result = subprocess.run(
        [sys.executable, "-m", "stripe_standin"],
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "--api-key" in result.stderr
