"""Case 8: the PostGIS store beside the file store: read, import, township join in SQL.

Needs a PostGIS database: ``RISKMAP_BENCH_DATABASE_URL`` (or ``RISKMAP_TEST_DATABASE_URL``);
else a throwaway server is started with Debian's binaries (`scripts/pg_test_server.py`) and
removed at the end. Everything the case writes lives in that database's ``riskmap`` schema
(reset first: use a throwaway database) and in a ``bench`` schema it drops at the end.

Figures (medians, `bench.timing.median_s`):

- **read N**: `PostgisStore.read_layer` (the store's frame: same columns and dtypes as the
  file store) vs `io.read_layer_file` from the GeoParquet cache and from the GeoJSON file;
  and `geopandas.read_postgis` of the typed view ``riskmap.layer_geohazard`` (no dtype
  rebuild) for reference.
- **import N**: `PostgisStore.write_layer` (serialise as the file store would, re-read for
  the dtypes, ``COPY`` into ``features``, audit entry, one transaction) vs `FileStore.write_layer`
  (GeoJSON text, backup, log, atomic replace), on an N-point layer replacing an N-point layer.
- **join M**: township of M random points in the county. ``grid`` = `join.township_index_xy`
  on coordinate arrays (riskmap's join). ``sql`` = ``ST_Contains(t.geom, p.geom)`` join on a
  points table and a townships table, both with GiST indexes, every (id, adcode) row fetched;
  ``sql subdivided`` = the same on ``ST_Subdivide(geom, 64)`` pieces (the usual PostGIS
  speed-up for large polygons). Loading the points (``COPY`` + index + ``ANALYZE``) is timed
  apart. **agree** = the SQL codes equal the grid's for every point the grid puts strictly
  inside a township.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

import geopandas as gpd
import shapely

from bench import gen
from bench.timing import fmt_s, median_s, print_table, ratio
from riskmap import io
from riskmap.join import FLAG_INSIDE, township_index_xy
from riskmap.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def _database(work: Path) -> tuple[str, Any]:
    """Return ``(url, stop)``: a configured database, or a throwaway server and its stopper."""
    url = os.environ.get("RISKMAP_BENCH_DATABASE_URL") or os.environ.get(
        "RISKMAP_TEST_DATABASE_URL", ""
    )
    if url:
        return url, lambda: None
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import pg_test_server  # noqa: PLC0415
    finally:
        sys.path.pop(0)
    del work  # the server's folder must be readable by the postgres user: system temp
    url, folder = pg_test_server.start(None)
    return url, lambda: pg_test_server.stop(folder)


def _reset(url: str) -> None:
    import sqlalchemy as sa  # noqa: PLC0415

    from riskmap.store.postgis import SCHEMA, engine_for, init_db  # noqa: PLC0415

    init_db(url)
    with engine_for(url).begin() as conn:
        for view in conn.execute(sa.text(
            "SELECT table_name FROM information_schema.views WHERE table_schema = :s"
        ), {"s": SCHEMA}).scalars().all():
            conn.execute(sa.text(f'DROP VIEW {SCHEMA}."{view}"'))
        conn.execute(sa.text(
            f"TRUNCATE {SCHEMA}.heads, {SCHEMA}.versions, {SCHEMA}.features, "
            f"{SCHEMA}.history, {SCHEMA}.attachments RESTART IDENTITY CASCADE"
        ))


def _read_import(n: int, repeat: int, settings: Settings, url: str, work: Path) -> dict:
    from riskmap.store.files import FileStore  # noqa: PLC0415
    from riskmap.store.postgis import PostgisStore, engine_for  # noqa: PLC0415

    layers = work / f"pg_layers_{n}"
    layers.mkdir()
    shutil.copy(settings.catalog_path, layers / "catalog.toml")
    fsettings = Settings(layers_dir=layers, history_keep=2)
    files = FileStore(fsettings)
    pg = PostgisStore(Settings(layers_dir=layers, database_url=url, history_keep=2))
    pg.write_catalog(settings.catalog_path.read_text(encoding="utf-8"), user="bench")
    spec = pg.read_catalog().get("geohazard")
    gdf = gen.geohazard_layer(n, settings)
    rep = max(1, repeat // 2)

    t_pg_write, _ = median_s(
        lambda: pg.write_layer(gdf, spec, user="bench", action="import"), repeat=rep, warmup=1
    )
    t_file_write, _ = median_s(
        lambda: files.write_layer(gdf, spec, user="bench", action="import"), repeat=rep, warmup=1
    )
    path = files.layer_path(spec)
    cache = layers / io.CACHE_DIR
    io.read_layer_file(path, cache_dir=cache)  # fill the cache
    t_pg_read, frame = median_s(lambda: pg.read_layer(spec), repeat=repeat)
    t_parquet, cached = median_s(lambda: io.read_layer_file(path, cache_dir=cache), repeat=repeat)
    t_geojson, _ = median_s(lambda: io.read_layer_file(path), repeat=rep, warmup=0)
    engine = engine_for(url)

    def typed_view() -> gpd.GeoDataFrame:
        with engine.connect() as conn:
            return gpd.read_postgis("SELECT * FROM riskmap.layer_geohazard", conn,
                                    geom_col="geom")

    t_view, view = median_s(typed_view, repeat=repeat)
    same = frame.equals(cached) and len(view) == n
    shutil.rmtree(layers, ignore_errors=True)
    return {
        "n": n,
        "postgis_read_s": t_pg_read,
        "parquet_cache_read_s": t_parquet,
        "geojson_read_s": t_geojson,
        "typed_view_read_postgis_s": t_view,
        "postgis_over_parquet": ratio(t_pg_read, t_parquet),
        "postgis_import_s": t_pg_write,
        "files_import_s": t_file_write,
        "postgis_over_files_import": ratio(t_pg_write, t_file_write),
        "same_frame": bool(same),
    }


def _join(m: int, repeat: int, settings: Settings, url: str) -> dict:
    import sqlalchemy as sa  # noqa: PLC0415

    from riskmap.store.postgis import engine_for  # noqa: PLC0415

    towns = io.read_townships(settings)
    lon, lat = gen.random_lonlat(m, gen.county_polygon(settings), seed=gen.SEED + 8)
    t_grid, (index, flag) = median_s(lambda: township_index_xy(lon, lat, towns), repeat=repeat)
    codes = towns["adcode"].astype(str).to_numpy()
    engine = engine_for(url)
    import time  # noqa: PLC0415

    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA IF EXISTS bench CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA bench"))
        conn.execute(sa.text(
            "CREATE TABLE bench.towns (adcode text, geom geometry(MultiPolygon, 4326))"
        ))
        conn.execute(
            sa.text("INSERT INTO bench.towns VALUES (:a, ST_Multi(ST_GeomFromText(:w, 4326)))"),
            [{"a": a, "w": g.wkt} for a, g in zip(codes, towns.geometry, strict=True)],
        )
        conn.execute(sa.text("CREATE INDEX ON bench.towns USING gist (geom)"))
        conn.execute(sa.text(
            "CREATE TABLE bench.towns_sub AS SELECT adcode, ST_Subdivide(geom, 64) AS geom "
            "FROM bench.towns"
        ))
        conn.execute(sa.text("CREATE INDEX ON bench.towns_sub USING gist (geom)"))
        conn.execute(sa.text("CREATE TABLE bench.pts (id integer, geom geometry(Point, 4326))"))
    t0 = time.perf_counter()
    wkb = shapely.to_wkb(shapely.set_srid(shapely.points(lon, lat), 4326), hex=True,
                         include_srid=True)
    with engine.begin() as conn:
        raw = conn.connection.driver_connection
        with raw.cursor() as cur, cur.copy("COPY bench.pts (id, geom) FROM STDIN") as copy:
            for i, g in enumerate(wkb):
                copy.write_row((i, g))
        conn.execute(sa.text("CREATE INDEX ON bench.pts USING gist (geom)"))
        conn.execute(sa.text("ANALYZE bench.pts"))
        conn.execute(sa.text("ANALYZE bench.towns"))
        conn.execute(sa.text("ANALYZE bench.towns_sub"))
    t_load = time.perf_counter() - t0

    def sql_join(table: str) -> dict[int, str]:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(
                f"SELECT p.id, t.adcode FROM bench.{table} t "  # noqa: S608 - fixed names
                "JOIN bench.pts p ON ST_Contains(t.geom, p.geom)"
            )).all()
        return dict(rows)

    rep = max(1, repeat // 2)
    t_sql, got = median_s(lambda: sql_join("towns"), repeat=rep)
    t_sub, got_sub = median_s(lambda: sql_join("towns_sub"), repeat=rep)
    inside = np.flatnonzero(flag == FLAG_INSIDE)
    agree = all(got.get(int(i)) == codes[index[i]] for i in inside) and all(
        got_sub.get(int(i)) == codes[index[i]] for i in inside
    )
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA bench CASCADE"))
    return {
        "m": m,
        "grid_join_s": t_grid,
        "sql_join_s": t_sql,
        "sql_join_subdivided_s": t_sub,
        "sql_over_grid": ratio(t_sql, t_grid),
        "sql_subdivided_over_grid": ratio(t_sub, t_grid),
        "load_points_s": t_load,
        "inside": len(inside),
        "agree": bool(agree),
    }


def run(read_n: int, join_m: int, repeat: int, settings: Settings, work: Path) -> dict[str, Any]:
    """Run the case; return its figures (or ``{"skipped": reason}`` without PostGIS)."""
    try:
        url, stop = _database(work)
    except (RuntimeError, ImportError, OSError) as exc:
        print(f"\n== 8. PostGIS: skipped ({exc})")
        return {"skipped": str(exc)}
    try:
        _reset(url)
        rw = _read_import(read_n, repeat, settings, url, work)
        jn = _join(join_m, repeat, settings, url)
    finally:
        from riskmap.store.postgis import dispose_engines  # noqa: PLC0415

        dispose_engines()
        stop()
    print_table(
        f"8a. PostGIS store, {read_n:,} points (median; ratio = PostGIS / file store)",
        [
            {"what": "read layer", "PostGIS": fmt_s(rw["postgis_read_s"]),
             "GeoParquet cache": fmt_s(rw["parquet_cache_read_s"]),
             "GeoJSON": fmt_s(rw["geojson_read_s"]),
             "typed view (read_postgis)": fmt_s(rw["typed_view_read_postgis_s"]),
             "ratio": rw["postgis_over_parquet"]},
            {"what": "import (write_layer)", "PostGIS": fmt_s(rw["postgis_import_s"]),
             "GeoParquet cache": "-", "GeoJSON": fmt_s(rw["files_import_s"]),
             "typed view (read_postgis)": "-", "ratio": rw["postgis_over_files_import"]},
        ],
    )
    print_table(
        f"8b. township join of {join_m:,} points (median; ratio = SQL / grid)",
        [{"grid (riskmap)": fmt_s(jn["grid_join_s"]), "SQL ST_Contains": fmt_s(jn["sql_join_s"]),
          "SQL subdivided": fmt_s(jn["sql_join_subdivided_s"]), "ratio": jn["sql_over_grid"],
          "ratio subdivided": jn["sql_subdivided_over_grid"],
          "load points (COPY+index)": fmt_s(jn["load_points_s"]), "agree": jn["agree"]}],
    )
    return {"read_import": rw, "join": jn}
