"""Issue 15: the import report is built column-wise, and gives the same report as row by row.

A 10,000-row messy survey is generated here (decimal and DMS coordinates, unreadable and
out-of-county points, declared townships that differ, blank required attributes, repeated
and blank uids) and imported through `plan_import`. Each row's expected outcome is worked out
independently: coordinates by hand from the written text, townships with
``geopandas.sjoin`` on the bundled township polygons. The column-wise report (JSON rows,
`report_frame`, counts, the CLI's JSON text) is also compared with the per-row formulas it
replaced, applied to the `RowReport` objects.
"""

from __future__ import annotations

import json
import random

import numpy as np
import pandas as pd
import pytest

import geopandas as gpd
import shapely

from riskmap import io
from riskmap.coords import parse_coordinate, parse_coordinate_array
from riskmap.importing import (
    ImportReport,
    RowReport,
    RowReports,
    plan_import,
    report_frame,
    report_json_chunks,
    report_json_text,
)
from riskmap.importing.report import ACTION_LABELS, STATUS_LABELS
from riskmap.importing.validate import canonical_uid, canonical_uids

N = 10_000
SEED = 500229


def _dms_text(value: float) -> str:
    deg = int(value)
    minutes = int((value - deg) * 60)
    seconds = round((value - deg - minutes / 60) * 3600, 2)
    if seconds >= 60:  # rounding carried over
        seconds = 59.99
    return f"{deg}°{minutes:02d}'{seconds:05.2f}\""


def _dms_value(text: str) -> float:
    deg, rest = text.split("°")
    minutes, rest = rest.split("'")
    return int(deg) + int(minutes) / 60.0 + float(rest.rstrip('"')) / 3600.0


@pytest.fixture(scope="module")
def messy(settings):
    """The survey (CSV bytes), the row kinds and the expected township code of every row."""
    rng = np.random.default_rng(SEED)
    county = io.read_county(settings).geometry.union_all()
    towns = io.read_townships(settings)
    left, bottom, right, top = county.bounds
    lon, lat = np.empty(0), np.empty(0)
    while len(lon) < N:
        x, y = rng.uniform(left, right, 2 * N), rng.uniform(bottom, top, 2 * N)
        inside = shapely.contains_xy(county, x, y)
        lon, lat = np.append(lon, x[inside]), np.append(lat, y[inside])
    lon, lat = np.round(lon[:N], 6), np.round(lat[:N], 6)
    points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(lon, lat), crs=towns.crs)
    joined = gpd.sjoin(points, towns[["adcode", "name", "geometry"]], predicate="within")
    joined = joined[~joined.index.duplicated()]
    code = joined["adcode"].astype(str).reindex(range(N)).to_numpy(dtype=object)
    name = joined["name"].reindex(range(N)).to_numpy(dtype=object)
    names = towns["name"].tolist()
    kind = np.array(["clean"] * N, dtype=object)
    order = rng.permutation(N)
    for label, share in (
        ("unreadable", 0.01), ("outside", 0.01), ("mismatch", 0.10), ("blank_type", 0.10),
        ("dms", 0.15), ("no_uid", 0.02), ("dup_uid", 0.01), ("bad_households", 0.01),
    ):  # fmt: skip
        take, order = order[: int(N * share)], order[int(N * share) :]
        kind[take] = label
    kind[pd.isna(name) & (kind == "clean")] = "no_township"  # on no polygon (a gap)
    lon_txt = [f"{v:.6f}" for v in lon]
    lat_txt = [f"{v:.6f}" for v in lat]
    declared = [n if isinstance(n, str) else "" for n in name]
    hazard = rng.choice(["滑坡", "崩塌", "泥石流"], N).astype(object)
    uid = np.array([f"DZ-500229-{i:06d}" for i in range(N)], dtype=object)
    households = rng.integers(0, 50, N).astype(str).astype(object)
    expected_lon, expected_lat = lon.copy(), lat.copy()
    dup_rows = np.flatnonzero(kind == "dup_uid")
    for i in range(N):
        k = kind[i]
        if k == "unreadable":
            lon_txt[i] = "不详"
        elif k == "outside":
            lon_txt[i] = f"{lon[i] + 3:.6f}"
        elif k == "mismatch" and isinstance(name[i], str):
            declared[i] = names[(names.index(name[i]) + 1) % len(names)]
        elif k == "blank_type":
            hazard[i] = ""
        elif k == "dms":
            lon_txt[i], lat_txt[i] = _dms_text(lon[i]), _dms_text(lat[i])
            expected_lon[i] = _dms_value(lon_txt[i])
            expected_lat[i] = _dms_value(lat_txt[i])
        elif k == "no_uid":
            uid[i] = ""
        elif k == "bad_households":
            households[i] = "十几户"
    # repeated uids: every second duplicate row takes the uid of the one before it
    for a, b in zip(dup_rows[::2], dup_rows[1::2], strict=False):
        uid[b] = uid[a].lower()  # same uid after case folding
    frame = pd.DataFrame(
        {
            "统一编号": uid,
            "名称": [f"隐患点{i}" for i in range(N)],
            "所属乡镇": declared,
            "灾害类型": hazard,
            "威胁户数": households,
            "威胁人数": rng.integers(0, 400, N),
            "经度": lon_txt,
            "纬度": lat_txt,
            "状态": "在册",
        }
    )
    data = frame.to_csv(index=False).encode("utf-8-sig")
    return {
        "data": data,
        "kind": kind,
        "code": code,
        "lon": np.round(expected_lon, 7),
        "lat": np.round(expected_lat, 7),
        "uid": uid,
    }


@pytest.fixture(scope="module")
def plan(messy, settings, catalog):
    spec = catalog.get("geohazard")
    return plan_import(
        messy["data"],
        "messy.csv",
        spec,
        existing=io.read_layer(spec, settings).iloc[0:0],
        gdf_townships=io.read_townships(settings),
        gdf_county=io.read_county(settings),
    )


def test_every_row_has_the_outcome_worked_out_independently(plan, messy):
    rows = list(plan.report.rows)
    kind, code = messy["kind"], messy["code"]
    assert len(rows) == N
    assert [r.row for r in rows] == list(range(2, N + 2))  # Excel rows under the header
    dup_uids = pd.Series([u.casefold() for u in messy["uid"]])
    repeated = (dup_uids.duplicated(keep=False) & (dup_uids != "")).to_numpy()
    for i, r in enumerate(rows):
        reasons = " ".join(m.reason for m in r.messages)
        columns = {m.column for m in r.messages}
        if kind[i] == "unreadable":
            assert (r.action, r.status, r.lon) == ("reject", "error", None)
            assert "无法识别的坐标值，未落图 (经度/X)" in reasons
            assert "经度" in columns
        elif kind[i] == "outside":
            assert (r.action, r.status) == ("reject", "error")
            assert "位于城口县外，未导入" in reasons
        elif repeated[i]:
            assert (r.action, r.status) == ("reject", "error")
            assert "在文件中重复" in reasons
        else:
            assert r.action == "add", (i, kind[i], reasons)
            assert r.lon == pytest.approx(messy["lon"][i], abs=1e-9)
            assert r.lat == pytest.approx(messy["lat"][i], abs=1e-9)
            assert r.township_code == code[i] or kind[i] == "no_township"
        if kind[i] == "blank_type":
            assert r.status == "warning"
            assert r.missing == ["灾害类型"]
            assert "灾害类型" in columns
        elif kind[i] == "mismatch":
            assert r.status == "warning"
            assert "填报乡镇" in reasons
        elif kind[i] == "bad_households":
            assert r.status == "warning"
            assert "十几户" in {m.value for m in r.messages}
        elif kind[i] == "no_uid":
            assert r.uid is not None  # generated after the join
            assert r.uid.startswith("DZ-")
            assert any(m.level == "info" and "已生成" in m.reason for m in r.messages)
        elif kind[i] in {"clean", "dms"}:
            assert (r.status, r.messages, r.missing) == ("ok", [], [])
            assert r.uid == messy["uid"][i]
    counts = plan.report.counts
    rejected = int(((kind == "unreadable") | (kind == "outside")).sum() + repeated.sum())
    assert counts["rows"] == N
    assert counts["rejected"] == rejected
    assert counts["added"] == N - rejected
    assert counts["incomplete"] == int((kind == "blank_type").sum())


def _json_rows_by_row(rows: list[RowReport]) -> list[dict]:
    """The report rows as `RowReport.to_json_dict` gives them, one object at a time."""
    return [r.to_json_dict() for r in rows]


def _frame_by_row(rows: list[RowReport]) -> pd.DataFrame:
    """`report_frame` as it was computed before issue 15: one record per message."""
    records = []
    for r in rows:
        base = {
            "行号": r.row,
            "状态": STATUS_LABELS.get(r.status, r.status),
            "处理": ACTION_LABELS.get(r.action, r.action),
            "统一编号": r.uid,
            "经度": None if r.lon is None else f"{r.lon:.7f}",
            "纬度": None if r.lat is None else f"{r.lat:.7f}",
            "乡镇代码": r.township_code,
        }
        if not r.messages:
            records.append({**base, "级别": None, "列": None, "值": None, "原因": None})
        records.extend(
            {**base, "级别": m.level_label, "列": m.column, "值": m.value, "原因": m.reason}
            for m in r.messages
        )
    columns = [
        "行号", "状态", "处理", "统一编号", "经度", "纬度", "乡镇代码", "级别", "列", "值", "原因",
    ]  # fmt: skip
    return pd.DataFrame(records, columns=columns)


def _counts_by_row(rows: list[RowReport]) -> dict[str, int]:
    actions = [r.action for r in rows]
    return {
        "rows": len(rows),
        "added": actions.count("add"),
        "updated": actions.count("update"),
        "unchanged": actions.count("unchanged"),
        "rejected": actions.count("reject"),
        "warnings": sum(r.status == "warning" for r in rows),
        "conflicts": actions.count("conflict"),
        "duplicates": actions.count("duplicate"),
        "incomplete": sum(bool(r.missing) and r.action in {"add", "update"} for r in rows),
    }


def test_column_wise_report_equals_the_row_by_row_one(plan):
    report = plan.report
    assert isinstance(report.rows, RowReports)
    rows = list(report.rows)
    d = report.to_json_dict()
    assert d["rows"] == _json_rows_by_row(rows)
    assert d["counts"] == _counts_by_row(rows)
    pd.testing.assert_frame_equal(report_frame(report), _frame_by_row(rows))
    issues = report_frame(report, only_messages=True)
    full = _frame_by_row(rows)
    pd.testing.assert_frame_equal(issues, full[full["级别"].notna()].reset_index(drop=True))
    # the CLI's JSON text: the same object, one report row per line
    text = report_json_text(report, changes={})
    assert json.loads(text) == {**d, "changes": {}}
    assert report.rows.json_lines() == [json.dumps(r, ensure_ascii=False) for r in d["rows"]]
    # streamed in pieces of any size, the text is the same
    assert "".join(report_json_chunks(report, batch=777, changes={})) == text
    empty = ImportReport(filename="x.csv", layer="geohazard", file_error="坏文件")
    assert json.loads(report_json_text(empty)) == empty.to_json_dict()
    # a line per key (+ "changes") and per row, the braces and the line closing the rows
    assert len(text.splitlines()) == (len(d) + 1) + N + 2 + 1
    # a report made from RowReport objects (the old way) stores and gives the same
    again = ImportReport(filename="messy.csv", layer="geohazard", rows=rows)
    assert again.to_json_dict()["rows"] == d["rows"]
    assert again.rows[5] == rows[5]
    assert again.rows[-1] == rows[-1]
    assert again.rows[2:4] == rows[2:4]


def test_vectorised_coordinates_equal_the_cell_parser():
    rng = random.Random(SEED)  # noqa: S311 - test data, not secrets
    cells: list[object] = []
    for _ in range(5000):
        d, m, s = rng.randint(0, 200), rng.randint(0, 70), rng.uniform(0, 70)
        sp = rng.choice(["", " ", "  "])
        cells.append(
            rng.choice(
                [
                    f"{d}°{sp}{m:02d}'{sp}{s:.2f}\"",
                    f"{d}°{m}'",
                    f"{sp}{d}°{m}.5'{s:.3f}{sp}",
                    f"{d}度{m}分{s:.1f}秒",
                    f"{d}°{m}'{s:.1f}''",
                    f"{d}°{m}'\"",
                    f"N{d}°{m}'{s:.1f}\"",
                    f"{d}.{rng.randint(0, 999)}",
                    f"{rng.uniform(-200, 4e7):.{rng.randint(0, 12)}f}",
                    f"{rng.uniform(0, 200):e}",
                    f" {d}.5 ",
                    f"+{d}.25",
                    f"{d}.",
                    ".5",
                    "1e999",
                    "nan",
                    "１０８.５",
                    "108,5",
                    "3,536,057.06",
                    float(d),
                    "不详",
                    None,
                    "",
                ]
            )
        )
    got = parse_coordinate_array(np.array(cells, dtype=object))
    expected = np.array([np.nan if (v := parse_coordinate(c)) is None else v for c in cells])
    np.testing.assert_array_equal(got, expected)  # NaN in the same places, equal values


def test_vectorised_canonical_uids_equal_the_cell_function():
    cells = [
        "DZ-1", " DZ-1", "DZ 1", "DZ\x0b1", "DZ\x1c1", "", "  ", None, "ＤＺ－１", "dz-1\u200b",
        "a\tb", "é", "DZ\u30001",
    ]  # fmt: skip
    got = canonical_uids(np.array(cells, dtype=object))
    assert got.tolist() == [canonical_uid(c) for c in cells]
