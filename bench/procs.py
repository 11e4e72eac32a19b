"""Processes the harness starts (gunicorn servers) and what it reads about them (memory)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
if not (BIN / "gunicorn").exists():  # running from another venv: use the interpreter's own
    import sys

    BIN = Path(sys.executable).parent


def free_port() -> int:
    """A free loopback port chosen by the kernel (never 8000/8001/12111, which are bound by
    ``make run`` when it is up)."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in (8000, 8001, 12111):
            return port


def wait_http(url: str, timeout: float = 60.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - loopback only
                if resp.status < 500:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return
            last = exc
        except OSError as exc:
            last = exc
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up in {timeout:.0f}s: {last}")


@dataclass(frozen=True)
class GunicornConfig:
    workers: int = 2
    threads: int = 1
    worker_class: str = "sync"

    def args(self) -> list[str]:
        return [
            "--workers",
            str(self.workers),
            "--threads",
            str(self.threads),
            "--worker-class",
            self.worker_class,
        ]

    def describe(self) -> str:
        return " ".join(self.args())


@dataclass
class Gunicorn:
    """One gunicorn master serving ``app`` on loopback; logs go to ``log_path``."""

    name: str
    app: str  # "wsgi:app" or "bench.bare_app:app"
    env: dict[str, str]
    config: GunicornConfig
    log_path: Path
    health_path: str = "/healthz"
    port: int = field(default_factory=free_port)
    dbname: str | None = None  # the database its workers connect to
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        # No control socket: gunicorn >= 27 otherwise binds ~/.gunicorn/gunicorn.ctl, shared by
        # every master on the machine (the harness runs several; `make run` may be up too).
        extra = ["--no-control-socket"] if _has_control_socket() else []
        return [
            str(BIN / "gunicorn"),
            *self.config.args(),
            "--bind",
            f"127.0.0.1:{self.port}",
            *extra,
            self.app,
        ]

    def display_command(self) -> str:
        return " ".join(["gunicorn", *self.config.args(), "--bind", "127.0.0.1:<port>", self.app])

    def start(self) -> Gunicorn:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(  # noqa: S603 - our own venv's gunicorn
            self.command(),
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        wait_http(self.url + self.health_path, proc=self.proc)
        # Every worker has imported the app once its master answers? Not necessarily: wait
        # until all workers exist.
        deadline = time.monotonic() + 30
        while len(self.worker_pids()) < self.config.workers and time.monotonic() < deadline:
            time.sleep(0.1)
        return self

    def worker_pids(self) -> list[int]:
        if self.proc is None:
            return []
        return children(self.proc.pid)

    def stop(self) -> None:
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                # Only the process group we created for this master and its workers.
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)

    def __enter__(self) -> Gunicorn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


_CONTROL: list[bool] = []


def _has_control_socket() -> bool:
    if not _CONTROL:
        out = subprocess.run(
            [str(BIN / "gunicorn"), "--help"],
            capture_output=True,
            text=True,  # noqa: S603
            check=False,
            timeout=30,
        ).stdout
        _CONTROL.append("--no-control-socket" in out)
    return _CONTROL[0]


def children(pid: int) -> list[int]:
    found: list[int] = []
    task_dir = Path(f"/proc/{pid}/task")
    try:
        for task in task_dir.iterdir():
            text = (task / "children").read_text().split()
            found.extend(int(x) for x in text)
    except OSError:
        return []
    return sorted(set(found))


@dataclass(frozen=True)
class Memory:
    """A process's memory in MiB: resident (RSS), proportional (PSS), unique (USS)."""

    rss: float
    pss: float
    uss: float


def memory_of(pid: int) -> Memory:
    fields: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
            name, value, *_ = line.split()
            fields[name.rstrip(":")] = int(value)
    except (OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                fields["Rss"] = int(line.split()[1])
    mib = 1024.0
    uss = fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)
    return Memory(fields.get("Rss", 0) / mib, fields.get("Pss", 0) / mib, uss / mib)
