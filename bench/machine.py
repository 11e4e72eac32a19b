"""What the numbers were measured on."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return float("nan")


def _tool_version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "not found"
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0] if text else "unknown"


def describe(pg_version: str, extra: dict[str, str] | None = None) -> dict[str, Any]:
    info = {
        "CPU": _cpu_model(),
        "Cores (online)": str(os.cpu_count()),
        "Memory": f"{_mem_total_gib():.1f} GiB",
        "OS": f"{platform.system()} {platform.release()}",
        "Python": sys.version.split()[0] + f" ({platform.python_implementation()})",
        "PostgreSQL": pg_version,
        "Flask / SQLAlchemy / psycopg / gunicorn / argon2-cffi / itsdangerous": " / ".join(
            _dist(d)
            for d in ("flask", "sqlalchemy", "psycopg", "gunicorn", "argon2-cffi", "itsdangerous")
        ),
        "Load generator": _loadgen(),
        "Load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    info.update(extra or {})
    return info


def _loadgen() -> str:
    from bench import loadgen

    if loadgen.WRK:
        return _tool_version([loadgen.WRK, "-v"]).split(" Copyright")[0]
    return loadgen.tool_name()


def _dist(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "?"
