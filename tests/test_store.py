"""The store contract: every `riskmap.store.Store` (files, PostGIS) passes these same tests.

Each test runs once per backend (the parametrised ``store`` fixture in conftest.py). The
PostGIS runs use a real server (`scripts/pg_test_server.py` or RISKMAP_TEST_DATABASE_URL),
never a mock.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest

import geopandas as gpd
from shapely.geometry import Point

from riskmap import io
from riskmap.errors import DataFileError, LockError, StaleVersionError
from riskmap.settings import Settings
from riskmap.store import Store, open_store

ROOT = Path(__file__).resolve().parent.parent


def version(n: int, tag: str) -> gpd.GeoDataFrame:
    """A deterministic geohazard layer of `n` points whose names carry `tag`."""
    return gpd.GeoDataFrame(
        {
            "uid": [f"P{i:06d}" for i in range(n)],
            "name": [f"{tag}滑坡{i}" for i in range(n)],
            "hazard_type": ["滑坡"] * n,
            "threat_people": [i % 50 for i in range(n)],
            "status": ["在册"] * n,
        },
        geometry=[Point(108.6 + i * 1e-6, 31.9 + i * 1e-6) for i in range(n)],
        crs="EPSG:4326",
    )


def tag_of(gdf: gpd.GeoDataFrame) -> str:
    """The tag all names of a `version` frame share."""
    tags = {str(n).split("滑坡")[0] for n in gdf["name"]}
    assert len(tags) == 1, tags
    return tags.pop()


def bundled(spec) -> gpd.GeoDataFrame:
    """The bundled layer file of `spec`, read as the file store reads it."""
    return io.read_layer_file(spec.path(ROOT / "layers"))


def test_protocol_and_kind(store):
    assert isinstance(store, Store)
    assert store.kind in {"files", "postgis"}
    assert store.kind == ("postgis" if store.settings.database_url else "files")


def test_empty_store(store):
    spec = store.read_catalog().get("geohazard")
    gdf = store.read_layer(spec)
    assert len(gdf) == 0
    assert list(gdf.columns) == [*spec.fields, "geometry"]  # io.empty_layer: declared columns
    assert str(gdf.crs) == "EPSG:4326"
    assert store.layer_version(spec) == ""
    assert store.history(spec) == []
    assert store.read_records("warnings") == []
    assert store.records_version("warnings") == ""
    with pytest.raises(DataFileError, match="没有可撤销"):
        store.undo(spec, user="a")


@pytest.mark.parametrize("layer_id", ["geohazard", "waterlogging", "bridge", "firezone"])
def test_bundled_layer_round_trips_exactly(store, layer_id):
    """The frame read back equals the bundled file read directly: columns, dtypes, values."""
    spec = store.read_catalog().get(layer_id)
    original = bundled(spec)
    token = store.write_layer(original, spec, user="载入", action="load", source=spec.file)
    assert token
    assert store.layer_version(spec) == token
    back = store.read_layer(spec)
    pd.testing.assert_frame_equal(back, original)
    # and it serialises to the very bytes of the bundled file
    assert io.geojson_text(back).encode() == spec.path(ROOT / "layers").read_bytes()


def test_coordinates_and_numbers_round_trip_bit_exact(store):
    """Full-precision doubles (17 significant digits, tiny and huge values) come back equal."""
    import numpy as np

    rng = np.random.default_rng(500229)
    n = 500
    lon = 108.0 + rng.random(n)  # random 52-bit mantissas: repr needs up to 17 digits
    lat = 31.5 + rng.random(n)
    gdf = version(n, "精")
    gdf["geometry"] = gpd.points_from_xy(lon, lat, crs="EPSG:4326")
    gdf["volume_m3"] = np.concatenate([[1e-7, 5e-324, 1.7976931348623157e308, 0.1 + 0.2, 5.0],
                                       rng.random(n - 5) * 1e6])
    spec = store.read_catalog().get("geohazard")
    store.write_layer(gdf, spec, user="a", action="import")
    back = store.read_layer(spec)
    assert (back.geometry.x.to_numpy() == lon).all()
    assert (back.geometry.y.to_numpy() == lat).all()
    assert (back["volume_m3"].to_numpy() == gdf["volume_m3"].to_numpy()).all()


def test_join_flag_is_not_stored_and_any_crs_becomes_4326(store):
    spec = store.read_catalog().get("geohazard")
    gdf = version(3, "甲").to_crs("EPSG:4545")
    gdf["join_flag"] = "inside"
    store.write_layer(gdf, spec, user="a", action="import")
    back = store.read_layer(spec)
    assert "join_flag" not in back.columns
    assert str(back.crs) == "EPSG:4326"
    expected = version(3, "甲")
    assert back.geometry.geom_equals_exact(expected.geometry, tolerance=1e-9).all()
    assert list(back["uid"]) == list(expected["uid"])


def test_versions_stale_preview_is_refused_and_nothing_written(store):
    spec = store.read_catalog().get("geohazard")
    v1 = store.write_layer(version(2, "一"), spec, user="a", action="create",
                           expected_version="")
    v2 = store.write_layer(version(3, "二"), spec, user="a", action="import",
                           expected_version=v1)
    assert len({"", v1, v2}) == 3
    entries = len(store.history(spec))
    with pytest.raises(StaleVersionError, match=r"预览之后.*已被修改.*请重新预览"):
        store.write_layer(version(4, "三"), spec, user="b", action="import",
                          expected_version=v1)
    assert store.layer_version(spec) == v2
    assert tag_of(store.read_layer(spec)) == "二"
    assert len(store.history(spec)) == entries  # the refused write left no audit entry
    with pytest.raises(StaleVersionError):  # creating what already exists is stale too
        store.write_layer(version(1, "四"), spec, user="b", action="create",
                          expected_version="")


def test_history_entries_and_undo_walks_back(store):
    spec = store.read_catalog().get("geohazard")
    store.write_layer(version(1, "甲"), spec, user="王科长", action="create", source="a.csv")
    store.write_layer(version(2, "乙"), spec, user="王科长", action="import",
                      source="b.csv", counts={"added": 1, "updated": 1, "rejected": 0})
    store.write_layer(version(3, "丙"), spec, user="李工", action="status", source="c.csv")
    log = store.history(spec)
    assert [(e["action"], e["user"], e["source"]) for e in log] == [
        ("create", "王科长", "a.csv"), ("import", "王科长", "b.csv"), ("status", "李工", "c.csv"),
    ]
    assert [(e["rows_before"], e["rows_after"]) for e in log] == [(None, 1), (1, 2), (2, 3)]
    assert log[0]["backup"] is None
    assert log[1]["backup"]
    assert log[2]["backup"]
    assert log[1]["backup"] != log[2]["backup"]
    assert (log[1]["added"], log[1]["updated"], log[1]["rejected"]) == (1, 1, 0)
    for e in log:
        assert pd.Timestamp(e["time"]).tzinfo is not None  # ISO 8601 with offset (UTC)

    store.undo(spec, user="审核员")
    assert tag_of(store.read_layer(spec)) == "乙"
    undo = store.history(spec)[-1]
    assert (undo["action"], undo["user"], undo["source"]) == ("undo", "审核员", "c.csv")
    assert undo["undoes"] == log[2]["backup"]
    assert (undo["rows_before"], undo["rows_after"]) == (3, 2)
    store.undo(spec, user="审核员")
    assert tag_of(store.read_layer(spec)) == "甲"
    with pytest.raises(DataFileError, match="没有可撤销"):  # the first version replaced nothing
        store.undo(spec, user="审核员")
    assert tag_of(store.read_layer(spec)) == "甲"


def test_undo_restores_exact_frame_of_a_bundled_layer(store):
    spec = store.read_catalog().get("bridge")
    original = bundled(spec)
    store.write_layer(original, spec, user="a", action="load")
    store.write_layer(version(1, "错"), spec, user="a", action="import")
    token = store.undo(spec, user="a")
    assert store.layer_version(spec) == token
    pd.testing.assert_frame_equal(store.read_layer(spec), original)


def test_history_keep_prunes_old_versions(store_settings):
    from dataclasses import replace

    store = open_store(replace(store_settings, history_keep=3))
    spec = store.read_catalog().get("geohazard")
    for i, tag in enumerate("一二三四五"):
        store.write_layer(version(i + 1, tag), spec, user="a", action="import")
    store.undo(spec, user="a")  # 五 -> 四
    store.undo(spec, user="a")  # 四 -> 三
    assert tag_of(store.read_layer(spec)) == "三"
    # each undo keeps the version it replaces too: 二 is now beyond the 3 kept versions
    with pytest.raises(DataFileError, match="已被清理"):
        store.undo(spec, user="a")
    assert tag_of(store.read_layer(spec)) == "三"


def test_records_write_read_version_history_undo(store):
    warnings_ = [{"id": "W1", "level": "红色", "uid": "DZ-1", "count": 3},
                 {"id": "W2", "level": "橙色", "uid": None, "nested": {"a": [1, 2]}}]
    v1 = store.write_records("warnings", warnings_, user="值班员", action="create",
                             source="雨量.csv", expected_version="")
    assert store.read_records("warnings") == warnings_
    assert store.records_version("warnings") == v1
    responses = [*warnings_, {"id": "W3", "level": "黄色"}]
    v2 = store.write_records("warnings", responses, user="站长", action="respond",
                             expected_version=v1, counts={"added": 1})
    with pytest.raises(StaleVersionError, match="请重新预览"):
        store.write_records("warnings", [], user="x", action="respond", expected_version=v1)
    assert store.records_version("warnings") == v2
    log = store.record_history("warnings")
    assert [(e["action"], e["user"], e["rows_before"], e["rows_after"]) for e in log] == [
        ("create", "值班员", None, 2), ("respond", "站长", 2, 3),
    ]
    assert log[1]["added"] == 1
    store.undo_records("warnings", user="站长")
    assert store.read_records("warnings") == warnings_
    assert store.record_history("warnings")[-1]["action"] == "undo"
    assert store.read_records("responses") == []  # collections are independent
    with pytest.raises(ValueError, match="名称无效"):
        store.read_records("../etc")
    with pytest.raises(ValueError, match="名称无效"):
        store.write_records("Bad Name", [], user="x", action="create")


def test_attachments_are_content_addressed(store):
    data = "现场照片".encode() + bytes(range(256))
    name = store.write_attachment(data, suffix=".JPG")
    assert name == f"{hashlib.sha256(data).hexdigest()}.jpg"
    assert store.write_attachment(data, suffix="jpg") == name  # same bytes, same name
    assert store.read_attachment(name) == data
    with pytest.raises(DataFileError, match="附件不存在"):
        store.read_attachment("0" * 64 + ".pdf")
    with pytest.raises(DataFileError, match="附件名称无效"):
        store.read_attachment("../../secrets.toml")
    with pytest.raises(ValueError, match="附件类型无效"):
        store.write_attachment(b"x", suffix="tar.gz")


def test_stamp_changes_with_every_layer_write_not_with_records(store):
    spec = store.read_catalog().get("geohazard")
    s0 = store.stamp()
    assert store.stamp() == s0  # stable while nothing changes
    store.write_layer(version(1, "甲"), spec, user="a", action="import")
    s1 = store.stamp()
    assert s1 != s0
    # a recorded response must not make every app session reload all layers
    store.write_records("warnings", [{"id": 1}], user="a", action="create")
    assert store.stamp() == s1
    store.write_layer(version(2, "乙"), spec, user="a", action="import")
    assert store.stamp() not in {s0, s1}


def test_two_writers_at_once_one_wins_the_other_is_stale(store):
    """Two editors previewed the same version and commit together: exactly one lands."""
    spec = store.read_catalog().get("geohazard")
    base = store.write_layer(version(5, "底"), spec, user="setup", action="create")
    barrier = threading.Barrier(2, timeout=10)
    results: dict[str, object] = {}

    def commit(tag: str) -> None:
        own = open_store(store.settings)  # each editor has its own store (own connection)
        barrier.wait()
        try:
            results[tag] = own.write_layer(version(2000, tag), spec, user=tag, action="import",
                                           expected_version=base)
        except StaleVersionError as exc:
            results[tag] = exc

    threads = [threading.Thread(target=commit, args=(t,)) for t in ("甲", "乙")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert set(results) == {"甲", "乙"}
    stale = [t for t, r in results.items() if isinstance(r, StaleVersionError)]
    assert len(stale) == 1, results
    winner = ({"甲", "乙"} - set(stale)).pop()
    assert "预览之后" in str(results[stale[0]])
    assert tag_of(store.read_layer(spec)) == winner
    assert store.layer_version(spec) == results[winner]
    assert [e["user"] for e in store.history(spec)] == ["setup", winner]


@contextmanager
def hold_layer(store, spec):
    """Hold the layer's write lock from another process/connection, as a slow writer would."""
    if store.kind == "files":
        with io.layer_lock(spec.path(store.settings.layers_dir)):
            yield
        return
    import sqlalchemy as sa

    from riskmap.store.postgis import engine_for, heads

    with engine_for(store.settings.database_url).connect() as conn:
        conn.execute(
            sa.select(heads.c.token).where(heads.c.kind == "layer", heads.c.name == spec.id)
            .with_for_update()
        ).one()
        yield
        conn.rollback()


def test_writer_blocked_longer_than_timeout_gets_lock_error(store):
    spec = store.read_catalog().get("geohazard")
    v1 = store.write_layer(version(1, "甲"), spec, user="a", action="create")
    with hold_layer(store, spec), pytest.raises(LockError, match="另一个导入正在写入"):
        store.write_layer(version(2, "乙"), spec, user="b", action="import", lock_timeout_s=0.3)
    assert store.layer_version(spec) == v1  # refused: nothing written
    store.write_layer(version(2, "乙"), spec, user="b", action="import", lock_timeout_s=5)
    assert tag_of(store.read_layer(spec)) == "乙"


N_KILL = 5_000

CHILD = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests!r})
    from test_store import version, N_KILL
    from riskmap.settings import Settings
    from riskmap.store import open_store

    store = open_store(Settings.from_env())
    spec = store.read_catalog().get("geohazard")
    gdfs = {{tag: version(N_KILL, tag) for tag in ("旧", "新")}}
    print("ready", flush=True)
    i = 0
    while True:
        tag = ("旧", "新")[i % 2]
        store.write_layer(gdfs[tag], spec, user="child", action="import", source=tag)
        i += 1
    """
)


def test_sigkill_mid_write_leaves_old_or_new_and_the_log_agrees(store):
    """A client killed at random moments: the layer is one whole version, the log matches it."""
    spec = store.read_catalog().get("geohazard")
    store.write_layer(version(N_KILL, "旧"), spec, user="setup", action="create", source="旧")
    st = store.settings
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RISKMAP_ROOT": str(st.root),
           "RISKMAP_DATA_DIR": str(st.data_dir), "RISKMAP_DATABASE_URL": st.database_url}
    script = CHILD.format(tests=str(Path(__file__).parent))
    rng = random.Random(500229)  # noqa: S311 - test timing, not crypto
    for _ in range(4):
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                                cwd=ROOT, env=env)
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.2, 2.5))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        proc.stdout.close()
        assert proc.returncode == -signal.SIGKILL
        gdf = store.read_layer(spec)
        assert len(gdf) == N_KILL  # one whole version, never a mix or a part
        tag = tag_of(gdf)
        log = store.history(spec)
        if store.kind == "postgis":
            # one transaction: the newest audit entry is the version in place
            assert log[-1]["source"] == tag
            assert log[-1]["rows_after"] == N_KILL
        else:
            # files log first, then replace: a kill between leaves one entry ahead
            assert tag in {e["source"] for e in log[-2:]}
        # the killed writer holds no lock: the next writer gets it (else LockError)
        store.write_layer(version(N_KILL, "旧"), spec, user="after-kill", action="import",
                          source="旧", lock_timeout_s=5)
        assert tag_of(store.read_layer(spec)) == "旧"


def test_open_store_chooses_by_database_url(tmp_path):
    from riskmap.store.files import FileStore

    assert isinstance(open_store(Settings.from_env({}, root=tmp_path)), FileStore)
