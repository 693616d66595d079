"""``python -m bench [--quick] [--json] [--only CASES]``: riskmap's performance, with ratios.

Every case runs riskmap and its alternatives in the same process on the same seeded data and
prints medians of several runs. With ``--json`` the last line of stdout is one JSON object
holding every figure. See ``bench/README.md`` for what each figure measures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import gen

CASES = ("join", "import", "import_cli", "map", "app", "layer", "memory", "cli", "postgis")


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    packages = (
        "geopandas",
        "shapely",
        "pandas",
        "pyarrow",
        "pyogrio",
        "folium",
        "streamlit",
        "duckdb",
        "playwright",
    )
    return {
        "date": dt.date.today().isoformat(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "cpu": cpu,
        **{p: _version(p) for p in packages},
    }


def main(argv: list[str] | None = None) -> int:  # noqa: PLR0915 - one block per case
    """Run the benchmark; return the exit code."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats (< 1 min)")
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    parser.add_argument(
        "--only", default=",".join(CASES), help=f"comma-separated subset of {','.join(CASES)}"
    )
    args = parser.parse_args(argv)
    only = [c.strip() for c in args.only.split(",") if c.strip()]
    if unknown := set(only) - set(CASES):
        parser.error(f"unknown cases {sorted(unknown)}; choose from {CASES}")

    from riskmap.settings import Settings  # noqa: PLC0415

    settings = Settings()
    quick = args.quick
    repeat = 3 if quick else 7
    out: dict[str, Any] = {"machine": _machine(), "quick": quick, "seed": gen.SEED}
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="riskmap-bench-") as tmp:
        work = Path(tmp)
        if "join" in only:
            from bench import case_join  # noqa: PLC0415

            sizes = [1_000, 10_000, 100_000] if quick else [1_000, 10_000, 100_000, 1_000_000]
            out["join"] = case_join.run(sizes, repeat, settings)
        if "import" in only:
            from bench import case_import  # noqa: PLC0415

            sizes = [10_000] if quick else [10_000, 100_000]
            out["import"] = case_import.run(sizes, repeat, settings, work)
        if "import_cli" in only:
            from bench import case_import_cli  # noqa: PLC0415

            sizes = [10_000] if quick else [10_000, 100_000, 1_000_000]
            out["import_cli"] = case_import_cli.run(sizes, repeat, settings, work)
        if "map" in only:
            from bench import case_map  # noqa: PLC0415

            sizes = [10_000] if quick else [10_000, 100_000, 1_000_000]
            out["map"] = case_map.run(sizes, repeat, settings, work)
        if "app" in only:
            from bench import case_app  # noqa: PLC0415

            out["app"] = case_app.run(10_000 if quick else 100_000, repeat, settings, work)
        if "layer" in only:
            from bench import case_layer  # noqa: PLC0415

            sizes = [10_000] if quick else [10_000, 100_000]
            out["layer"] = case_layer.run(sizes, repeat, settings, work)
        if "postgis" in only:
            from bench import case_postgis  # noqa: PLC0415

            read_n, join_m = (10_000, 100_000) if quick else (100_000, 1_000_000)
            out["postgis"] = case_postgis.run(read_n, join_m, repeat, settings, work)
    if "memory" in only:
        from bench import case_memory  # noqa: PLC0415

        out["memory"] = case_memory.run([100_000] if quick else [10_000, 100_000, 1_000_000])
    if "cli" in only:
        from bench import case_cli  # noqa: PLC0415

        out["cli"] = case_cli.run(3 if quick else 7)
    out["total_s"] = round(time.perf_counter() - t_start, 1)
    print(f"\n(total {out['total_s']} s)")
    if args.json:
        sys.stdout.flush()
        print(gen.json_dumps(_rounded(out)))
    return 0


def _rounded(obj: Any) -> Any:  # noqa: ANN401 - JSON tree
    if isinstance(obj, float):
        return round(obj, 5)
    if isinstance(obj, dict):
        return {k: _rounded(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_rounded(v) for v in obj]
    return obj


if __name__ == "__main__":
    sys.exit(main())
