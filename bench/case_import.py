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


def run(sizes: list[int], repeat: int, settings: Settings, work: Path) -> dict[str, Any]:
    """Time the import of seeded survey CSVs of each size."""
    has_importer = (Path(riskmap.__file__).parent / "importers.py").exists()
    if has_importer:
        print("(riskmap.importers is present: case 2 still times the stand-in pipeline)")
    results, rows = [], []
    for n in sizes:
        path = gen.write_survey_csv(gen.geohazard_layer(n, settings), work / f"survey_{n}.csv")
        t, (n_rows, n_problems) = median_s(
            lambda: standin_import(path, settings),  # noqa: B023
            repeat=max(1, repeat // 2),
        )
        res = {"n": n, "csv_mb": round(path.stat().st_size / 1e6, 1), "import_s": t}
        res["rows"], res["problems"] = n_rows, n_problems
        results.append(res)
        rows.append(
            {"n": f"{n:,}", "CSV MB": res["csv_mb"], "import": fmt_s(t), "problems": n_problems}
        )
        path.unlink()
    print_table("2. survey CSV import, end to end (stand-in pipeline, median)", rows)
    return {"pipeline": "standin", "sizes": results}
