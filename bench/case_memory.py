"""Case 6: peak memory (``VmHWM`` of a fresh process) for the join and the layer pipeline.

``VmHWM`` (``/proc/self/status``) is the peak resident set of the process's own memory map,
which `execve` resets; ``ru_maxrss`` would carry over the parent's peak at ``fork``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from bench.timing import print_table

_CHILD = """
import json, sys, time
from pathlib import Path
from bench import gen
from riskmap import io
from riskmap.layers import prepare_layer
from riskmap.settings import Settings
def hwm_mb():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
n, what = int(sys.argv[1]), sys.argv[2]
s = Settings()
towns = io.read_townships(s)
base = hwm_mb()
t0 = time.perf_counter()
if what == "join":
    from riskmap.join import township_index_xy
    lon, lat = gen.random_lonlat(n, gen.county_polygon(s))
    township_index_xy(lon, lat, towns)
else:
    gdf = gen.geohazard_layer(n, s)
    prepare_layer(gdf, io.read_catalog(s).get("geohazard"), towns, metric_crs=s.metric_crs)
peak = hwm_mb()
print(json.dumps({"base_mb": base, "peak_mb": peak,
                  "seconds": time.perf_counter() - t0}))
"""


def run(sizes: list[int]) -> dict[str, Any]:
    """Run each measurement in its own interpreter and read its ``VmHWM``."""
    results, rows = [], []
    for n in sizes:
        for what in ("join", "prepare_layer"):
            proc = subprocess.run(  # noqa: PLW1510 - checked below
                [sys.executable, "-c", _CHILD, str(n), what], capture_output=True, text=True
            )
            if proc.returncode:
                print(proc.stderr[-2000:])
                continue
            res = {"n": n, "what": what, **json.loads(proc.stdout.strip().splitlines()[-1])}
            results.append(res)
            rows.append(
                {
                    "n": f"{n:,}",
                    "what": what,
                    "RSS after imports+townships": f"{res['base_mb']:.0f} MB",
                    "peak RSS": f"{res['peak_mb']:.0f} MB",
                    "data gen + run": f"{res['seconds']:.1f} s",
                }
            )
    print_table("6. peak memory (fresh process; peak includes generating the data)", rows)
    return {"sizes": results}
