"""PostGIS-only behaviour: ``riskmap db`` commands, files ⇄ database, typed views, SQL joins.

The shared store contract (both backends) is in test_store.py. These tests need a real
PostGIS (conftest ``pg_url``: RISKMAP_TEST_DATABASE_URL or a throwaway server).
"""

from __future__ import annotations

import getpass
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from riskmap import io
from riskmap.cli import main
from riskmap.errors import DataFileError
from riskmap.importing.history import history_frame
from riskmap.settings import Settings
from riskmap.store.files import FileStore

ROOT = Path(__file__).resolve().parent.parent
CASES = Path(__file__).resolve().parent / "data" / "cases"
BUNDLED = ("geohazard", "waterlogging", "bridge", "firezone")


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture
def layers_copy(tmp_path):
    layers = tmp_path / "files" / "layers"
    shutil.copytree(ROOT / "layers", layers, ignore=shutil.ignore_patterns(".*"))
    return layers


@pytest.fixture
def db_env(pg_settings, monkeypatch):
    """Environment of a CLI run against the (empty) test database."""
    monkeypatch.setenv("RISKMAP_DATABASE_URL", pg_settings.database_url)
    monkeypatch.delenv("RISKMAP_LAYERS_DIR", raising=False)
    return pg_settings


def _store(settings):
    from riskmap.store.postgis import PostgisStore

    return PostgisStore(settings)


@pytest.mark.usefixtures("db_env")
def test_db_init_is_idempotent(runner):
    for _ in range(2):
        result = runner.invoke(main, ["db", "init"])
        assert result.exit_code == 0, result.output
        assert "schema revision 0001" in result.output


def test_db_commands_need_a_url(runner, monkeypatch):
    monkeypatch.delenv("RISKMAP_DATABASE_URL", raising=False)
    result = runner.invoke(main, ["db", "init"])
    assert result.exit_code == 2
    assert "RISKMAP_DATABASE_URL" in result.output
    assert "Traceback" not in result.output


@pytest.mark.usefixtures("db_env")
def test_load_then_dump_gives_the_input_bytes_and_the_same_summary(
    runner, layers_copy, tmp_path, monkeypatch
):
    result = runner.invoke(main, ["db", "load-files", "--from", str(layers_copy)])
    assert result.exit_code == 0, result.output
    n_layers = len(io.read_catalog(Settings.from_env({}, layers_dir=layers_copy)))
    assert f"已载入 {n_layers} 个图层" in result.output
    # the bundled layers have no history: one 载入 entry each, by the account that ran it
    from riskmap.store.postgis import PostgisStore

    db = PostgisStore(Settings.from_env())
    loaded = db.history(db.read_catalog().get("geohazard"))
    assert [(e["action"], e["user"]) for e in loaded] == [("load", getpass.getuser())]
    assert history_frame(loaded)["操作"].tolist() == ["载入数据库"]
    out = tmp_path / "dump"
    result = runner.invoke(main, ["db", "dump-files", "--to", str(out)])
    assert result.exit_code == 0, result.output
    for lid in BUNDLED:
        name = f"{lid}.geojson"
        assert (out / name).read_bytes() == (layers_copy / name).read_bytes()
    assert (out / "catalog.toml").read_bytes() == (layers_copy / "catalog.toml").read_bytes()
    again = runner.invoke(main, ["db", "dump-files", "--to", str(out)])
    assert again.exit_code == 2  # refuses to overwrite without --overwrite
    assert "已存在" in again.output

    on_db = runner.invoke(main, ["summary", "--format", "json"])
    assert on_db.exit_code == 0, on_db.output
    monkeypatch.delenv("RISKMAP_DATABASE_URL")
    monkeypatch.setenv("RISKMAP_LAYERS_DIR", str(layers_copy))
    on_files = runner.invoke(main, ["summary", "--format", "json"])
    assert on_files.exit_code == 0, on_files.output
    assert on_db.output == on_files.output
    records = json.loads(on_db.output)["townships"]  # summary JSON: county, flags, townships
    # independent figure: the bundled geohazard file has 60 features, all inside the county
    n_geo = len(io.read_layer_file(layers_copy / "geohazard.geojson"))
    assert sum(r["layers"]["geohazard"]["count"] for r in records) == n_geo == 60


def test_load_files_replays_history_so_undo_carries_on(runner, db_env, tmp_path):
    from tests.test_store import tag_of, version

    files = FileStore(Settings.from_env({}, root=tmp_path / "f", data_dir=ROOT / "data"))
    files.settings.layers_dir.mkdir(parents=True)
    shutil.copy(ROOT / "layers" / "catalog.toml", files.settings.catalog_path)
    spec = files.read_catalog().get("geohazard")
    files.write_layer(version(1, "甲"), spec, user="王", action="create", source="a.csv")
    files.write_layer(version(2, "乙"), spec, user="王", action="import", source="b.csv",
                      counts={"added": 1, "updated": 0, "rejected": 0})
    files.write_layer(version(3, "丙"), spec, user="李", action="import", source="c.csv")
    files.undo(spec, user="审核")  # back to 乙
    files.write_records("warnings", [{"id": "W1"}], user="值班", action="create")
    name = files.write_attachment(b"%PDF-1.4 evidence", suffix="pdf")

    result = runner.invoke(main, ["db", "load-files", "--from", str(files.settings.layers_dir)])
    assert result.exit_code == 0, result.output
    db = _store(db_env)
    keys = ("time", "user", "action", "source", "rows_before", "rows_after")
    assert [[e.get(k) for k in keys] for e in db.history(spec)] == [
        [e.get(k) for k in keys] for e in files.history(spec)
    ]
    assert db.history(spec)[1]["added"] == 1
    assert tag_of(db.read_layer(spec)) == "乙"
    assert db.read_records("warnings") == [{"id": "W1"}]
    assert db.read_attachment(name) == b"%PDF-1.4 evidence"
    # the replayed undo is recognised: the next undo goes back to 甲 on both stores
    db.undo(spec, user="审核")
    files.undo(spec, user="审核")
    assert tag_of(db.read_layer(spec)) == tag_of(files.read_layer(spec)) == "甲"
    # a second load leaves loaded layers alone
    result = runner.invoke(main, ["db", "load-files", "--from", str(files.settings.layers_dir)])
    assert "跳过" in result.output
    assert tag_of(db.read_layer(spec)) == "甲"


def test_cli_import_and_undo_on_the_database(runner, db_env, layers_copy):
    assert runner.invoke(main, ["db", "load-files", "--from", str(layers_copy)]).exit_code == 0
    spec = _store(db_env).read_catalog().get("geohazard")
    checked = runner.invoke(main, ["validate", "geohazard"])  # reads the database too
    assert checked.exit_code == 0, checked.output
    assert "60 个要素" in checked.output
    case = CASES / "c01_gbk.csv"
    args = ["import", str(case), "--layer", "geohazard", "--set", "hazard_type=滑坡",
            "--set", "threat_people=3"]  # fmt: skip
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    names = set(_store(db_env).read_layer(spec)["name"])
    assert "葛城滑坡点" in names
    assert runner.invoke(main, ["undo", "--layer", "geohazard"]).exit_code == 0
    assert "葛城滑坡点" not in set(_store(db_env).read_layer(spec)["name"])
    assert len(_store(db_env).read_layer(spec)) == 60
    assert not (layers_copy / ".history").exists()  # nothing went to the files


def test_typed_views_follow_the_catalog(db_env, layers_copy):
    import sqlalchemy as sa

    from riskmap.store.postgis import load_files

    db = _store(db_env)
    files = FileStore(Settings.from_env({}, layers_dir=layers_copy))
    load_files(db, files, user="t", echo=lambda _line: None)
    gdf = io.read_layer_file(layers_copy / "geohazard.geojson")
    with db.engine.connect() as conn:
        types = dict(conn.execute(sa.text(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'riskmap' AND table_name = 'layer_geohazard'"
        )).all())
        row = conn.execute(sa.text(
            "SELECT count(*), sum(threat_people), sum(threat_property_wan), "
            "count(*) FILTER (WHERE has_station), max(drill_date) FROM riskmap.layer_geohazard"
        )).one()
    assert types["threat_people"] == "bigint"
    assert types["threat_property_wan"] == "double precision"
    assert types["has_station"] == "boolean"
    assert types["drill_date"] == "date"
    assert types["name"] == "text"
    assert types["geom"] == "USER-DEFINED"  # PostGIS geometry
    assert row[0] == len(gdf)
    assert row[1] == int(gdf["threat_people"].sum())
    assert row[2] == pytest.approx(float(gdf["threat_property_wan"].sum()))
    assert row[3] == int(gdf["has_station"].sum())
    assert str(row[4]) == max(gdf["drill_date"].dropna())


def test_sql_township_join_agrees_with_the_grid_join(db_env, layers_copy):
    """ST_Contains over the GiST index gives the township codes riskmap.join gives."""
    import sqlalchemy as sa

    from riskmap.join import FLAG_INSIDE, township_index_xy
    from riskmap.store.postgis import load_files

    db = _store(db_env)
    load_files(db, FileStore(Settings.from_env({}, layers_dir=layers_copy)), user="t",
               echo=lambda _line: None)
    settings = Settings()
    towns = io.read_townships(settings)
    with db.engine.begin() as conn:
        conn.execute(sa.text("CREATE TEMP TABLE towns (adcode text, geom geometry)"))
        conn.execute(
            sa.text("INSERT INTO towns VALUES (:a, ST_GeomFromText(:w, 4326))"),
            [{"a": a, "w": g.wkt} for a, g in zip(towns["adcode"], towns.geometry, strict=True)],
        )
        sql = dict(conn.execute(sa.text(
            "SELECT f.uid, t.adcode FROM riskmap.layer_geohazard f "
            "JOIN towns t ON ST_Contains(t.geom, f.geom)"
        )).all())
    gdf = io.read_layer_file(layers_copy / "geohazard.geojson")
    index, flag = township_index_xy(gdf.geometry.x.to_numpy(), gdf.geometry.y.to_numpy(), towns)
    codes = towns["adcode"].astype(str).to_numpy()
    expected = {u: codes[i] for u, i, f in zip(gdf["uid"], index, flag, strict=True)
                if f == FLAG_INSIDE}
    assert len(expected) == len(gdf) == 60  # every bundled point strictly inside a township
    assert sql == expected


def test_unreachable_or_uninitialised_database_is_a_clear_error(pg_url, tmp_path):
    import sqlalchemy as sa

    from riskmap.store.postgis import PostgisStore, engine_for

    url = "postgresql://nobody@/x?host=/nonexistent&port=1"
    bad = Settings.from_env({}, root=tmp_path, database_url=url)
    with pytest.raises(DataFileError, match="无法连接数据库"):
        PostgisStore(bad).read_records("warnings")
    with pytest.raises(DataFileError, match="postgresql://"):
        PostgisStore(Settings.from_env({}, root=tmp_path, database_url="mysql://x"))
    with engine_for(pg_url).connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("DROP DATABASE IF EXISTS riskmap_blank"))
        conn.execute(sa.text("CREATE DATABASE riskmap_blank"))
    blank_url = pg_url.replace("/riskmap?", "/riskmap_blank?")
    blank = PostgisStore(Settings.from_env({}, root=tmp_path, database_url=blank_url))
    with pytest.raises(DataFileError, match="riskmap db init"):
        blank.records_version("warnings")
    # `riskmap db init` on a blank database: the migration creates PostGIS and the schema
    runner = CliRunner()
    result = runner.invoke(main, ["db", "init", "--url", blank_url])
    assert result.exit_code == 0, result.output
    assert "schema revision 0001" in result.output
    assert blank.records_version("warnings") == ""
    blank.write_records("warnings", [{"id": "W1"}], user="t", action="create")
    assert blank.read_records("warnings") == [{"id": "W1"}]
    engine_for(blank_url).dispose()
    with engine_for(pg_url).connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("DROP DATABASE riskmap_blank"))


def test_frame_dtypes_survive_nulls_and_mixed_columns(db_env):
    """Columns the reader types from their content (all-null, int with nulls) come back alike."""
    import geopandas as gpd
    from shapely.geometry import Point

    db = _store(db_env)
    spec = db.read_catalog().get("geohazard")
    gdf = gpd.GeoDataFrame(
        {
            "uid": ["A", "B", "C"],
            "name": ["甲", None, "丙"],
            "threat_people": [1, None, 3],
            "volume_m3": [1.5, 2.0, None],
            "has_station": [True, False, None],
            "note": [None, None, None],
            "drill_date": pd.to_datetime(["2026-01-02", None, "2026-03-04"]),
        },
        geometry=[Point(108.6, 31.9), None, Point(108.7, 31.95)],
        crs="EPSG:4326",
    )
    db.write_layer(gdf, spec, user="t", action="import")
    files = FileStore(Settings.from_env({}, root=db_env.root, data_dir=ROOT / "data"))
    files.write_layer(gdf, spec, user="t", action="import")
    pd.testing.assert_frame_equal(db.read_layer(spec), files.read_layer(spec))
