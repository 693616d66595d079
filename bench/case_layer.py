"""Case 5: layer load of 100k points (GeoJSON vs the derived GeoParquet cache) and prepare."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING, Any

from bench import gen
from bench.timing import fmt_s, median_s, print_table, ratio
from riskmap import io
from riskmap.layers import prepare_layer

if TYPE_CHECKING:
    from pathlib import Path

    from riskmap.settings import Settings


def run(sizes: list[int], repeat: int, settings: Settings, work: Path) -> dict[str, Any]:
    """Time a cold GeoJSON read, a cache-filling read, a cached read and `prepare_layer`."""
    catalog = io.read_catalog(settings)
    spec = catalog.get("geohazard")
    gdf_towns = io.read_townships(settings)
    results, rows = [], []
    for n in sizes:
        path = gen.write_geojson(gen.geohazard_layer(n, settings), work / f"layer_{n}.geojson")
        cache_dir = work / f"cache_{n}"
        rep = max(1, repeat // 2)
        t_geojson, _ = median_s(lambda: io.read_layer_file(path), repeat=rep, warmup=0)  # noqa: B023

        def fill(path: Path = path, cache_dir: Path = cache_dir) -> None:
            shutil.rmtree(cache_dir, ignore_errors=True)
            io.read_layer_file(path, cache_dir=cache_dir)

        t_fill, _ = median_s(fill, repeat=1, warmup=0)
        t_cached, gdf = median_s(
            lambda: io.read_layer_file(path, cache_dir=cache_dir),  # noqa: B023
            repeat=repeat,
        )
        t_prepare, _ = median_s(
            lambda: prepare_layer(gdf, spec, gdf_towns, metric_crs=settings.metric_crs),  # noqa: B023
            repeat=repeat,
        )
        res = {
            "n": n,
            "geojson_mb": round(path.stat().st_size / 1e6, 1),
            "parquet_mb": round(sum(p.stat().st_size for p in cache_dir.glob("*")) / 1e6, 1),
            "geojson_read_s": t_geojson,
            "cache_fill_s": t_fill,
            "cached_read_s": t_cached,
            "geojson_over_cached": ratio(t_geojson, t_cached),
            "prepare_layer_s": t_prepare,
            "load_total_s": t_cached + t_prepare,
        }
        results.append(res)
        rows.append(
            {
                "n": f"{n:,}",
                "GeoJSON MB": res["geojson_mb"],
                "Parquet MB": res["parquet_mb"],
                "GeoJSON read": fmt_s(t_geojson),
                "1st read+cache": fmt_s(t_fill),
                "cached read": fmt_s(t_cached),
                "ratio": res["geojson_over_cached"],
                "prepare_layer": fmt_s(t_prepare),
                "read+prepare": fmt_s(res["load_total_s"]),
            }
        )
        path.unlink()
        shutil.rmtree(cache_dir, ignore_errors=True)
    print_table("5. layer load (median; ratio = GeoJSON read / cached read)", rows)
    return {"sizes": results}
