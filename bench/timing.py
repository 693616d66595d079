"""Timing helpers: medians of repeated runs, ratios, a plain-text table."""

from __future__ import annotations

import gc
import statistics
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable


def median_s(func: Callable[[], Any], *, repeat: int, warmup: int = 1) -> tuple[float, Any]:
    """
    Run `func` ``warmup + repeat`` times; return the median wall time of the timed runs.

    The garbage collector runs before each timed call (not inside it), so one run's garbage
    is not charged to the next.

    Returns
    -------
    median_s, result
        Median seconds over `repeat` runs, and the last run's return value.
    """
    result = None
    for _ in range(warmup):
        result = func()
    times = []
    for _ in range(max(1, repeat)):
        gc.collect()
        t0 = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def ratio(slow: float | None, fast: float | None) -> float | None:
    """``slow / fast`` rounded to 0.1, or None when either is missing."""
    if not slow or not fast:
        return None
    return round(slow / fast, 1)


def fmt_s(value: float | None) -> str:
    """Seconds as ``0.123 s`` / ``12 ms``; ``-`` for None."""
    if value is None:
        return "-"
    if value < 1:
        return f"{value * 1000:.1f} ms"
    return f"{value:.2f} s"


def print_table(title: str, rows: list[dict[str, Any]]) -> None:
    """Print `rows` (dicts with the same keys) as an aligned text table under `title`."""
    print(f"\n== {title}")
    if not rows:
        print("(no rows)")
        return
    cols = list(rows[0])
    cells = [[("-" if r.get(c) is None else str(r.get(c))) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))
