"""Collects results and writes docs/benchmarks.md."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Row:
    """One line of the summary table."""

    metric: str
    result: str
    baseline: str
    ratio: str
    target: str
    met: bool | None  # None: no target, information only

    def cells(self) -> list[str]:
        met = {True: "yes", False: "**no**", None: "—"}[self.met]
        return [self.metric, self.result, self.baseline, self.ratio, self.target, met]


@dataclass
class Section:
    key: str
    title: str
    command: str
    body: list[str] = field(default_factory=list)

    def add(self, *lines: str) -> None:
        self.body.extend(lines)


@dataclass
class Report:
    title: str
    intro: list[str] = field(default_factory=list)
    machine: dict[str, str] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def section(self, key: str, title: str, command: str) -> Section:
        sec = Section(key, title, command)
        self.sections.append(sec)
        return sec

    def render(self) -> str:
        out = [f"# {self.title}", ""]
        out += self.intro + [""]
        out += ["## Machine", "", "| | |", "|---|---|"]
        out += [f"| {k} | {v} |" for k, v in self.machine.items()]
        out += ["", "## Summary", ""]
        out += table(
            ["Metric", "Result", "Baseline (same run)", "Ratio", "Target", "Met?"],
            [r.cells() for r in self.rows],
        )
        if self.failures:
            out += ["", "## Benchmarks that did not run, and harness warnings", ""]
            out += [f"- {f}" for f in self.failures]
        for sec in self.sections:
            out += ["", f"## {sec.title}", "", f"Reproduce: `{sec.command}`", ""]
            out += sec.body
        return "\n".join(out).rstrip() + "\n"

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.render(), encoding="utf-8")


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |")
    return lines


def code(text: str, lang: str = "") -> list[str]:
    return [f"```{lang}", text.rstrip(), "```"]
