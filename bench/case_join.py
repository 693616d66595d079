"""Case 1: point → township join, riskmap vs geopandas.sjoin vs DuckDB spatial vs a loop."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

import geopandas as gpd
import shapely

from bench import gen
from bench.timing import fmt_s, median_s, print_table, ratio
from riskmap import join
from riskmap.settings import Settings


def expected_codes(gdf_points: gpd.GeoDataFrame, gdf_townships: gpd.GeoDataFrame) -> np.ndarray:
    """
    Reference answer from geopandas alone: ``sjoin(predicate="within")``; points it leaves
    unmatched take the lowest ``adcode`` among the townships they ``intersect`` (border rule).

    Returns
    -------
    codes
        Object array ``(n,)``: 9-digit code or None.
    """
    cols = gdf_townships[["adcode", "geometry"]]
    within = gpd.sjoin(gdf_points, cols, how="left", predicate="within")
    if not within.index.is_unique:
        msg = "townships overlap: `within` matched a point twice"
        raise AssertionError(msg)
    codes = within["adcode"].reindex(gdf_points.index).to_numpy(dtype=object, na_value=None)
    open_ = np.flatnonzero(pd.isna(codes))
    if open_.size:
        touch = gpd.sjoin(gdf_points.iloc[open_], cols, how="inner", predicate="intersects")
        lowest = touch.groupby(level=0)["adcode"].min()
        codes[open_] = lowest.reindex(gdf_points.index[open_]).to_numpy(dtype=object, na_value=None)
    return codes


def sjoin_within(gdf_points: gpd.GeoDataFrame, cols: gpd.GeoDataFrame) -> pd.Series:
    """The timed geopandas alternative: one ``sjoin(predicate="within")``, codes per point."""
    return gpd.sjoin(gdf_points, cols, how="left", predicate="within")["adcode"]


def sjoin_frame(
    gdf_points: gpd.GeoDataFrame, gdf_townships: gpd.GeoDataFrame, *, predicate: str
) -> gpd.GeoDataFrame:
    """
    Like for like with `join.join_points_township`: frame in, frame out, same answer.

    ``sjoin(predicate=...)`` on the township polygons; a point matched twice (``intersects``
    on a shared border) or unmatched by ``within`` on a border takes the lowest code among the
    townships it intersects (riskmap's border rule); the output is a copy of the points with
    ``township`` and ``township_code`` columns, one row per input point.
    """
    cols = gdf_townships[["adcode", "name", "geometry"]]
    hits = gpd.sjoin(gdf_points[["geometry"]], cols, how="left", predicate=predicate)
    codes = hits.groupby(level=0, sort=False)["adcode"].min()
    codes = codes.reindex(gdf_points.index).to_numpy(dtype=object, na_value=None)
    if predicate == "within":
        open_ = np.flatnonzero(pd.isna(codes))
        if open_.size:
            touch = gpd.sjoin(
                gdf_points.iloc[open_][["geometry"]], cols, how="inner", predicate="intersects"
            )
            lowest = touch.groupby(level=0)["adcode"].min()
            codes[open_] = lowest.reindex(gdf_points.index[open_]).to_numpy(
                dtype=object, na_value=None
            )
    names = dict(zip(gdf_townships["adcode"], gdf_townships["name"], strict=True))
    out = gdf_points.copy()
    out["township_code"] = codes
    out["township"] = [names.get(c) for c in codes]
    return out


def cold_core(lon: np.ndarray, lat: np.ndarray, gdf_townships: gpd.GeoDataFrame) -> np.ndarray:
    """`riskmap_codes` with the township grid cache cleared first: what a fresh CLI run pays."""
    join._grid_from_wkb.cache_clear()  # noqa: SLF001 - the bench measures the one-time cost
    return riskmap_codes(lon, lat, gdf_townships)


def riskmap_codes(lon: np.ndarray, lat: np.ndarray, gdf_townships: gpd.GeoDataFrame) -> np.ndarray:
    """riskmap's core join on coordinate arrays, as codes (object array, None outside)."""
    index, _ = join.township_index_xy(lon, lat, gdf_townships)
    codes = gdf_townships["adcode"].to_numpy(dtype=object)
    return np.where(index >= 0, codes[np.maximum(index, 0)], None)


def naive_loop(lon: np.ndarray, lat: np.ndarray, gdf_townships: gpd.GeoDataFrame) -> np.ndarray:
    """One shapely predicate call per point and township (what a first attempt looks like).

    The polygons are fresh copies: an earlier `sjoin` prepares the frame's own geometry
    objects in place, which would quietly speed this loop up.
    """
    polys = list(shapely.from_wkb(shapely.to_wkb(gdf_townships.geometry.to_numpy())))
    codes = list(gdf_townships["adcode"])
    order = np.argsort(codes, kind="stable")
    out = np.full(len(lon), None, dtype=object)
    for k, (x, y) in enumerate(zip(lon.tolist(), lat.tolist(), strict=True)):
        pt = shapely.Point(x, y)
        for poly, code in zip(polys, codes, strict=True):
            if poly.contains(pt):
                out[k] = code
                break
        else:
            for i in order:
                if polys[i].intersects(pt):
                    out[k] = codes[i]
                    break
    return out


class DuckJoin:
    """DuckDB spatial: the same answer (``ST_Within``, then the border rule) in SQL."""

    def __init__(self, gdf_townships: gpd.GeoDataFrame) -> None:
        import duckdb  # noqa: PLC0415 - optional bench dependency
        from duckdb_extensions import import_extension  # noqa: PLC0415

        import_extension("spatial")  # installs the wheel's extension file; no download
        self.con = duckdb.connect()
        self.con.execute("LOAD spatial")
        towns = pd.DataFrame(
            {
                "adcode": gdf_townships["adcode"].astype(str).to_numpy(),
                "wkb": shapely.to_wkb(gdf_townships.geometry.to_numpy()),
            }
        )
        self.con.register("towns_df", towns)
        self.con.execute(
            "CREATE TABLE towns AS SELECT adcode, ST_GeomFromWKB(wkb) AS geom FROM towns_df"
        )
        self.version = duckdb.__version__

    def codes(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Codes per point (object array, None outside), same order as the input."""
        pts = pd.DataFrame({"id": np.arange(len(lon)), "lon": lon, "lat": lat})
        self.con.register("pts_df", pts)
        rows = self.con.execute(
            """
            WITH p AS (SELECT id, ST_Point(lon, lat) AS g FROM pts_df),
            inside AS (
                SELECT p.id, t.adcode FROM p JOIN towns t ON ST_Within(p.g, t.geom)
            ),
            rest AS (SELECT * FROM p ANTI JOIN inside USING (id)),
            border AS (
                SELECT rest.id, min(t.adcode) AS adcode
                FROM rest JOIN towns t ON ST_Intersects(rest.g, t.geom) GROUP BY rest.id
            )
            SELECT id, adcode FROM inside UNION ALL SELECT id, adcode FROM border
            """
        ).fetchnumpy()
        self.con.unregister("pts_df")
        out = np.full(len(lon), None, dtype=object)
        out[rows["id"]] = rows["adcode"]
        return out


def border_points(gdf_townships: gpd.GeoDataFrame, *, seed: int = gen.SEED) -> np.ndarray:
    """Partition vertices plus points interpolated along township borders, ``(m, 2)``."""
    geoms = gdf_townships.geometry.to_numpy()
    verts = np.unique(shapely.get_coordinates(geoms), axis=0)
    rng = np.random.default_rng(seed)
    rings = shapely.get_exterior_ring(shapely.get_parts(geoms))
    along = shapely.line_interpolate_point(
        rings[rng.integers(0, len(rings), 2000)], rng.uniform(0, 1, 2000), normalized=True
    )
    return np.vstack([verts, shapely.get_coordinates(along)])


def run(sizes: list[int], repeat: int, settings: Settings) -> dict[str, Any]:
    """Time every method at every size; check their answers against `expected_codes`."""
    from riskmap import io  # noqa: PLC0415

    gdf_towns = io.read_townships(settings)
    cols = gdf_towns[["adcode", "geometry"]]
    county = gen.county_polygon(settings)
    try:
        duck: DuckJoin | None = DuckJoin(gdf_towns)
    except ImportError as exc:
        print(f"(DuckDB spatial not available: {exc}; pip install -e '.[bench]')")
        duck = None

    # Agreement on the hard points first: vertices and borders.
    edge = border_points(gdf_towns)
    gdf_edge = gen.points_frame(edge[:, 0], edge[:, 1])
    want = expected_codes(gdf_edge, gdf_towns)
    agree_border = {
        "riskmap": bool((riskmap_codes(edge[:, 0], edge[:, 1], gdf_towns) == want).all()),
        "join_points_township": bool(
            (
                join.join_points_township(gdf_edge, gdf_towns)["township_code"].to_numpy(
                    dtype=object, na_value=None
                )
                == want
            ).all()
        ),
        "naive_loop": bool((naive_loop(edge[:, 0], edge[:, 1], gdf_towns) == want).all()),
    }
    if duck is not None:
        agree_border["duckdb"] = bool((duck.codes(edge[:, 0], edge[:, 1]) == want).all())

    rows, results = [], []
    for n in sizes:
        lon, lat = gen.random_lonlat(n, county)
        gdf_pts = gen.points_frame(lon, lat)
        want = expected_codes(gdf_pts, gdf_towns)
        rep = repeat if n < 1_000_000 else max(3, repeat // 2)
        res: dict[str, Any] = {"n": n}
        t_core, got = median_s(lambda: riskmap_codes(lon, lat, gdf_towns), repeat=rep)  # noqa: B023
        res["riskmap_s"], res["riskmap_agree"] = t_core, bool((got == want).all())
        t_frame, out = median_s(
            lambda: join.join_points_township(gdf_pts, gdf_towns),  # noqa: B023
            repeat=rep,
        )
        res["join_points_township_s"] = t_frame
        res["join_points_township_agree"] = bool(
            (out["township_code"].to_numpy(dtype=object, na_value=None) == want).all()
        )
        t_sj, sj = median_s(lambda: sjoin_within(gdf_pts, cols), repeat=rep)  # noqa: B023
        res["sjoin_s"] = t_sj
        res["sjoin_unmatched"] = int(sj.isna().sum())
        t_cold, got = median_s(lambda: cold_core(lon, lat, gdf_towns), repeat=rep)  # noqa: B023
        res["riskmap_cold_s"], res["riskmap_cold_agree"] = t_cold, bool((got == want).all())
        for pred in ("within", "intersects"):
            t_f, fr = median_s(
                lambda: sjoin_frame(gdf_pts, gdf_towns, predicate=pred),  # noqa: B023
                repeat=rep,
            )
            res[f"sjoin_frame_{pred}_s"] = t_f
            res[f"sjoin_frame_{pred}_agree"] = bool(
                (fr["township_code"].to_numpy(dtype=object, na_value=None) == want).all()
            )
            res[f"sjoin_frame_{pred}_over_join_points_township"] = ratio(t_f, t_frame)
        if duck is not None:
            t_dk, got = median_s(lambda: duck.codes(lon, lat), repeat=rep)  # noqa: B023
            res["duckdb_s"], res["duckdb_agree"] = t_dk, bool((got == want).all())
        if n == 10_000:
            t_loop, got = median_s(lambda: naive_loop(lon, lat, gdf_towns), repeat=1, warmup=0)  # noqa: B023
            res["naive_loop_s"], res["naive_loop_agree"] = t_loop, bool((got == want).all())
        res["sjoin_over_riskmap"] = ratio(t_sj, t_core)
        res["sjoin_over_join_points_township"] = ratio(t_sj, t_frame)
        res["duckdb_over_riskmap"] = ratio(res.get("duckdb_s"), t_core)
        res["loop_over_riskmap"] = ratio(res.get("naive_loop_s"), t_core)
        results.append(res)
        rows.append(
            {
                "n": f"{n:,}",
                "riskmap xy": fmt_s(t_core),
                "xy cold": fmt_s(t_cold),
                "riskmap gdf": fmt_s(t_frame),
                "sjoin": fmt_s(t_sj),
                "sj-gdf within": fmt_s(res["sjoin_frame_within_s"]),
                "sj-gdf intersects": fmt_s(res["sjoin_frame_intersects_s"]),
                "duckdb": fmt_s(res.get("duckdb_s")),
                "loop": fmt_s(res.get("naive_loop_s")),
                "sjoin/xy": res["sjoin_over_riskmap"],
                "sjoin/gdf": res["sjoin_over_join_points_township"],
                "sj-gdf w/gdf": res["sjoin_frame_within_over_join_points_township"],
                "sj-gdf i/gdf": res["sjoin_frame_intersects_over_join_points_township"],
                "duck/xy": res["duckdb_over_riskmap"],
                "agree": all(v for k, v in res.items() if k.endswith("_agree")),
            }
        )
    print_table("1. point -> township join (median s; ratios = alternative / riskmap)", rows)
    print(
        f"   border/vertex points ({len(edge)}), answers equal to sjoin + border rule: "
        f"{agree_border}"
    )
    return {
        "sizes": results,
        "border_points": len(edge),
        "border_agree": agree_border,
        "duckdb_version": getattr(duck, "version", None),
    }
