"""Where the machine's CPU went during a load run: service workers, PostgreSQL, the load
generator, this harness (which hosts the Stripe stand-in), everything else."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _proc_ticks() -> dict[int, tuple[str, int]]:
    """pid -> (command, user+system jiffies). The harness's own entry is split in two: its
    threads (pid) and the children it has waited for, i.e. the load generator (-pid)."""
    out: dict[int, tuple[str, int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        # utime, stime are fields 14 and 15 (1-based) of stat; after "pid (comm) " index 11, 12
        out[int(entry.name)] = (comm, int(fields[11]) + int(fields[12]))
        if int(entry.name) == os.getpid():
            out[-os.getpid()] = ("load generator", int(fields[13]) + int(fields[14]))
    return out


def _total_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs."""
    parts = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    vals = [int(x) for x in parts]
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
    return sum(vals) - idle, sum(vals)


@dataclass
class Snapshot:
    procs: dict[int, tuple[str, int]]
    busy: int
    total: int


def snapshot() -> Snapshot:
    busy, total = _total_ticks()
    return Snapshot(_proc_ticks(), busy, total)


def split(
    before: Snapshot, after: Snapshot, service_pids: set[int], db_pids: set[int] | None = None
) -> dict[str, float]:
    """CPU seconds per group between two snapshots. The load generator (wrk, a child the harness
    waits for) is counted from the harness's children time."""
    groups = {
        "service (gunicorn workers)": 0.0,
        "PostgreSQL, the service's connections": 0.0,
        "PostgreSQL, everything else": 0.0,
        "load generator": 0.0,
        "harness + Stripe stand-in": 0.0,
        "other processes on the machine": 0.0,
    }
    me = os.getpid()
    seen = 0.0
    for pid, (comm, ticks) in after.procs.items():
        start = before.procs.get(pid, (comm, 0))[1] if pid in before.procs else 0
        delta = (ticks - start) / TICK
        if delta <= 0:
            continue
        seen += delta
        if pid in service_pids:
            groups["service (gunicorn workers)"] += delta
        elif db_pids and pid in db_pids:
            groups["PostgreSQL, the service's connections"] += delta
        elif comm.startswith("postgres"):
            groups["PostgreSQL, everything else"] += delta
        elif pid == -me:
            groups["load generator"] += delta
        elif pid == me:
            groups["harness + Stripe stand-in"] += delta
        else:
            groups["other processes on the machine"] += delta
    busy = (after.busy - before.busy) / TICK
    groups["machine busy (all CPUs)"] = busy
    groups["unattributed (kernel, exited processes)"] = max(0.0, busy - seen)
    return groups
