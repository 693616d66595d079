"""Build riskmap's bundled reference data in ``data/`` from the sources in ``data/sources/``.

Run from the project root::

    python scripts/build_reference.py            # uses data/sources/ (a clean clone works)
    python scripts/build_reference.py --refresh  # first re-copy sources from ../shared/data

Outputs (all deterministic, so re-running gives byte-identical files):

- ``data/county.geojson``: county outline, GCJ-02 -> WGS84 with ``prcoords.gcj_wgs_bored``.
- ``data/townships.csv``: 25 township codes (9 and 12 digits, as text), names, levels and
  WGS84 seat points (blank for 复兴街道, which has no seat point).
- ``data/villages.csv``: 204 village-level codes (byte copy of the source).
- ``data/townships_approx.geojson``: approximate (示意) township partition: Voronoi cells
  around the 24 seats, computed in EPSG:4545 and clipped to the county outline.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path

import numpy as np
import prcoords

import shapely
from pyproj import Transformer
from shapely.geometry import mapping, shape

from riskmap.io import write_bytes_atomic, write_text_atomic

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
SOURCES = DATA / "sources"
SHARED = ROOT.parent.parent / "shared" / "data"  # /work/shared/data beside the worktrees

SRC_OUTLINE = "chengkou_county_gcj02.geojson"
SRC_TOWNSHIPS = "chengkou_townships_2023.csv"
SRC_SEATS = "chengkou_township_seats_geonames.csv"
SRC_VILLAGES = "chengkou_villages_2023.csv"

COUNTY_ADCODE = "500229"
COUNTY_NAME = "城口县"
METRIC_CRS = "EPSG:4545"  # CGCS2000 3-degree Gauss-Krüger, central meridian 108°E
FUXING = "500229002"  # 复兴街道: no seat point
GECHENG = "500229001"  # 葛城街道: its cell also covers 复兴街道
GECHENG_NOTE = "含复兴街道（无驻地点位，示意边界无法区分）"
APPROX_NOTE = "示意边界：按乡镇驻地（GeoNames）泰森多边形（EPSG:4545）裁剪至县界生成，非官方乡镇界"


def _copy_sources(shared: Path) -> None:
    """Copy the four source files from `shared` into ``data/sources/``."""
    SOURCES.mkdir(parents=True, exist_ok=True)
    for name in (SRC_OUTLINE, SRC_TOWNSHIPS, SRC_SEATS, SRC_VILLAGES):
        write_bytes_atomic(SOURCES / name, (shared / name).read_bytes())


def _gcj_to_wgs(coords: list) -> list:
    """Convert a nested GeoJSON coordinate list from GCJ-02 to WGS84 (lon, lat) degrees."""
    if isinstance(coords[0], (int, float)):
        wgs = prcoords.gcj_wgs_bored(prcoords.Coords(coords[1], coords[0]))
        return [wgs.lon, wgs.lat]
    return [_gcj_to_wgs(c) for c in coords]


def _write_geojson(path: Path, features: list[dict]) -> None:
    """Write an RFC 7946 FeatureCollection (no ``crs`` member, UTF-8, full precision)."""
    fc = {"type": "FeatureCollection", "features": features}
    write_text_atomic(path, json.dumps(fc, ensure_ascii=False) + "\n")


def build_county() -> shapely.MultiPolygon:
    """Write ``data/county.geojson`` and return the WGS84 outline."""
    src = json.loads((SOURCES / SRC_OUTLINE).read_text(encoding="utf-8"))
    geom = {"type": src["type"], "coordinates": _gcj_to_wgs(src["coordinates"])}
    county = shape(geom)
    if not county.is_valid:
        county = shapely.make_valid(county)
    props = {
        "adcode": COUNTY_ADCODE,
        "name": COUNTY_NAME,
        "source": (
            "cnmaps==1.1.9 administrative/amap/land/500229.geojson; geometry from "
            "AutoNavi (高德) / DataV"
        ),
        "crs_note": (
            "WGS84 (EPSG:4326). Converted from GCJ-02 with prcoords.gcj_wgs_bored "
            "(iterative inverse, < 1 m); source generalisation error is larger"
        ),
    }
    _write_geojson(
        DATA / "county.geojson",
        [{"type": "Feature", "properties": props, "geometry": mapping(county)}],
    )
    return county


def _level(name: str) -> str:
    for suffix in ("街道", "镇", "乡"):
        if name.endswith(suffix):
            return suffix
    msg = f"cannot tell the level of township {name!r}"
    raise ValueError(msg)


def build_townships() -> list[dict[str, str]]:
    """Write ``data/townships.csv`` and ``data/villages.csv``; return the township rows."""
    with (SOURCES / SRC_TOWNSHIPS).open(encoding="utf-8", newline="") as f:
        codes = list(csv.DictReader(f))
    with (SOURCES / SRC_SEATS).open(encoding="utf-8", newline="") as f:
        seats = {r["code9"]: r for r in csv.DictReader(f)}
    rows = []
    for r in sorted(codes, key=lambda r: r["code"]):
        code9 = r["code"].strip()
        seat = seats[code9]
        level = _level(r["name"])
        if seat["level"] != level or seat["name"] != r["name"]:
            msg = f"seat table disagrees with code table for {code9}"
            raise ValueError(msg)
        rows.append(
            {
                "adcode": code9,
                "adcode12": code9 + "000",
                "name": r["name"],
                "level": level,
                "seat_lon": seat["lon_wgs84"],
                "seat_lat": seat["lat_wgs84"],
            }
        )
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(DATA / "townships.csv", buf.getvalue())
    write_bytes_atomic(DATA / "villages.csv", (SOURCES / SRC_VILLAGES).read_bytes())
    return rows


def build_partition(county: shapely.MultiPolygon, rows: list[dict[str, str]]) -> None:
    """Write ``data/townships_approx.geojson``: seat Voronoi cells clipped to `county`."""
    located = [r for r in rows if r["seat_lon"]]
    lon = np.array([float(r["seat_lon"]) for r in located])
    lat = np.array([float(r["seat_lat"]) for r in located])
    to_metric = Transformer.from_crs("EPSG:4326", METRIC_CRS, always_xy=True)
    to_wgs = Transformer.from_crs(METRIC_CRS, "EPSG:4326", always_xy=True)
    east, north = to_metric.transform(lon, lat)
    seats_m = shapely.multipoints(np.column_stack([east, north]))
    county_m = shapely.transform(county, lambda xy: np.column_stack(to_metric.transform(*xy.T)))
    extent = shapely.box(*county_m.bounds).buffer(20_000.0, join_style="mitre")
    cells_m = shapely.voronoi_polygons(seats_m, extend_to=extent, ordered=True)
    # Cell vertices are transformed back to degrees; edges stay straight in degrees, which
    # departs from the metric bisector by far less than the partition's own uncertainty.
    cells = [
        shapely.transform(c, lambda xy: np.column_stack(to_wgs.transform(*xy.T)))
        for c in cells_m.geoms
    ]
    # Node the cell edges with the county outline once and polygonize, so neighbouring
    # townships share bit-identical edges: an exact tiling, no slivers.
    lines = shapely.union_all([county.boundary, *(c.boundary for c in cells)])
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(lines)))
    reps = shapely.point_on_surface(faces)
    faces = faces[shapely.contains(county, reps)]
    reps = reps[shapely.contains(county, reps)]
    features = []
    for i, r in enumerate(located):
        seat = shapely.Point(lon[i], lat[i])
        if not cells[i].contains(seat):
            msg = f"Voronoi cell {i} does not contain the seat of {r['name']}"
            raise RuntimeError(msg)
        polys = list(faces[shapely.contains(cells[i], reps)])
        geom = shapely.union_all(polys) if len(polys) > 1 else polys[0]
        if geom.geom_type not in {"Polygon", "MultiPolygon"}:
            msg = f"cell of {r['name']} is not polygonal"
            raise RuntimeError(msg)
        also = FUXING if r["adcode"] == GECHENG else ""
        note = APPROX_NOTE + ("；" + GECHENG_NOTE if also else "")
        features.append(
            {
                "type": "Feature",
                "properties": {
                    "adcode": r["adcode"],
                    "adcode12": r["adcode12"],
                    "name": r["name"],
                    "level": r["level"],
                    "approximate": True,
                    "also_covers": also,
                    "note": note,
                },
                "geometry": mapping(geom),
            }
        )
    _write_geojson(DATA / "townships_approx.geojson", features)


def main() -> None:
    """Parse arguments and build every output."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--refresh",
        action="store_true",
        help=f"re-copy the sources from {SHARED} into data/sources/ first",
    )
    args = parser.parse_args()
    if args.refresh or not (SOURCES / SRC_OUTLINE).exists():
        _copy_sources(SHARED)
    county = build_county()
    rows = build_townships()
    build_partition(county, rows)
    print(f"wrote county.geojson, townships.csv, villages.csv, townships_approx.geojson in {DATA}")


if __name__ == "__main__":
    main()
