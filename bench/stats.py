"""Medians and spreads over repeated runs."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Runs:
    """One metric measured in several runs."""

    values: tuple[float, ...]

    @classmethod
    def of(cls, values: Iterable[float]) -> Runs:
        vals = tuple(float(v) for v in values)
        if not vals:
            raise ValueError("no runs")
        return cls(vals)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def lo(self) -> float:
        return min(self.values)

    @property
    def hi(self) -> float:
        return max(self.values)

    @property
    def n(self) -> int:
        return len(self.values)

    def fmt(self, digits: int = 1, unit: str = "") -> str:
        """``median (min–max, n=N)``."""
        u = unit if unit in ("×", "%") else (f" {unit}" if unit else "")
        if self.n == 1:
            return f"{num(self.median, digits)}{u} (n=1)"
        return (
            f"{num(self.median, digits)}{u} ({num(self.lo, digits)}–{num(self.hi, digits)},"
            f" n={self.n})"
        )


def num(value: float, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def ratios(top: Sequence[float], bottom: Sequence[float]) -> Runs:
    """Per-run ratios of paired runs (run i of ``top`` over run i of ``bottom``)."""
    return Runs.of(t / b for t, b in zip(top, bottom, strict=True) if b)


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, math.ceil(p / 100 * len(sorted_values)) - 1))
    return sorted_values[k]
