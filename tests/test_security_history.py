"""History trust: log schema on read, backups only inside the history folder, hashes, verify."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

import geopandas as gpd
from shapely.geometry import Point

from riskmap import io
from riskmap.cli import main
from riskmap.errors import DataFileError
from riskmap.settings import Settings
from riskmap.store.files import FileStore

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def layer_settings(tmp_path, monkeypatch) -> Settings:
    layers = tmp_path / "layers"
    layers.mkdir()
    shutil.copy(ROOT / "layers" / "catalog.toml", layers / "catalog.toml")
    monkeypatch.setenv("RISKMAP_LAYERS_DIR", str(layers))
    return Settings.from_env({}, root=tmp_path)


def _layer(tag: str, n: int = 3) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"uid": [f"P{i}" for i in range(n)], "name": [f"{tag}{i}" for i in range(n)],
         "status": ["在册"] * n},
        geometry=[Point(108.6 + i / 1000, 31.9) for i in range(n)],
        crs="EPSG:4326",
    )


@pytest.fixture
def three_writes(layer_settings):
    """geohazard written three times (A, B, C): two backups, three log entries."""
    spec = io.read_catalog(layer_settings).get("geohazard")
    store = FileStore(layer_settings)
    for tag in "ABC":
        store.write_layer(_layer(tag), spec, user="alice", action="import", source=f"{tag}.csv")
    return spec, store, io.history_dir(spec, layer_settings)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_each_entry_records_the_hashes_of_backup_and_new_file(three_writes, layer_settings):
    spec, store, hdir = three_writes
    entries = store.history(spec)
    assert [e["source"] for e in entries] == ["A.csv", "B.csv", "C.csv"]
    assert entries[0]["backup"] is None
    assert entries[0]["sha256"] is None
    for entry in entries[1:]:
        assert entry["sha256"] == _sha(hdir / entry["backup"])
    # the chain: what each write left is what the next one replaced
    assert [e["written_sha256"] for e in entries[:-1]] == [e["sha256"] for e in entries[1:]]
    assert entries[-1]["written_sha256"] == _sha(spec.path(layer_settings.layers_dir))


BAD_LINES = [
    ("{not json", "不是有效的 JSON"),
    ("[1, 2]", "不是 JSON 对象"),
    ('{"action": "import"}', "缺少字段 time"),
    ('{"time": 5, "action": "import"}', "字段 time 的类型无效"),
    ('{"time": "yesterday", "action": "import"}', "不是 ISO 8601"),
    ('{"time": "2026-01-01T00:00:00+00:00", "action": ["undo"]}', "字段 action 的类型无效"),
    ('{"time": "2026-01-01T00:00:00+00:00", "action": "import", "backup": "../../../etc/passwd"}',
     "不是历史文件夹中的文件名"),
    ('{"time": "2026-01-01T00:00:00+00:00", "action": "import", "backup": "/etc/passwd"}',
     "不是历史文件夹中的文件名"),
    ('{"time": "2026-01-01T00:00:00+00:00", "action": "import", "backup": ".."}',
     "不是历史文件夹中的文件名"),
    ('{"time": "2026-01-01T00:00:00+00:00", "action": "import", "backup": "a\\u0000b"}',
     "不是历史文件夹中的文件名"),
    ('{"time": "2026-01-01T00:00:00+00:00", "action": "undo", "undoes": "x/../../y"}',
     "不是历史文件夹中的文件名"),
    ('{"time": "2026-01-01T00:00:00+00:00", "action": "import", "rows_after": "many"}',
     "字段 rows_after 的类型无效"),
    ('{"time": "2026-01-01T00:00:00+00:00", "action": "import", "added": {"x": 1}}',
     "字段 added 的类型无效"),
    ('{"time": "2026-01-01T00:00:00+00:00", "action": "import", "sha256": "abc"}',
     "不是 SHA-256"),
    ('{"time": "2026-01-01T00:00:00+00:00", "action": "' + "x" * 5000 + '"}', "过长"),
    ("[" * 100_000, "不是有效的 JSON"),  # deep nesting: RecursionError, not a crash
]


@pytest.mark.parametrize(("line", "why"), BAD_LINES, ids=[w for _, w in BAD_LINES])
def test_corrupt_line_is_skipped_with_a_chinese_reason(three_writes, line, why):
    spec, store, hdir = three_writes
    log = hdir / "log.jsonl"
    lines = log.read_text(encoding="utf-8").splitlines()
    lines.insert(1, line)
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.warns(UserWarning, match=rf"log\.jsonl:2: 历史记录行已损坏.*{why}"):
        entries = store.history(spec)
    assert [e["source"] for e in entries] == ["A.csv", "B.csv", "C.csv"]


def test_last_line_pointing_outside_is_never_followed(three_writes, tmp_path):
    """A forged last entry naming a file outside the history folder: skipped, undo goes on."""
    spec, store, hdir = three_writes
    outside = tmp_path / "outside.geojson"
    outside.write_text(io.geojson_text(_layer("EVIL")), encoding="utf-8")
    forged = {"time": "2026-01-01T00:00:00+00:00", "action": "import", "user": "x",
              "source": "evil.csv", "backup": str(outside)}
    with (hdir / "log.jsonl").open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(forged) + "\n")
    with pytest.warns(UserWarning, match="历史记录行已损坏"):
        store.undo(spec, user="bob")
    names = set(store.read_layer(spec)["name"])
    assert names == {"B0", "B1", "B2"}  # the real previous version, never EVIL


def test_backup_that_is_a_link_outside_is_refused(three_writes, tmp_path):
    spec, store, hdir = three_writes
    last = store.history(spec)[-1]
    outside = tmp_path / "outside.geojson"
    outside.write_text(io.geojson_text(_layer("EVIL")), encoding="utf-8")
    (hdir / last["backup"]).unlink()
    os.symlink(outside, hdir / last["backup"])
    before = store.layer_version(spec)
    with pytest.raises(DataFileError, match="链接或不在历史文件夹中"):
        store.undo(spec, user="bob")
    assert store.layer_version(spec) == before  # nothing written


def test_altered_backup_is_refused(three_writes):
    spec, store, hdir = three_writes
    last = store.history(spec)[-1]
    (hdir / last["backup"]).write_text(io.geojson_text(_layer("EVIL")), encoding="utf-8")
    before = store.layer_version(spec)
    with pytest.raises(DataFileError, match="SHA-256 不符"):
        store.undo(spec, user="bob")
    assert store.layer_version(spec) == before


def test_records_undo_checks_backup_too(layer_settings):
    store = FileStore(layer_settings)
    store.write_records("warnings", [{"id": 1}], user="a", action="add")
    store.write_records("warnings", [{"id": 1}, {"id": 2}], user="a", action="add")
    hdir = layer_settings.layers_dir / ".history" / "records.warnings"
    last = store.record_history("warnings")[-1]
    (hdir / last["backup"]).write_text('[{"id": 666}]', encoding="utf-8")
    with pytest.raises(DataFileError, match="SHA-256 不符"):
        store.undo_records("warnings", user="b")
    assert store.read_records("warnings") == [{"id": 1}, {"id": 2}]


def _verify(*args: str):
    return CliRunner().invoke(main, ["history", "verify", *args])


@pytest.mark.usefixtures("three_writes")
def test_verify_clean_history():
    result = _verify("--layer", "geohazard")
    assert result.exit_code == 0, result.output
    assert "完好（3 条记录）" in result.output


def test_verify_reports_each_fault_in_chinese(three_writes, layer_settings):
    spec, store, hdir = three_writes
    entries = store.history(spec)
    (hdir / entries[1]["backup"]).write_bytes(b"tampered")  # backup altered
    (hdir / entries[2]["backup"]).unlink()  # backup gone
    with (hdir / "log.jsonl").open("a", encoding="utf-8") as fh:
        fh.write("{oops\n")
    spec.path(layer_settings.layers_dir).write_text(io.geojson_text(_layer("HAND")), "utf-8")
    result = _verify()
    assert result.exit_code == 1
    out = result.output
    assert "SHA-256 不符" in out
    assert "历史版本已被清理" in out  # within the kept window: an error, not pruning
    assert "log.jsonl:4: 历史记录行已损坏" in out
    assert "[提示]" in out
    assert "当前文件不是最后一条记录写入的版本" in out
    assert "发现 3 处错误" in out


@pytest.mark.usefixtures("layer_settings")
def test_verify_pruned_backups_are_not_errors(monkeypatch):
    monkeypatch.setenv("RISKMAP_HISTORY_KEEP", "2")
    settings = Settings.from_env()
    spec = io.read_catalog(settings).get("geohazard")
    store = FileStore(settings)
    for tag in "ABCDE":
        store.write_layer(_layer(tag), spec, user="a", action="import")
    hdir = io.history_dir(spec, settings)
    assert len(list(hdir.glob("*__*"))) == 2
    result = _verify("--layer", "geohazard")
    assert result.exit_code == 0, result.output
    assert "完好（5 条记录）" in result.output


def test_verify_records_and_no_history(layer_settings):
    result = _verify()
    assert result.exit_code == 0
    assert "没有修改记录" in result.output
    store = FileStore(layer_settings)
    store.write_records("warnings", [{"id": 1}], user="a", action="add")
    store.write_records("warnings", [], user="a", action="clear")
    result = _verify()
    assert result.exit_code == 0, result.output
    assert "记录 warnings: 完好（2 条记录）" in result.output


def test_old_entries_without_hashes_still_undo(three_writes):
    """Logs written before the hashes existed: entries are valid, undo works, verify passes."""
    spec, store, hdir = three_writes
    log = hdir / "log.jsonl"
    old = []
    for line in log.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        entry.pop("sha256")
        entry.pop("written_sha256")
        old.append(json.dumps(entry, ensure_ascii=False))
    log.write_text("\n".join(old) + "\n", encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        store.undo(spec, user="bob")
    assert set(store.read_layer(spec)["name"]) == {"B0", "B1", "B2"}
    assert _verify("--layer", "geohazard").exit_code == 0
