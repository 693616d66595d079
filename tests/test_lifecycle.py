"""Status changes (issue 11): declared transitions, plan/commit through the store, undo, roles."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from riskmap import io, lifecycle
from riskmap.auth import EditorSession
from riskmap.catalog import catalog_from_dict
from riskmap.cli import main
from riskmap.errors import CatalogError, StaleVersionError
from riskmap.settings import Settings
from riskmap.store.files import FileStore

from .conftest import catalog_raw

ROOT = Path(__file__).resolve().parent.parent
TODAY = dt.date(2026, 11, 30)
EDITOR = EditorSession("张三", "local")
VIEWER = EditorSession(None, "local")
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 64
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"


@pytest.fixture(scope="module")
def spec() -> lifecycle.LifecycleSpec:
    return lifecycle.lifecycle_spec(catalog_from_dict(catalog_raw()))


@pytest.fixture
def store(tmp_path, monkeypatch) -> FileStore:
    layers = tmp_path / "layers"
    shutil.copytree(ROOT / "layers", layers, ignore=shutil.ignore_patterns(".history", ".cache"))
    monkeypatch.setenv("RISKMAP_LAYERS_DIR", str(layers))
    return FileStore(Settings.from_env())


def _uids(status: str, layer: str = "geohazard") -> list[str]:
    feats = json.loads((ROOT / "layers" / f"{layer}.geojson").read_text("utf-8"))["features"]
    return [f["properties"]["uid"] for f in feats if f["properties"]["status"] == status]


def test_bundled_lifecycle_declares_the_domain_rules(spec):
    assert spec.statuses == ("在册", "监测中", "治理中", "已销号")
    assert spec.reasons == ("工程治理", "搬迁避让", "排危除险", "趋于稳定")  # DOMAIN.md
    assert spec.transition("治理中", "已销号").requires == ("cleared_date", "cleared_reason")
    assert spec.transition("已销号", "在册").label == "重新入册"
    assert spec.transition("已销号", "治理中") is None
    assert spec.deadline_of("bridge") == "planned_done"
    assert spec.deadline_of("geohazard") == "deadline"


def test_malformed_lifecycle_is_a_catalog_error():
    raw = catalog_raw()
    raw["lifecycle"]["transitions"].append({"from": ["在册"], "to": "完成", "requires": ["x"]})
    with pytest.raises(CatalogError, match="完成") as err:
        lifecycle.lifecycle_spec(catalog_from_dict(raw))
    assert "未知要求 'x'" in str(err.value)
    del raw["lifecycle"]
    with pytest.raises(CatalogError, match="lifecycle"):
        lifecycle.lifecycle_spec(catalog_from_dict(raw))


OK = {"cleared_date": "2026-06-30", "cleared_reason": "工程治理"}


@pytest.mark.parametrize(
    ("old", "new", "fields", "expected"),
    [
        ("监测中", "治理中", {}, []),
        (None, "治理中", {}, []),  # blank = 在册 (a fresh import)
        ("治理中", "已销号", OK, []),
        ("监测中", "已销号", {**OK, "cleared_reason": "趋于稳定"}, []),
        ("治理中", "已销号", {}, ["销号日期 为空（销号 需要）", "销号原因 为空（销号 需要）"]),
        ("治理中", "已销号", {**OK, "cleared_reason": "已完成"}, ["销号原因 '已完成' 无效"]),
        ("治理中", "已销号", {**OK, "cleared_date": "30/06/2026"}, ["不是日期"]),
        ("治理中", "已销号", {**OK, "cleared_date": "2026-12-01"}, ["晚于今天"]),
        ("已销号", "在册", {}, ["原因说明 为空（重新入册 需要）"]),
        ("已销号", "在册", {"reason": "汛后复查发现新裂缝"}, []),
        ("已销号", "治理中", {}, ["不允许从 已销号 改为 治理中；可改为: 在册（重新入册）"]),
        ("治理中", "治理中", {}, ["状态已是 治理中"]),
        ("治理中", "完成", {}, ["状态 '完成' 无效"]),
    ],
)
def test_check_transition(spec, old, new, fields, expected):
    problems = lifecycle.check_transition(spec, old, new, fields, today=TODAY)
    assert len(problems) == len(expected)
    for got, want in zip(problems, expected, strict=True):
        assert want in got


def test_plan_is_pure_and_sets_the_closing_fields(store, spec):
    layer = store.read_catalog().get("geohazard")
    gdf = store.read_layer(layer)
    uid = _uids("治理中")[0]
    change = lifecycle.plan_status_change(
        gdf, layer, spec, uid, "已销号", cleared_date="2026-06-30", reason="工程治理",
        note="验收合格", today=TODAY,
    )  # fmt: skip
    row = change.gdf_result.set_index("uid").loc[uid]
    assert (row["status"], row["cleared_date"], row["cleared_reason"]) == (
        "已销号", "2026-06-30", "工程治理",
    )  # fmt: skip
    assert row["updated_at"] == "2026-11-30"
    assert gdf.set_index("uid").loc[uid, "status"] == "治理中"  # input untouched
    assert change.fields["status"] == ("治理中", "已销号")
    others = change.gdf_result["uid"] != uid
    assert change.gdf_result[others]["status"].tolist() == gdf[others]["status"].tolist()


def test_unknown_uid_names_the_layer(store, spec):
    layer = store.read_catalog().get("geohazard")
    with pytest.raises(lifecycle.StatusChangeError, match=r"找不到统一编号为 'DZ-X'"):
        lifecycle.plan_status_change(store.read_layer(layer), layer, spec, "DZ-X", "治理中")


def test_commit_is_audited_and_undoable(store, spec):
    layer = store.read_catalog().get("geohazard")
    before = store.layer_version(layer)
    uid = _uids("治理中")[0]
    change = lifecycle.plan_status_change(
        store.read_layer(layer), layer, spec, uid, "已销号", cleared_date="2026-06-30",
        reason="工程治理", note="验收合格", base_version=before, today=TODAY,
    )  # fmt: skip
    lifecycle.commit_status_change(change, layer, store, EDITOR, evidence=PNG,
                                   evidence_name="验收.png", spec=spec)  # fmt: skip
    entry = store.history(layer)[-1]
    assert entry["action"] == "status"
    who = (entry["user"], entry["uid"], entry["from"], entry["to"])
    assert who == ("张三", uid, "治理中", "已销号")
    why = (entry["reason"], entry["note"], entry["evidence_name"])
    assert why == ("工程治理", "验收合格", "验收.png")
    assert store.read_attachment(entry["evidence"]) == PNG
    assert entry["evidence"].endswith(".png")
    assert store.read_layer(layer).set_index("uid").loc[uid, "status"] == "已销号"
    assert [e["uid"] for e in lifecycle.status_entries(store, layer)] == [uid]
    lifecycle.undo_last(store, layer, EDITOR)
    assert store.layer_version(layer) == before
    assert lifecycle.status_entries(store, layer)[0]["undone"]


def test_viewer_cannot_commit_or_undo(store, spec):
    layer = store.read_catalog().get("geohazard")
    before = store.layer_version(layer)
    change = lifecycle.plan_status_change(
        store.read_layer(layer), layer, spec, _uids("监测中")[0], "治理中", base_version=before
    )
    with pytest.raises(lifecycle.EditPermissionError):
        lifecycle.commit_status_change(change, layer, store, VIEWER)
    with pytest.raises(lifecycle.EditPermissionError):
        lifecycle.undo_last(store, layer, VIEWER)
    assert store.layer_version(layer) == before
    assert store.history(layer) == []


def test_stale_plan_is_refused(store, spec):
    layer = store.read_catalog().get("geohazard")
    gdf, version = store.read_layer(layer), store.layer_version(layer)
    first, second = _uids("监测中")[:2]
    a = lifecycle.plan_status_change(gdf, layer, spec, first, "治理中", base_version=version)
    b = lifecycle.plan_status_change(gdf, layer, spec, second, "治理中", base_version=version)
    lifecycle.commit_status_change(a, layer, store, EDITOR)
    with pytest.raises(StaleVersionError):
        lifecycle.commit_status_change(b, layer, store, EDITOR)
    assert store.read_layer(layer).set_index("uid").loc[second, "status"] == "监测中"


@pytest.mark.parametrize(
    ("data", "ok"),
    [
        (PNG, "png"),
        (PDF, "pdf"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 32, "jpg"),
        (b"MZ\x90\x00" + b"\x00" * 64, None),  # a Windows executable named .jpg
        (b"<html><script>alert(1)</script></html>", None),
        (b"", None),
    ],
)
def test_evidence_type_by_content(spec, data, ok):
    if ok:
        assert lifecycle.check_evidence(data, spec, filename="x.jpg") == ok
    else:
        with pytest.raises(lifecycle.StatusChangeError, match=r"x\.jpg"):
            lifecycle.check_evidence(data, spec, filename="x.jpg")


def test_evidence_size_limit(spec):
    big = PNG + b"\x00" * int(spec.evidence_max_mb * 1024 * 1024)
    with pytest.raises(lifecycle.StatusChangeError, match="超过上限"):
        lifecycle.check_evidence(big, spec, filename="big.png")


def test_cli_status_then_undo(store, tmp_path):
    layer = store.read_catalog().get("geohazard")
    before = store.layer_version(layer)
    uid = _uids("治理中")[1]
    evidence = tmp_path / "验收报告.pdf"
    evidence.write_bytes(PDF)
    runner = CliRunner()
    res = runner.invoke(main, ["status", uid, "--layer", "geohazard", "--to", "已销号",
                               "--date", "2026-06-30", "--reason", "工程治理", "--note", "复核",
                               "--evidence", str(evidence), "--user", "李四"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert f"{uid}: 治理中 → 已销号（销号，工程治理）" in res.output
    entry = store.history(layer)[-1]
    got = (entry["user"], entry["to"], entry["evidence_name"])
    assert got == ("李四", "已销号", "验收报告.pdf")
    bad = runner.invoke(main, ["status", uid, "--layer", "geohazard", "--to", "治理中",
                               "--user", "李四"])  # fmt: skip
    assert bad.exit_code == 2
    assert "不允许从 已销号 改为 治理中" in bad.output
    assert "Traceback" not in bad.output
    assert runner.invoke(main, ["undo", "--layer", "geohazard"]).exit_code == 0
    assert store.layer_version(layer) == before
    assert io.read_layer(layer, store.settings).set_index("uid").loc[uid, "status"] == "治理中"


def test_status_sheet_import_follows_the_lifecycle(store, tmp_path):
    """A status sheet (c30 kind) through `riskmap import`: allowed changes land with an
    audit entry; a change the catalog forbids refuses the whole sheet, nothing written."""
    layer = store.read_catalog().get("geohazard")
    good, bad = _uids("治理中")[0], _uids("已销号")[0]
    ok_sheet = tmp_path / "销号表.csv"
    ok_sheet.write_text(f"统一编号,状态,销号日期,销号原因\n{good},已销号,2026-06-30,工程治理\n",
                        encoding="utf-8-sig")  # fmt: skip
    runner = CliRunner()
    res = runner.invoke(main, ["import", str(ok_sheet), "--layer", "geohazard", "--user", "王五"])
    assert res.exit_code == 0, res.output
    entry = store.history(layer)[-1]
    assert (entry["action"], entry["user"], entry["source"]) == ("import", "王五", "销号表.csv")
    assert entry["updated"] == 1
    row = store.read_layer(layer).set_index("uid").loc[good]
    assert (row["status"], row["cleared_reason"]) == ("已销号", "工程治理")
    before = store.layer_version(layer)
    bad_sheet = tmp_path / "错误状态表.csv"
    bad_sheet.write_text(f"统一编号,状态\n{bad},治理中\n", encoding="utf-8-sig")
    res = runner.invoke(main, ["import", str(bad_sheet), "--layer", "geohazard", "--user", "王五"])
    assert res.exit_code == 2, res.output
    assert f"{bad}: 不允许从 已销号 改为 治理中" in res.output
    assert store.layer_version(layer) == before
