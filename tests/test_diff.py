"""Survey-round diff (issue 11): between two committed versions, exactly the changed points."""

from __future__ import annotations

import json
import shutil
from io import BytesIO
from pathlib import Path

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook

from shapely.geometry import Point

from riskmap import diff, lifecycle
from riskmap.auth import EditorSession
from riskmap.cli import main
from riskmap.settings import Settings
from riskmap.store.files import FileStore

ROOT = Path(__file__).resolve().parent.parent
EDITOR = EditorSession("张三", "local")


@pytest.fixture
def store(tmp_path, monkeypatch) -> FileStore:
    layers = tmp_path / "layers"
    shutil.copytree(ROOT / "layers", layers, ignore=shutil.ignore_patterns(".history", ".cache"))
    monkeypatch.setenv("RISKMAP_LAYERS_DIR", str(layers))
    return FileStore(Settings.from_env())


def _uid(status: str, n: int = 0) -> str:
    feats = json.loads((ROOT / "layers" / "geohazard.geojson").read_text("utf-8"))["features"]
    return [f["properties"]["uid"] for f in feats if f["properties"]["status"] == status][n]


@pytest.fixture
def rounds(store):
    """Three versions: v0 (bundled), v1 (one point 销号), v2 (one field changed, one moved,
    one added)."""
    layer = store.read_catalog().get("geohazard")
    spec = lifecycle.lifecycle_spec(store.read_catalog())
    v0 = store.layer_version(layer)
    cleared = _uid("治理中")
    change = lifecycle.plan_status_change(
        store.read_layer(layer), layer, spec, cleared, "已销号", cleared_date="2026-06-30",
        reason="工程治理", base_version=v0,
    )  # fmt: skip
    v1 = lifecycle.commit_status_change(change, layer, store, EDITOR)
    gdf = store.read_layer(layer)
    edited, moved = _uid("监测中", 0), _uid("监测中", 1)
    i = gdf.index[gdf["uid"] == edited][0]
    old_people = int(gdf.loc[i, "threat_people"])
    gdf.loc[i, "threat_people"] = old_people + 5
    j = gdf.index[gdf["uid"] == moved][0]
    p = gdf.loc[j, "geometry"]
    gdf.loc[j, "geometry"] = Point(p.x + 0.001, p.y)  # ≈ 94 m east at 32° N
    new = gdf.iloc[[0]].copy()
    new["uid"] = "DZ-NEW-001"
    new["name"] = "新发现滑坡"
    gdf = type(gdf)(pd_concat([gdf, new]), crs=gdf.crs)
    v2 = store.write_layer(gdf, layer, user="李四", action="import", source="汛前排查.xlsx",
                           expected_version=v1)  # fmt: skip
    return {"v0": v0, "v1": v1, "v2": v2, "cleared": cleared, "edited": edited, "moved": moved,
            "old_people": old_people}  # fmt: skip


def pd_concat(frames):
    import pandas as pd

    return pd.concat(frames, ignore_index=True)


def _json(*args: str) -> dict:
    res = CliRunner().invoke(main, ["diff", "--layer", "geohazard", "--format", "json", *args])
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


def test_diff_between_two_versions_lists_exactly_the_changed_point(rounds):
    data = _json("--from", rounds["v0"][:12], "--to", rounds["v1"][:12])
    gh = data["layers"]["geohazard"]
    assert gh["cleared"] == [rounds["cleared"]]
    assert gh["new"] == gh["removed"] == gh["moved"] == []
    # the 销号 also set 销号日期/原因 (and updated_at, a bookkeeping field not reported)
    assert [c["uid"] for c in gh["changed"]] == [rounds["cleared"]]
    fields = {c["field"]: (c["old"], c["new"]) for c in gh["changed"][0]["changes"]}
    assert fields == {"cleared_date": (None, "2026-06-30"), "cleared_reason": (None, "工程治理")}
    assert data["versions"]["geohazard"]["from"] == rounds["v0"]


def test_diff_second_round(rounds):
    data = _json("--from", rounds["v1"], "--label", "汛前排查")
    gh = data["layers"]["geohazard"]
    assert data["label"] == "汛前排查"
    assert gh["new"] == ["DZ-NEW-001"]
    assert gh["cleared"] == []
    assert [m["uid"] for m in gh["moved"]] == [rounds["moved"]]
    assert 80 < gh["moved"][0]["dist_m"] < 110  # 0.001° of longitude at 31.9° N ≈ 94 m
    changed = {c["uid"]: c["changes"] for c in gh["changed"]}
    assert changed[rounds["edited"]] == [
        {"field": "threat_people", "label": "威胁人数", "old": rounds["old_people"],
         "new": rounds["old_people"] + 5}
    ]  # fmt: skip
    # 险情等级 is derived from 威胁人数: a change of class would show too, nothing else
    assert set(changed) <= {rounds["edited"]}
    total = sum(sum(k.values()) for k in data["townships"].values())
    assert total == 3  # new + moved + changed, one each, by township


def test_diff_by_date(rounds):
    everything = _json("--from", "2000-01-01")
    gh = everything["layers"]["geohazard"]
    assert gh["cleared"] == [rounds["cleared"]]
    assert gh["new"] == ["DZ-NEW-001"]
    nothing = _json("--from", "2999-01-01")
    assert nothing["layers"]["geohazard"]["changed"] == []


def test_diff_table_and_xlsx(rounds, tmp_path):
    res = CliRunner().invoke(main, ["diff", "--from", rounds["v0"], "--label", "汛前排查"])
    assert res.exit_code == 0, res.output
    assert "汛前排查变化清单" in res.output
    assert "销号" in res.output
    assert "新增 1" in res.output
    out = tmp_path / "d.xlsx"
    res = CliRunner().invoke(main, ["diff", "--from", rounds["v0"], "--format", "xlsx",
                                    "--out", str(out)])  # fmt: skip
    assert res.exit_code == 0, res.output
    ws = load_workbook(BytesIO(out.read_bytes()))["变化清单"]
    uids = {r[3].value for r in ws.iter_rows(min_row=4)}
    assert {rounds["cleared"], rounds["edited"], rounds["moved"], "DZ-NEW-001"} == uids


def test_unknown_version_is_a_clear_error(rounds):
    del rounds
    res = CliRunner().invoke(main, ["diff", "--from", "deadbeefdeadbeef"])
    assert res.exit_code == 2
    assert "找不到版本" in res.output
    res = CliRunner().invoke(main, ["diff", "--from", "汛前"])
    assert res.exit_code == 2
    assert "既不是日期" in res.output


def test_versions_follow_undo(store, rounds):
    layer = store.read_catalog().get("geohazard")
    store.undo(layer, user="张三")
    versions = diff.layer_versions(store, layer)
    assert versions[-1].token == rounds["v1"]
    assert [v.action for v in versions[1:]] == ["status", "import", "undo"]
