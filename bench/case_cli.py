"""Case 7: CLI start-up and commands timed as whole processes (what a user waits for).

Each figure is the median wall time (and CPU time: user + system of the child, robust when
the machine is shared) of N runs of a fresh ``python`` process (imports, data load, work,
exit), beside two baselines in the same run: a bare interpreter and an
interpreter that only imports geopandas (the floor of any command that reads a layer).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.timing import fmt_s, print_table, ratio

if TYPE_CHECKING:
    from collections.abc import Callable

RISKMAP = [sys.executable, "-c", "from riskmap.cli import main; main()"]
"""The console script's own code path (``riskmap = riskmap.cli:main``), same interpreter."""

COMMANDS: dict[str, list[str]] = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "python -c 'import geopandas'": [sys.executable, "-c", "import geopandas"],
    "riskmap --help": [*RISKMAP, "--help"],
    "riskmap summary": [*RISKMAP, "summary"],
    "riskmap summary --format json": [*RISKMAP, "summary", "--format", "json"],
}


def _drop_summary_cache() -> None:
    """Remove the cached ``riskmap summary`` output (`riskmap.outputcache`): a cold run."""
    from riskmap.settings import Settings  # noqa: PLC0415

    cache = Settings.from_env().layers_dir / ".cache"
    for entry in cache.glob("output.summary-*.json"):
        entry.unlink(missing_ok=True)


def _time_process(
    argv: list[str], repeat: int, before: Callable[[], None] | None = None
) -> tuple[float, float]:
    """Median wall and CPU (user + system, the child's own `os.wait4` usage) seconds."""
    times, cpus = [], []
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    for k in range(repeat + 1):
        if before is not None:
            before()
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            raise subprocess.CalledProcessError(proc.returncode, argv)
        if k:  # the first run warms the OS file cache and .pyc files
            times.append(time.perf_counter() - t0)
            cpus.append(usage.ru_utime + usage.ru_stime)
    return statistics.median(times), statistics.median(cpus)


def run(repeat: int) -> dict[str, Any]:
    """Time each command as a whole process; ratios against ``import geopandas``."""
    with tempfile.TemporaryDirectory(prefix="riskmap-bench-cli-") as tmp:
        commands = {
            **COMMANDS,
            # (not ``python -m riskmap.cli``: cli.py has no ``__main__`` block, so that
            # would time an interpreter that imports the module and exits)
            "riskmap map --out": [
                *RISKMAP,
                "map",
                "--out",
                str(Path(tmp) / "m.html"),
                "--overwrite",
            ],
        }
        res = {name: _time_process(argv, repeat) for name, argv in commands.items()}
        # the figures above are summary's cached output (the warm-up run fills the cache);
        # this one is the first run after a data change: project loaded and summarised
        res["riskmap summary (no cache)"] = _time_process(
            [*RISKMAP, "summary"], repeat, before=_drop_summary_cache
        )
    floor, floor_cpu = res["python -c 'import geopandas'"]
    rows = [
        {
            "command": name,
            "median": fmt_s(t),
            "/ import geopandas": ratio(t, floor),
            "CPU": fmt_s(cpu),
            "CPU / import geopandas": ratio(cpu, floor_cpu),
        }
        for name, (t, cpu) in res.items()
    ]
    print_table("7. CLI as whole processes (median wall and CPU time)", rows)
    out = {name.replace(" ", "_"): t for name, (t, _) in res.items()}
    out.update({f"{name.replace(' ', '_')}_cpu": cpu for name, (_, cpu) in res.items()})
    return out
