"""Case 2: import of a 100k-row survey CSV end to end (read, parse, convert, validate, join)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

import geopandas as gpd

import riskmap
from bench import gen
from bench.timing import fmt_s, median_s, print_table
from riskmap import io
from riskmap.layers import prepare_layer
from riskmap.schema import layer_problems

if TYPE_CHECKING:
    from riskmap.settings import Settings


def standin_import(path: Path, settings: Settings) -> tuple[int, int]:
    """
    The import pipeline from library parts (until `riskmap.importers` lands).

    Read the CSV as text, build points from ``lon``/``lat`` (EPSG:4326), coerce + derive +
    join (`prepare_layer`), list every problem (`layer_problems`).

    Returns
    -------
    rows, problems
    """
    table = pd.read_csv(path, dtype=str, encoding="utf-8-sig", keep_default_na=False)
    lon = pd.to_numeric(table.pop("lon"), errors="coerce")
    lat = pd.to_numeric(table.pop("lat"), errors="coerce")
    gdf = gpd.GeoDataFrame(table, geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326")
    catalog = io.read_catalog(settings)
    spec = catalog.get("geohazard")
    layer = prepare_layer(gdf, spec, io.read_townships(settings), metric_crs=settings.metric_crs)
    return len(layer.gdf), len(layer_problems(layer.gdf, spec))


def plan_100k(path: Path, settings: Settings) -> tuple[int, int]:
    """The real importer: `riskmap.importers.plan_import` on the file's bytes (no write)."""
    from riskmap.importers import plan_import  # noqa: PLC0415

    spec = io.read_catalog(settings).get("geohazard")
    plan = plan_import(
        path.read_bytes(),
        path.name,
        spec,
        existing=io.empty_layer(spec),
        gdf_townships=io.read_townships(settings),
        gdf_county=io.read_county(settings),
        metric_crs=settings.metric_crs,
    )
    if plan.report.file_error:
        raise RuntimeError(plan.report.file_error)
    return plan.counts["added"] + plan.counts["updated"], plan.counts["rejected"]


def run(sizes: list[int], repeat: int, settings: Settings, work: Path) -> dict[str, Any]:
    """Time the import of seeded survey CSVs of each size."""
    has_importer = (Path(riskmap.__file__).parent / "importers.py").exists()
    if not has_importer:
        print("(riskmap.importers missing: case 2 times only the stand-in pipeline)")
    results, rows = [], []
    for n in sizes:
        path = gen.write_survey_csv(gen.geohazard_layer(n, settings), work / f"survey_{n}.csv")
        rep = max(1, repeat // 2)
        t, (n_rows, n_problems) = median_s(
            lambda: standin_import(path, settings),  # noqa: B023
            repeat=rep,
        )
        res = {"n": n, "csv_mb": round(path.stat().st_size / 1e6, 1), "standin_s": t}
        res["rows"], res["problems"] = n_rows, n_problems
        if has_importer:
            t_plan, (ok, rejected) = median_s(lambda: plan_100k(path, settings), repeat=rep)  # noqa: B023
            res.update({"plan_import_s": t_plan, "plan_ok": ok, "plan_rejected": rejected})
        results.append(res)
        rows.append(
            {
                "n": f"{n:,}",
                "CSV MB": res["csv_mb"],
                "plan_import": fmt_s(res.get("plan_import_s")),
                "rejected": res.get("plan_rejected"),
                "stand-in": fmt_s(t),
                "problems": n_problems,
            }
        )
        path.unlink()
    print_table("2. survey CSV import, end to end (median)", rows)
    return {"sizes": results}
