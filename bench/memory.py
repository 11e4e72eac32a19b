"""Benchmark 6: resident memory of one service worker, at idle and after the load runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench.report import table

if TYPE_CHECKING:
    from bench.runner import Context

TARGET_MIB = 150


def run(ctx: Context) -> None:
    rows = []
    worst_idle = worst_after = 0.0
    for kind, state in ctx.dbs.items():
        for moment, mems in state.memory.items():
            if not mems:
                continue
            for i, m in enumerate(mems):
                rows.append(
                    [
                        f"service ({kind} db), worker {i + 1}",
                        moment,
                        f"{m.rss:.1f}",
                        f"{m.pss:.1f}",
                        f"{m.uss:.1f}",
                    ]
                )
            top = max(m.rss for m in mems)
            if moment.startswith("idle"):
                worst_idle = max(worst_idle, top)
            else:
                worst_after = max(worst_after, top)
    if not rows:
        raise RuntimeError("no service ran, so no memory was read")
    ctx.results["memory"] = rows
    ctx.report.rows += [
        ctx.row(
            "6. Worker RSS at idle (largest worker)",
            f"{worst_idle:.1f} MiB",
            "—",
            "—",
            f"< {TARGET_MIB} MB",
            worst_idle < TARGET_MIB,
        ),
        ctx.row(
            "6. Worker RSS after the load runs (largest worker)",
            f"{worst_after:.1f} MiB",
            f"{worst_idle:.1f} MiB at idle",
            f"{worst_after / worst_idle:.2f}×" if worst_idle else "—",
            f"< {TARGET_MIB} MB",
            0 < worst_after < TARGET_MIB,
        ),
    ]
    sec = ctx.report.section("memory", "6. Memory", ctx.command("memory"))
    sec.add(
        "Each gunicorn worker of the service, read from `/proc/<pid>/smaps_rollup`: RSS"
        " (resident, what the target is about), PSS (shared pages split between the processes"
        " sharing them) and USS (pages only this worker has). Idle: 1 s after the workers"
        " started, before any request. After: at the end of the load runs of benchmarks 2–4"
        " (empty database) and 5 (both databases). `MiB`.",
        "",
    )
    sec.body += table(["Process", "When", "RSS", "PSS", "USS"], rows)
    ctx.notes_for("memory", sec, worst_idle, worst_after)
