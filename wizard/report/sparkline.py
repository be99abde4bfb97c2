"""Sparklines: a row of bars for memory over time."""

from __future__ import annotations

from collections.abc import Iterable

SPARK_UNICODE = "▁▂▃▄▅▆▇█"
SPARK_ASCII = "_.-=+*#@"


def sparkline(values: Iterable[float | None], unicode: bool = True, lo: float = 0) -> str:
    """A row of bars, one per value, scaled from ``lo`` (0) to the largest value."""
    bars = SPARK_UNICODE if unicode else SPARK_ASCII
    vals = [v for v in values if v is not None]
    if not vals:
        return ""
    top = max(vals)
    if top <= lo:
        return bars[0] * len(vals)
    n = len(bars) - 1
    return "".join(bars[max(0, min(n, round((v - lo) / (top - lo) * n)))] for v in vals)
