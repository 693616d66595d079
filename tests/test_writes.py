"""Writes: atomic under SIGKILL, lock recovered, writers serialised, history, undo, secrets mode."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import geopandas as gpd
from shapely.geometry import Point

from riskmap import io
from riskmap.errors import DataFileError, LockError
from riskmap.importers import commit_import, plan_import
from riskmap.settings import Settings
from riskmap.store import open_store

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def layer_settings(tmp_path):
    layers = tmp_path / "layers"
    layers.mkdir()
    shutil.copy(ROOT / "layers" / "catalog.toml", layers / "catalog.toml")
    return Settings.from_env({}, root=tmp_path)


def version(n: int, tag: str) -> gpd.GeoDataFrame:
    """A deterministic layer of `n` points whose names carry `tag`."""
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


N_POINTS = 20_000

CHILD = textwrap.dedent(
    """
    import os, random, sys, time
    sys.path.insert(0, {tests!r})
    from test_writes import version, N_POINTS
    from riskmap import io
    from riskmap.settings import Settings

    real_fsync = os.fsync
    def slow_fsync(fd):  # a slow disk widens every window inside the write
        time.sleep(random.uniform(0, 0.02))
        real_fsync(fd)
    io.os.fsync = slow_fsync

    settings = Settings.from_env({{}}, root={root!r})
    spec = io.read_catalog(settings).get("geohazard")
    gdfs = [version(N_POINTS, "旧"), version(N_POINTS, "新")]
    print("ready", flush=True)
    i = 0
    while True:
        io.write_layer(gdfs[i % 2], spec, settings, user="child", source="loop.csv")
        i += 1
    """
)


def test_sigkill_mid_write_leaves_old_or_new_and_lock_recovers(layer_settings):
    spec = io.read_catalog(layer_settings).get("geohazard")
    path = spec.path(layer_settings.layers_dir)
    old, new = version(N_POINTS, "旧"), version(N_POINTS, "新")
    texts = {io.geojson_text(old, drop_columns=("join_flag",)), io.geojson_text(new)}
    io.write_layer(old, spec, layer_settings, user="setup")
    script = CHILD.format(tests=str(Path(__file__).parent), root=str(layer_settings.root))
    rng = random.Random(500229)  # noqa: S311 - test timing, not crypto
    kills = 6
    seen: set[str] = set()
    for _ in range(kills):
        proc = subprocess.Popen(
            [sys.executable, "-c", script],
            stdout=subprocess.PIPE,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.05, 1.5))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        proc.stdout.close()
        assert proc.returncode == -signal.SIGKILL
        text = path.read_text(encoding="utf-8")
        assert text in texts  # never a partial or mixed file
        json.loads(text)
        seen.add("旧" if "旧滑坡" in text else "新")
        for line in (io.history_dir(spec, layer_settings) / "log.jsonl").read_text().splitlines():
            json.loads(line)  # the log is never half-written either
        assert len(io.read_layer(spec, layer_settings)) == N_POINTS
        # the killed child's flock is gone: the next writer gets it at once (timed apart
        # from the write itself, whose GeoJSON serialisation is slow on a loaded machine)
        start = time.monotonic()
        with io.layer_lock(path, timeout_s=2):
            waited = time.monotonic() - start
        assert waited < 1
        io.write_layer(old, spec, layer_settings, user="after-kill", lock_timeout_s=2)
        assert not list(path.parent.glob(f".{path.name}.*.tmp"))  # stale temps cleaned
        assert path.read_text(encoding="utf-8") in texts
    log = io.read_history(spec, layer_settings)
    assert sum(e["user"] == "after-kill" for e in log[-3:]) >= 1


def test_failure_mid_write_keeps_old_file_and_no_temp(layer_settings, monkeypatch):
    spec = io.read_catalog(layer_settings).get("geohazard")
    path = spec.path(layer_settings.layers_dir)
    io.write_layer(version(3, "旧"), spec, layer_settings)
    before = path.read_bytes()
    real_fdopen = os.fdopen

    class Boom:
        def __init__(self, fh):
            self.fh = fh

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def write(self, data):
            self.fh.write(data[: len(data) // 2])
            msg = "disk full"
            raise OSError(28, msg)

    monkeypatch.setattr(io.os, "fdopen", lambda fd, *a, **k: Boom(real_fdopen(fd, *a, **k)))
    with pytest.raises(OSError, match="disk full"):
        io.write_text_atomic(path, "{}")
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert not list(path.parent.glob(".*.tmp"))


HOLD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from riskmap.io import layer_lock
    with layer_lock(Path(sys.argv[1])):
        print("locked", flush=True)
        time.sleep(float(sys.argv[2]))
    """
)


def _holder(path: Path, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path), str(seconds)],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout.readline().strip() == b"locked"
    return proc


def test_second_writer_waits_or_gets_lock_error(layer_settings):
    spec = io.read_catalog(layer_settings).get("geohazard")
    path = spec.path(layer_settings.layers_dir)
    holder = _holder(path, 1.5)
    try:
        with pytest.raises(LockError, match="另一个导入正在写入"):
            io.write_layer(version(2, "甲"), spec, layer_settings, lock_timeout_s=0.3)
        assert not path.exists()  # refused: nothing written
        start = time.monotonic()
        io.write_layer(version(2, "乙"), spec, layer_settings, lock_timeout_s=10)
        waited = time.monotonic() - start
    finally:
        holder.wait(timeout=10)
        holder.stdout.close()
    assert waited > 0.5  # it waited for the holder instead of interleaving
    assert "乙滑坡" in path.read_text(encoding="utf-8")


def test_lock_of_killed_holder_is_released(layer_settings):
    path = layer_settings.layers_dir / "geohazard.geojson"
    holder = _holder(path, 60)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=10)
    holder.stdout.close()
    with io.layer_lock(path, timeout_s=1):
        pass


GEO_CSV = "统一编号,名称,经度,纬度,灾害类型,威胁人数\n{uid},{name},108.664,31.946,滑坡,5\n"


def test_concurrent_commits_of_same_preview_are_serialised(store, gdf_townships, gdf_county):
    """Two imports previewed on one version: one lands, the other is refused, none lost."""
    spec = store.read_catalog().get("geohazard")
    store.write_layer(version(1, "底"), spec, user="setup", action="create")
    base = store.read_layer(spec)
    kw = {"existing": base, "gdf_townships": gdf_townships, "gdf_county": gdf_county}
    plans = [
        plan_import(GEO_CSV.format(uid=u, name=n).encode(), f"{u}.csv", spec, **kw)
        for u, n in (("A1", "甲"), ("B1", "乙"))
    ]
    barrier = threading.Barrier(2, timeout=5)

    class SlowReader:
        """The editor's own store; both commits read the base before either writes."""

        def __init__(self) -> None:
            self.inner = open_store(store.settings)

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def read_layer(self, spec_):
            out = self.inner.read_layer(spec_)
            barrier.wait()
            return out

    results: dict[str, object] = {}

    def commit(plan, who):
        try:
            results[who] = commit_import(plan, spec, SlowReader(), user=who)
        except DataFileError as exc:
            results[who] = exc

    threads = [
        threading.Thread(target=commit, args=(p, w)) for p, w in zip(plans, "ab", strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    refused = [w for w, r in results.items() if isinstance(r, DataFileError)]
    assert len(results) == 2
    assert len(refused) == 1, results
    assert "重新预览" in str(results[refused[0]])
    stored = set(store.read_layer(spec)["uid"])
    landed = "A1" if refused == ["b"] else "B1"
    assert stored == {"P000000", landed}


def test_history_records_user_source_counts_and_undo_restores(
    store, gdf_townships, gdf_county
):
    """Audit entries of two imports and an undo, on files and on PostGIS."""
    spec = store.read_catalog().get("geohazard")
    kw = {"gdf_townships": gdf_townships, "gdf_county": gdf_county}
    plan = plan_import(
        GEO_CSV.format(uid="A1", name="甲").encode(),
        "乡镇上报.csv",
        spec,
        existing=store.read_layer(spec),
        **kw,
    )
    commit_import(plan, spec, store, user="王科长")
    after_first = store.read_layer(spec)
    plan2 = plan_import(
        (GEO_CSV + "A2,乙,108.665,31.947,崩塌,7\n").format(uid="A1", name="甲改").encode(),
        "复核.xlsx.csv",
        spec,
        existing=store.read_layer(spec),
        **kw,
    )
    commit_import(plan2, spec, store, user="李工")
    log = store.history(spec)
    assert [(e["action"], e["user"]) for e in log] == [
        ("create", "王科长"),
        ("import", "王科长"),
        ("import", "李工"),
    ]
    last = log[-1]
    assert last["source"] == "复核.xlsx.csv"
    assert (last["rows_before"], last["rows_after"]) == (1, 2)
    assert (last["added"], last["updated"], last["rejected"]) == (1, 1, 0)
    assert dt_ok(last["time"])
    store.undo(spec, user="审核员")
    assert io.geojson_text(store.read_layer(spec)) == io.geojson_text(after_first)
    if store.kind == "files":
        assert store.layer_path(spec).read_text(encoding="utf-8") == io.geojson_text(after_first)
    undo = store.history(spec)[-1]
    assert (undo["action"], undo["user"], undo["source"]) == ("undo", "审核员", "复核.xlsx.csv")
    assert undo["undoes"] == last["backup"]


def test_undo_of_an_update_gives_back_the_previous_file_byte_for_byte(
    tmp_path, gdf_townships, gdf_county
):
    """A new point imported with blanks, then a status sheet updating it, then undo: the
    layer file is exactly what the first import wrote (booleans stay booleans beside the
    new point's nulls, integers stay integers). Found by a tester: undo used to re-serialise
    the kept version and turned ``true`` into ``1.0``."""
    layers = tmp_path / "layers"
    shutil.copytree(ROOT / "layers", layers, ignore=shutil.ignore_patterns(".*"))
    store = open_store(Settings.from_env({}, root=tmp_path))
    spec = store.read_catalog().get("geohazard")
    kw = {"gdf_townships": gdf_townships, "gdf_county": gdf_county}
    for name, sheet in [
        ("首次.csv", "统一编号,名称,经度,纬度,灾害类型\nDZ-T-1,试验滑坡,108.664,31.946,滑坡\n"),
        ("销号.csv", "统一编号,状态,销号日期,销号原因\nDZ-T-1,已销号,2026-06-30,工程治理\n"),
    ]:
        plan = plan_import(sheet.encode(), name, spec, existing=store.read_layer(spec), **kw)
        assert plan.can_commit, plan.counts
        commit_import(plan, spec, store, user="王科长")
        if name == "首次.csv":
            after_first = store.layer_path(spec).read_bytes()
            assert b'"has_station":true' in after_first.replace(b" ", b"")  # bundled flags
    assert store.layer_path(spec).read_bytes() != after_first
    store.undo(spec, user="王科长")
    assert store.layer_path(spec).read_bytes() == after_first


def dt_ok(text: str) -> bool:
    import datetime as dt

    return dt.datetime.fromisoformat(text).tzinfo is not None


def test_undo_with_nothing_to_undo_is_clear(layer_settings):
    spec = io.read_catalog(layer_settings).get("geohazard")
    with pytest.raises(DataFileError, match="没有可撤销"):
        io.undo_last_write(spec, layer_settings, user="x")


def test_new_files_modes(tmp_path):
    secret = tmp_path / ".streamlit" / "secrets.toml"
    io.write_text_atomic(secret, "[editors]\n", mode=0o600)
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    plain = tmp_path / "list.csv"
    io.write_bytes_atomic(plain, b"x")
    assert stat.S_IMODE(plain.stat().st_mode) == 0o644
    os.chmod(plain, 0o640)
    io.write_bytes_atomic(plain, b"y")
    assert stat.S_IMODE(plain.stat().st_mode) == 0o640  # the replaced file's mode is kept


def test_every_write_in_the_package_goes_through_the_atomic_helpers():
    """No module but io opens files for writing; io writes only via write_bytes_atomic."""
    needles = ("write_text(", "write_bytes(", 'open("w', "open('w", '"wb")', "to_file(")
    offenders = [
        f"{module.name}: {needle}"
        for module in (ROOT / "riskmap").glob("*.py")
        for needle in needles
        if needle in module.read_text(encoding="utf-8")
        and not (module.name == "io.py" and needle == '"wb")')
    ]
    assert offenders == []
