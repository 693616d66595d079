"""清零 progress (issue 11): `riskmap progress --format json` against figures by hand.

The expected figures are computed here straight from the GeoJSON files with json + shapely
(township membership by point-in-polygon / polygon intersection, the approximate cell of
葛城街道 also standing for 复兴街道 when a point declares it), not through riskmap.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from pathlib import Path

import pytest
from click.testing import CliRunner

import shapely
from shapely.geometry import shape

from riskmap.cli import main

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("geohazard", "waterlogging", "bridge", "firezone")
DEADLINE = {"geohazard": "deadline", "waterlogging": "deadline", "bridge": "planned_done",
            "firezone": "deadline"}  # fmt: skip


def _read(path: Path) -> list[dict]:
    return json.loads(path.read_text("utf-8"))["features"]


def _towns() -> tuple[list[tuple[str, str, object, list[str]]], dict[str, str]]:
    cells = [
        (f["properties"]["adcode"], f["properties"]["name"], shape(f["geometry"]),
         [c for c in (f["properties"].get("also_covers") or "").split(",") if c])
        for f in _read(ROOT / "data" / "townships_approx.geojson")
    ]  # fmt: skip
    import csv

    with (ROOT / "data" / "townships.csv").open(encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    code_col = next(c for c in rows[0] if c.startswith("adcode"))
    names = {r[code_col][:9]: r["name"] for r in rows}
    return cells, names


def _members(feature: dict, cells, names) -> set[str]:
    geom = shape(feature["geometry"])
    if geom.geom_type == "Point":
        for code, _, poly, covers in cells:
            if poly.covers(geom):
                declared = feature["properties"].get("township_declared")
                other = [c for c in covers if names.get(c) == declared]
                return {other[0] if other else code}
        return set()
    return {code for code, _, poly, _ in cells if shapely.intersection(poly, geom).area > 0}


def _by_hand(as_of: dt.date) -> dict:
    cells, names = _towns()
    county: dict = {}
    towns: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    for lid in LAYERS:
        c = defaultdict(int)
        for f in _read(ROOT / "layers" / f"{lid}.geojson"):
            p = f["properties"]
            cleared = p.get("status") == "已销号"
            deadline = p.get(DEADLINE[lid])
            overdue = p.get("status") == "治理中" and bool(deadline) and (
                dt.date.fromisoformat(deadline) < as_of
            )
            fig = {"total": 1, "active": int(not cleared), "cleared": int(cleared),
                   "overdue": int(overdue)}  # fmt: skip
            for k, v in fig.items():
                c[k] += v
            for code in _members(f, cells, names):
                for k, v in fig.items():
                    towns[code][lid][k] += v
        county[lid] = dict(c)
    return {"county": county, "towns": towns, "names": names}


@pytest.mark.parametrize("as_of", ["2026-11-30", "2027-01-15"])
def test_progress_json_equals_hand_counts(as_of):
    res = CliRunner().invoke(main, ["progress", "--format", "json", "--as-of", as_of])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    hand = _by_hand(dt.date.fromisoformat(as_of))
    assert set(data) == {"county", "townships"}
    for lid in LAYERS:
        got = data["county"][lid]
        want = hand["county"][lid]
        assert set(got) == {"total", "active", "cleared", "overdue", "rate"}
        assert {k: got[k] for k in want} == want
        assert got["rate"] == pytest.approx(want["cleared"] / want["total"], abs=1e-4)
    assert len(data["townships"]) == 25  # every township, 复兴街道 included
    for town in data["townships"]:
        assert town["name"] == hand["names"][town["code"]]
        for lid in LAYERS:
            got = town["layers"][lid]
            want = dict(hand["towns"][town["code"]][lid]) or dict.fromkeys(
                ("total", "active", "cleared", "overdue"), 0
            )
            assert {k: got[k] for k in ("total", "active", "cleared", "overdue")} == {
                k: want.get(k, 0) for k in ("total", "active", "cleared", "overdue")
            }, (town["name"], lid)
            if want.get("total", 0):
                assert got["rate"] == pytest.approx(want["cleared"] / want["total"], abs=1e-4)
            else:
                assert got["rate"] is None


def test_overdue_depends_on_the_day():
    # by hand from the files: 治理中 with a deadline before the day
    early = _by_hand(dt.date(2026, 11, 30))["county"]
    late = _by_hand(dt.date(2027, 1, 15))["county"]
    assert early["geohazard"]["overdue"] == 3  # the relocations due 2026-09-30
    assert early["waterlogging"]["overdue"] == 1
    assert (early["bridge"]["overdue"], late["bridge"]["overdue"]) == (0, 10)


def test_progress_table_lists_cleared_this_year_and_rates():
    res = CliRunner().invoke(main, ["progress", "--as-of", "2026-11-30"])
    assert res.exit_code == 0, res.output
    header = res.output.splitlines()[0].split()
    assert header == ["乡镇", "图层", "合计", "在册隐患", "已销号", "今年销号", "治理中", "逾期",
                      "销号率", "整改率"]  # fmt: skip
    lines = [line.split() for line in res.output.splitlines()]
    county = next(cells for cells in lines if cells[:2] == ["全县", "地质灾害隐患点"])
    # 4 cleared in 2026 of 60; 9 in treatment: 整改率 = 4 / (9 + 4)
    assert county[2:] == ["60", "56", "4", "4", "9", "3", "6.7%", f"{4 / 13:.1%}"]
    assert "示意边界" in res.output


def test_bad_as_of_is_a_clear_error():
    res = CliRunner().invoke(main, ["progress", "--as-of", "30/11/2026"])
    assert res.exit_code == 2
    assert "--as-of" in res.output


def test_map_fades_cleared_and_outlines_overdue():
    import re

    from riskmap import mapview
    from riskmap.lifecycle import lifecycle_spec
    from riskmap.progress import with_overdue
    from riskmap.project import load_project
    from riskmap.settings import Settings

    project = load_project(Settings())
    spec = lifecycle_spec(project.catalog)
    layers = with_overdue({"geohazard": project.layers["geohazard"]}, spec,
                          as_of=dt.date(2026, 11, 30))  # fmt: skip
    html = mapview.build_map(
        layers, project.gdf_townships, project.gdf_county, settings=project.settings
    ).get_root().render()
    feats = _read(ROOT / "layers" / "geohazard.geojson")
    cleared = sum(1 for f in feats if f["properties"]["status"] == "已销号")
    overdue = sum(
        1 for f in feats
        if f["properties"]["status"] == "治理中" and (f["properties"].get("deadline") or "9")
        < "2026-11-30"
    )  # fmt: skip
    marks = json.loads(re.search(r'"st":\s*(\[[0-9,\s]*\])', html).group(1))
    assert (marks.count(1), marks.count(2)) == (cleared, overdue)
    assert f"含已销号 {cleared} 个（淡显）" in html
    assert f"红圈：逾期 {overdue} 个" in html
