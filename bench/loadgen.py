"""The load generator: wrk with ``requests.lua`` (POSTs with headers and bodies from a file), or a
small threaded Python client when wrk is missing (CI without wrk; slower, noted in the report)."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from bench.stats import percentile

LUA = Path(__file__).resolve().parent / "requests.lua"
# BENCH_NO_WRK=1 forces the Python client (to test it, or where wrk misbehaves).
WRK = None if os.environ.get("BENCH_NO_WRK") else shutil.which("wrk")


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: str = ""

    def line(self) -> str:
        for text in (self.method, self.path, self.body):
            if "\t" in text or "\n" in text:
                raise ValueError("tabs and newlines cannot be replayed")
        headers = "|".join(f"{k}: {v}" for k, v in self.headers.items())
        if "|" in "".join(self.headers.values()) or "\t" in headers:
            raise ValueError("header values cannot contain | or tabs")
        return f"{self.method}\t{self.path}\t{headers}\t{self.body}"


def write_requests(requests: Sequence[Request], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for req in requests:
            out.write(req.line() + "\n")
    return path


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    ok: int
    bad: int
    socket_errors: int
    wrapped: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    tool: str

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def errors(self) -> int:
        return self.bad + self.socket_errors


def tool_name() -> str:
    return "wrk" if WRK else "python (wrk not found)"


def display_command(connections: int, seconds: float, threads: int = 1) -> str:
    if WRK:
        return (
            f"wrk -t{threads} -c{connections} -d{seconds:g}s --timeout 10s"
            " -s bench/requests.lua"
            f" http://127.0.0.1:<port> -- <requests file> <offset> {threads}"
        )
    return f"python threaded client, {connections} connections, {seconds:g}s"


def run(
    url: str,
    requests_file: Path,
    *,
    connections: int,
    seconds: float,
    offset: int = 0,
    threads: int = 1,
) -> LoadResult:
    if WRK:
        return _run_wrk(url, requests_file, connections, seconds, offset, threads)
    return _run_python(url, requests_file, connections, seconds, offset)


def _run_wrk(
    url: str, requests_file: Path, connections: int, seconds: float, offset: int, threads: int
) -> LoadResult:
    threads = max(1, min(threads, connections))
    seconds = max(1, round(seconds))  # wrk takes whole seconds
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tmp:
        out_path = Path(tmp.name)
    try:
        cmd = [
            WRK or "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds:g}s",
            "--timeout",
            "10s",
            "-s",
            str(LUA),
            url,
            "--",
            str(requests_file),
            str(offset),
            str(threads),
        ]
        proc = subprocess.run(  # noqa: S603
            cmd,
            capture_output=True,
            text=True,
            env={**os.environ, "BENCH_WRK_OUT": str(out_path)},
            timeout=seconds + 60,
            check=False,
        )
        if proc.returncode != 0 or not out_path.stat().st_size:
            raise RuntimeError(
                f"wrk failed ({proc.returncode}): {(proc.stderr or proc.stdout)[:300]}"
            )
        data = json.loads(out_path.read_text())
    finally:
        out_path.unlink(missing_ok=True)
    sock = data["connect_errors"] + data["read_errors"] + data["write_errors"] + data["timeouts"]
    return LoadResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        ok=data["ok"],
        bad=data["bad"],
        socket_errors=sock,
        wrapped=data["wrapped"],
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["lat_max_us"] / 1000,
        tool="wrk",
    )


def _parse_file(requests_file: Path) -> list[tuple[str, str, dict[str, str], bytes | None]]:
    out = []
    for line in requests_file.read_text(encoding="utf-8").splitlines():
        method, path, hdrs, body = line.split("\t", 3)
        headers = dict(h.split(": ", 1) for h in hdrs.split("|") if h)
        out.append((method, path, headers, body.encode() if body else None))
    return out


def _run_python(
    url: str, requests_file: Path, connections: int, seconds: float, offset: int
) -> LoadResult:
    reqs = _parse_file(requests_file)
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    lock = threading.Lock()
    counter = [offset]
    latencies: list[float] = []
    tallies = {"ok": 0, "bad": 0, "sock": 0, "wrapped": 0}
    deadline = time.monotonic() + seconds

    def worker() -> None:
        local: list[float] = []
        ok = bad = sock = 0
        while time.monotonic() < deadline:
            with lock:
                i = counter[0] % len(reqs)
                if counter[0] and i == 0:
                    tallies["wrapped"] += 1
                counter[0] += 1
            method, path, headers, body = reqs[i]
            started = time.perf_counter()
            try:
                conn = http.client.HTTPConnection(host, port, timeout=10)
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                resp.read()
                conn.close()
            except OSError:
                sock += 1
                continue
            local.append(time.perf_counter() - started)
            if 200 <= resp.status < 300:
                ok += 1
            else:
                bad += 1
        with lock:
            latencies.extend(local)
            tallies["ok"] += ok
            tallies["bad"] += bad
            tallies["sock"] += sock

    started = time.monotonic()
    workers = [threading.Thread(target=worker, daemon=True) for _ in range(connections)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(seconds + 30)
    elapsed = time.monotonic() - started
    latencies.sort()
    ms = [x * 1000 for x in latencies]
    return LoadResult(
        requests=len(latencies),
        seconds=elapsed,
        ok=tallies["ok"],
        bad=tallies["bad"],
        socket_errors=tallies["sock"],
        wrapped=tallies["wrapped"],
        p50_ms=percentile(ms, 50),
        p90_ms=percentile(ms, 90),
        p99_ms=percentile(ms, 99),
        max_ms=ms[-1] if ms else float("nan"),
        tool="python",
    )
