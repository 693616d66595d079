"""Case 8: the survey import as the user runs it, a whole CLI process, beside a bare baseline.

The file is the messy one (`bench.gen.write_messy_survey_csv`: Chinese headers, 20 % DMS
coordinates, 2 % bad rows, 20 % rows with a warning), under the app's 20 MiB upload limit at
100k rows. ``riskmap import FILE --layer geohazard --dry-run --report-json R`` is timed as a
fresh process (imports, read, detect, convert, validate, join, report), beside a bare script
process in the same run: ``pandas.read_csv`` → `geopandas.points_from_xy` (decimal rows only:
it cannot read DMS) → `geopandas.sjoin` with the townships. Peak RSS is the child's own
``ru_maxrss`` from `os.wait4` (not the maximum over all children). The 1M-row file (~95 MiB)
is over the limit, which the run raises with ``RISKMAP_UPLOAD_MAX_MB``.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import gen
from bench.timing import fmt_s, print_table, ratio

if TYPE_CHECKING:
    from riskmap.settings import Settings

BARE = """
import sys
import pandas as pd, geopandas as gpd
from riskmap import io
from riskmap.settings import Settings
t = pd.read_csv(sys.argv[1], dtype=str, encoding="utf-8-sig", keep_default_na=False)
lon = pd.to_numeric(t["经度"], errors="coerce")
lat = pd.to_numeric(t["纬度"], errors="coerce")
pts = gpd.GeoDataFrame(t, geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326")
towns = io.read_townships(Settings())
out = gpd.sjoin(pts, towns[["adcode", "geometry"]], how="left", predicate="within")
print(len(out))
"""


def _run(argv: list[str], upload_max_mb: float = 20) -> tuple[float, float, float]:
    """
    Run `argv` to completion.

    Returns
    -------
    wall, cpu, peak
        Wall seconds, the child's CPU seconds (user + system: robust on a shared, loaded
        machine) and its peak RSS in MiB.
    """
    env = {
        **os.environ,
        "PYTHONDONTWRITEBYTECODE": "1",
        "RISKMAP_UPLOAD_MAX_MB": str(upload_max_mb),
    }
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
    proc.stderr.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 3):  # 3: nothing could be written (not an error here)
        msg = f"{argv[:4]} exited {proc.returncode}: {err[-2000:]}"
        raise RuntimeError(msg)
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def run(sizes: list[int], repeat: int, settings: Settings, work: Path) -> dict[str, Any]:
    """Time the CLI import and the bare script on messy files of each size (median)."""
    results, rows = [], []
    for n in sizes:
        path = work / f"messy_{n}.csv"
        counts = gen.write_messy_survey_csv(n, settings, path)
        report = work / f"report_{n}.json"
        cli = [
            sys.executable, "-c", "from riskmap.cli import main; main()",
            "import", str(path), "--layer", "geohazard", "--dry-run", "--report-json", str(report),
        ]  # fmt: skip
        bare = [sys.executable, "-c", BARE, str(path)]
        rep = max(1, repeat // 2) if n <= 100_000 else 1
        cli_runs, bare_runs = [], []
        for _ in range(rep):  # interleaved: both see the same machine load
            # 1M rows (~95 MiB) is over the upload limit on purpose: raised for this run only
            cli_runs.append(_run(cli, max(20, 2 * counts["bytes"] / 2**20)))
            bare_runs.append(_run(bare))
        res = {
            "n": n,
            "csv_mib": counts["bytes"] / 2**20,
            "under_upload_limit": counts["bytes"] <= gen.UPLOAD_LIMIT_BYTES,
            "bad_rows": counts["bad"],
            "warned_rows": counts["warned"],
            "cli_s": statistics.median(t for t, _, _ in cli_runs),
            "cli_cpu_s": statistics.median(c for _, c, _ in cli_runs),
            "cli_peak_mib": max(m for _, _, m in cli_runs),
            "bare_s": statistics.median(t for t, _, _ in bare_runs),
            "bare_cpu_s": statistics.median(c for _, c, _ in bare_runs),
            "bare_peak_mib": max(m for _, _, m in bare_runs),
        }
        res["ratio"] = res["cli_s"] / res["bare_s"]
        res["cpu_ratio"] = res["cli_cpu_s"] / res["bare_cpu_s"]
        results.append(res)
        rows.append(
            {
                "n": f"{n:,}",
                "CSV MiB": f"{res['csv_mib']:.1f}",
                "riskmap import (process)": fmt_s(res["cli_s"]),
                "bare read_csv+sjoin (process)": fmt_s(res["bare_s"]),
                "ratio": ratio(res["cli_s"], res["bare_s"]),
                "CPU import / bare": (
                    f"{res['cli_cpu_s']:.1f} / {res['bare_cpu_s']:.1f} s "
                    f"({ratio(res['cli_cpu_s'], res['bare_cpu_s'])}×)"
                ),
                "peak RSS import / bare": (
                    f"{res['cli_peak_mib']:.0f} / {res['bare_peak_mib']:.0f} MiB"
                ),
            }
        )
        path.unlink()
        report.unlink(missing_ok=True)
    print_table("8. messy survey import, whole CLI process vs bare script (median)", rows)
    return {"sizes": results}
