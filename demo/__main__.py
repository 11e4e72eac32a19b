"""Start everything a newcomer needs to walk the whole journey in a browser.

``python -m demo publish [--title …] [--slug …] [--topic …]`` (in a second terminal, while the
demo runs) publishes a story the way a newsroom's CMS does (``POST /api/v1/stories`` with the
demo's publisher key) and prints its delivery counts.

Settings already in the environment (``PAYWALL_*``) win over the demo defaults here, so the same
command runs against PostgreSQL (``PAYWALL_DATABASE_URL``) or a real Stripe test account
(``PAYWALL_STRIPE_API_KEY`` + ``PAYWALL_STRIPE_WEBHOOK_SECRET``: then no stand-in is started).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from paywall.instance import private_dir

ROOT = Path(__file__).resolve().parent.parent
SERVICE_PORT = int(os.environ.get("DEMO_SERVICE_PORT", "8000"))
STANDIN_PORT = int(os.environ.get("DEMO_STANDIN_PORT", "12111"))
SITE_PORT = int(os.environ.get("DEMO_SITE_PORT", "8001"))
PUSH_PORT = int(os.environ.get("DEMO_PUSH_PORT", "12112"))
BIN = Path(sys.executable).parent
#: The demo newsroom's publisher key (made by the demo, read by ``demo publish``).
PUBLISHER_KEY_FILE = ROOT / "instance" / "demo-publisher-key"
PUSH_SERVICES = [  # the default PAYWALL_PUSH_ALLOWED_ORIGINS: real browsers keep working
    "https://fcm.googleapis.com",
    "https://updates.push.services.mozilla.com",
    "https://web.push.apple.com",
    "https://*.notify.windows.com",
]


def demo_environment(environ: dict[str, str]) -> tuple[dict[str, str], bool]:
    """The environment every demo process gets, and whether the Stripe stand-in runs."""
    env = dict(environ)
    env.setdefault("PAYWALL_DEMO", "true")
    # Per-run secrets, passed by environment (a command line is visible to anyone in ``ps``).
    env.setdefault("PAYWALL_SECRET_KEY", secrets.token_hex(32))
    env.setdefault("ARTICLE_SITE_SECRET_KEY", secrets.token_hex(32))
    env.setdefault("PAYWALL_PUBLIC_URL", f"http://127.0.0.1:{SERVICE_PORT}")
    env.setdefault("PAYWALL_SITE_URL", f"http://127.0.0.1:{SITE_PORT}")
    # The service signs tokens with an Ed25519 key it keeps in instance/ (demo mode makes it
    # at the first start); the news site verifies with the public keys from the JWKS URL.
    # The site follows the revocation feed with a publisher key: the first configured, else one
    # made for this run.
    configured = publisher_keys(env.get("PAYWALL_PUBLISHER_API_KEYS", ""))
    if not configured:
        configured = [secrets.token_urlsafe(32)]
        env["PAYWALL_PUBLISHER_API_KEYS"] = json.dumps(configured)
    env.setdefault("ARTICLE_SITE_PUBLISHER_KEY", configured[0])
    use_standin = "PAYWALL_STRIPE_API_KEY" not in env
    if use_standin:
        env["PAYWALL_STRIPE_API_KEY"] = "sk_test_standin_" + secrets.token_hex(12)
        env["PAYWALL_STRIPE_WEBHOOK_SECRET"] = "whsec_standin_" + secrets.token_hex(16)
        env["PAYWALL_STRIPE_API_BASE"] = f"http://127.0.0.1:{STANDIN_PORT}"
    # Story notifications: the push stand-in is one more push service the service may POST to
    # (plain http on loopback, so it is listed with http).
    push_url = f"http://127.0.0.1:{PUSH_PORT}"
    env.setdefault("PAYWALL_PUSH_ALLOWED_ORIGINS", ",".join([*PUSH_SERVICES, push_url]))
    return env, use_standin


def publisher_keys(value: str) -> list[str]:
    """``PAYWALL_PUBLISHER_API_KEYS`` as the service reads it: a JSON list or comma-separated."""
    value = value.strip()
    if value.startswith("["):
        return [str(k) for k in json.loads(value) if k]
    return [k.strip() for k in value.split(",") if k.strip()]


def standin_process(env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """The stand-in's command line (no secret on it) and its environment (the secrets)."""
    command = [
        sys.executable,
        "-m",
        "stripe_standin",
        "--port",
        str(STANDIN_PORT),
        "--webhook-url",
        f"http://127.0.0.1:{SERVICE_PORT}/api/v1/stripe/webhook",
    ]
    return command, {
        **env,
        "STANDIN_API_KEY": env["PAYWALL_STRIPE_API_KEY"],
        "STANDIN_WEBHOOK_SECRET": env["PAYWALL_STRIPE_WEBHOOK_SECRET"],
    }


def main() -> int:
    # Everything the demo writes (the SQLite files, keys, the beat schedule) is its owner's
    # only: the children inherit this mask.
    os.umask(0o077)
    env, use_standin = demo_environment(dict(os.environ))
    private_dir(ROOT / "instance")
    for existing in (ROOT / "instance").iterdir():  # files made before the mask was set
        if existing.is_file():
            existing.chmod(0o600)
    add_newsroom_key(env, publisher_key())
    flask = [str(BIN / "flask"), "--app", "wsgi"]
    subprocess.run([*flask, "db", "upgrade"], cwd=ROOT, env=env, check=True)

    children: list[subprocess.Popen[bytes]] = []
    try:
        if use_standin:
            command, standin_env = standin_process(env)
            children.append(subprocess.Popen(command, cwd=ROOT, env=standin_env))
            wait_until_up(f"http://127.0.0.1:{STANDIN_PORT}/")
            subprocess.run(
                [*flask, "billing", "create-demo-catalogue"], cwd=ROOT, env=env, check=True
            )
        children.append(
            subprocess.Popen(
                [sys.executable, "-m", "push_standin", "--port", str(PUSH_PORT)], cwd=ROOT, env=env
            )
        )
        wait_until_up(f"http://127.0.0.1:{PUSH_PORT}/messages")
        children.append(
            subprocess.Popen(
                [
                    str(BIN / "gunicorn"),
                    "--workers",
                    "2",
                    "--threads",
                    "4",
                    "--bind",
                    f"127.0.0.1:{SERVICE_PORT}",
                    "--access-logfile",
                    "-",
                    # Tokens in query strings (reset links, Checkout's return) never reach it.
                    "--logger-class",
                    "paywall.logs.GunicornLogger",
                    "wsgi:app",
                ],
                cwd=ROOT,
                env=env,
            )
        )
        wait_until_up(f"http://127.0.0.1:{SERVICE_PORT}/healthz")
        # Emails and other background jobs: one worker with the beat schedule in it, on the
        # embedded broker (an SQLite file in instance/; no server to run).
        children.append(
            subprocess.Popen(
                [
                    str(BIN / "celery"),
                    "-A",
                    "paywall.worker:celery",
                    "worker",
                    "--beat",
                    "--schedule",
                    str(ROOT / "instance" / "celerybeat-schedule"),
                    "--pool",
                    "threads",
                    "--concurrency",
                    "2",
                    "--loglevel",
                    "INFO",
                ],
                cwd=ROOT,
                env=env,
            )
        )
        site_env = {
            **env,
            "ARTICLE_SITE_PAYWALL_URL": env["PAYWALL_PUBLIC_URL"],
            "ARTICLE_SITE_JWKS_URL": env["PAYWALL_PUBLIC_URL"] + "/.well-known/jwks.json",
        }
        children.append(
            subprocess.Popen(
                [str(BIN / "flask"), "--app", "article_site", "run", "--port", str(SITE_PORT)],
                cwd=ROOT,
                env=site_env,
            )
        )
        wait_until_up(f"http://127.0.0.1:{SITE_PORT}/healthz")
        print_banner(use_standin)
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for child in children:
            child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                child.kill()


def wait_until_up(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - loopback only
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"demo: {url} did not come up")


def print_banner(use_standin: bool) -> None:
    lines = [
        "",
        "  The paywall demo is running. Open:",
        f"    News site (start here)   http://127.0.0.1:{SITE_PORT}/",
        f"    Paywall service          http://127.0.0.1:{SERVICE_PORT}/",
        f"    API document             http://127.0.0.1:{SERVICE_PORT}/api/v1/openapi.json",
    ]
    if use_standin:
        lines += [
            f"    Stripe stand-in          http://127.0.0.1:{STANDIN_PORT}/",
            "  Pay with the test card 4242 4242 4242 4242 (4000 0000 0000 0341 is declined).",
        ]
    lines += [
        f"    Push stand-in            http://127.0.0.1:{PUSH_PORT}/",
        '  Notifications: as a Premium reader click "Get notified of new stories" on an',
        "  article, then publish a story as the newsroom's CMS would (second terminal):",
        '    .venv/bin/python -m demo publish --title "Council approves the new bridge"',
        "  Emails are printed to this log. Stop with Ctrl-C.",
        "",
    ]
    print("\n".join(lines), flush=True)


def add_newsroom_key(env: dict[str, str], key: str) -> None:
    """The demo newsroom's key (kept in instance/ for ``demo publish``) next to the site's."""
    keys = publisher_keys(env.get("PAYWALL_PUBLISHER_API_KEYS", ""))
    if key not in keys:
        env["PAYWALL_PUBLISHER_API_KEYS"] = json.dumps([*keys, key])


def publisher_key() -> str:
    """The demo newsroom's key: made once, kept in instance/ (0600) for ``demo publish``."""
    if not PUBLISHER_KEY_FILE.exists():
        PUBLISHER_KEY_FILE.parent.mkdir(exist_ok=True)
        fd = os.open(PUBLISHER_KEY_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write("pk_demo_" + secrets.token_hex(24))
    return PUBLISHER_KEY_FILE.read_text().strip()


def publish(argv: list[str]) -> int:
    """Publish a story to the running demo, as a CMS does, and print its delivery counts."""
    parser = argparse.ArgumentParser(prog="python -m demo publish", description=publish.__doc__)
    parser.add_argument("--title", default="Council approves the new bridge")
    parser.add_argument("--summary", default="The vote was unanimous; work starts in spring.")
    parser.add_argument(
        "--slug",
        default="city-council-opens-new-riverside-park",
        help="the news site's article the notification opens",
    )
    parser.add_argument("--topic", action="append", default=[], help="repeat for several")
    parser.add_argument("--id", dest="story_id", default=None, help="default: a new id")
    args = parser.parse_args(argv)
    if not PUBLISHER_KEY_FILE.exists():
        raise SystemExit("demo publish: start the demo first (make run)")
    service = os.environ.get("PAYWALL_PUBLIC_URL", f"http://127.0.0.1:{SERVICE_PORT}")
    site = os.environ.get("PAYWALL_SITE_URL", f"http://127.0.0.1:{SITE_PORT}")
    story_id = args.story_id or "demo-" + secrets.token_hex(4)
    body = {
        "id": story_id,
        "title": args.title,
        "summary": args.summary,
        "url": f"{site}/news/{args.slug}",
        "topics": args.topic,
    }
    headers = {"Authorization": f"Bearer {publisher_key()}", "Content-Type": "application/json"}
    status, answer = _call("POST", f"{service}/api/v1/stories", headers, body)
    print(f"POST /api/v1/stories -> {status} {json.dumps(answer)}")
    if status not in (200, 202):
        return 1
    deadline = time.monotonic() + 30
    while True:  # the demo's worker delivers it: wait for the fan-out to finish
        status, story = _call("GET", f"{service}/api/v1/stories/{story_id}", headers)
        if status != 200 or story.get("status") == "sent" or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    print(f"GET /api/v1/stories/{story_id} -> {status} {json.dumps(story.get('counts'))}")
    print(f"Pushes to the push stand-in's endpoints: http://127.0.0.1:{PUSH_PORT}/")
    return 0


def _call(
    method: str, url: str, headers: dict[str, str], body: dict[str, object] | None = None
) -> tuple[int, dict[str, object]]:
    import urllib.error

    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["publish"]:
        raise SystemExit(publish(sys.argv[2:]))
    raise SystemExit(main())
