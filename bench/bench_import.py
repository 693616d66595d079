"""Benchmark: plan the import of a seeded random CSV (default 100,000 rows) and time each stage.

Usage (from the checkout): ``PYTHONPATH=. python bench/bench_import.py [N_ROWS]``.
The CSV (UTF-8, Chinese headers, mixed
decimal/DMS coordinates, 1 % bad rows) is written to a temporary directory and deleted.
Township boxes and the county polygon are built in code (the real boundaries are not needed
to measure speed).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd

import geopandas as gpd
import shapely
from shapely.geometry import box

from riskmap.catalog import catalog_from_dict
from riskmap.coords import to_wgs84
from riskmap.importers import guess_mapping, known_header, plan_import
from riskmap.io import empty_layer
from riskmap.readers import read_table

ROOT = Path(__file__).resolve().parent.parent


def make_csv(path: Path, n: int, seed: int = 20260) -> None:
    rng = np.random.default_rng(seed)
    lon = rng.uniform(108.41, 108.99, n)
    lat = rng.uniform(31.71, 32.19, n)
    lon_txt = np.char.mod("%.6f", lon).astype(object)
    dms = rng.random(n) < 0.05  # 5 % in DMS: exercises the per-cell slow path
    for i in np.flatnonzero(dms):
        d = int(lon[i])
        m = int((lon[i] - d) * 60)
        s = (lon[i] - d - m / 60) * 3600
        lon_txt[i] = f"{d}°{m}'{s:.2f}\""
    bad = rng.random(n) < 0.01
    lon_txt[bad] = "无"
    frame = pd.DataFrame(
        {
            "统一编号": [f"G{i:07d}" for i in range(n)],
            "名称": [f"隐患点{i}" for i in range(n)],
            "灾害类型": rng.choice(["滑坡", "崩塌", "泥石流", "不稳定斜坡"], n),
            "威胁户数": rng.integers(0, 50, n),
            "威胁人数": rng.integers(0, 1200, n),
            "威胁财产(万元)": np.round(rng.uniform(0, 800, n), 1),
            "所属乡镇": rng.choice(["葛城街道", "复兴街道", ""], n),
            "经度": lon_txt,
            "纬度": np.char.mod("%.6f", lat),
            "备注": "",
            "调查人员": "张三",
        }
    )
    frame.to_csv(path, index=False, encoding="utf-8")


def townships() -> gpd.GeoDataFrame:
    cells, codes, names = [], [], []
    k = 0
    for i, x in enumerate(np.arange(108.4, 109.0, 0.12)):
        for j, y in enumerate(np.arange(31.7, 32.2, 0.1)):
            k += 1
            cells.append(box(x, y, x + 0.12, y + 0.1))
            codes.append(f"500229{k:03d}")
            names.append(f"乡镇{i}-{j}")
    return gpd.GeoDataFrame(
        {
            "adcode": codes,
            "adcode12": [c + "000" for c in codes],
            "name": names,
            "level": "镇",
            "approximate": True,
            "also_covers": "",
        },
        geometry=cells,
        crs="EPSG:4326",
    )


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    raw = tomllib.loads((ROOT / "layers" / "catalog.toml").read_text(encoding="utf-8"))
    spec = catalog_from_dict(raw).get("geohazard")
    gdf_townships = townships()
    county = gdf_townships.union_all()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.csv"
        t = time.perf_counter()
        make_csv(path, n)
        print(
            f"generate {n:,} rows           {time.perf_counter() - t:6.2f} s "
            f"({path.stat().st_size / 2**20:.1f} MiB)"
        )
        data = path.read_bytes()
    stages: list[tuple[str, float]] = []
    t = time.perf_counter()
    table = read_table(data, "bench.csv", is_known=known_header(spec))
    stages.append(("read (decode+sniff+csv)", time.perf_counter() - t))
    t = time.perf_counter()
    mapping = guess_mapping(table.frame.columns, spec)
    stages.append(("map columns", time.perf_counter() - t))
    t = time.perf_counter()
    res = to_wgs84(table.frame["经度"], table.frame["纬度"])
    stages.append(("parse+convert coords", time.perf_counter() - t))
    t = time.perf_counter()
    ok = np.isfinite(res.lon)
    shapely.intersects_xy(county, res.lon[ok], res.lat[ok])
    stages.append(("county check", time.perf_counter() - t))
    t = time.perf_counter()
    plan = plan_import(
        data,
        "bench.csv",
        spec,
        existing=empty_layer(spec),
        gdf_townships=gdf_townships,
        gdf_county=county,
    )
    stages.append(("plan_import total (all stages + validate + join)", time.perf_counter() - t))
    t = time.perf_counter()
    json.dumps(plan.report.to_json_dict(), allow_nan=False, ensure_ascii=False)
    stages.append(("report JSON", time.perf_counter() - t))
    for name, secs in stages:
        print(f"{name:48s} {secs:6.2f} s")
    print("mapping:", mapping)
    print("counts:", plan.report.counts)


if __name__ == "__main__":
    main()
