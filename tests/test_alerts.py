"""Warnings (riskmap.alerts) on the bundled data, checked against independent hand computations.

The expected values are computed here straight from the files (json + shapely + pyproj.Geod,
geodesic distances and areas on the WGS84 ellipsoid), not through riskmap's own pipeline, and
compared with riskmap's metric-CRS results within the Gauss-Krüger scale error (< 1e-3).
"""

from __future__ import annotations

import datetime as dt
import io as _io
import json
import shutil
import tomllib
from pathlib import Path

import numpy as np
import openpyxl
import pytest
from click.testing import CliRunner

import shapely
from pyproj import Geod
from shapely.geometry import Point, box, mapping, shape

from riskmap import alerts
from riskmap.cli import main
from riskmap.project import load_project
from riskmap.settings import Settings
from riskmap.store import open_store

ROOT = Path(__file__).resolve().parent.parent
GEOD = Geod(ellps="WGS84")
NOW = dt.datetime(2026, 7, 10, 8, 0, tzinfo=alerts.LOCAL_TZ)


# --- independent hand computation -----------------------------------------------------------


def _catalog() -> dict:
    return tomllib.loads((ROOT / "layers" / "catalog.toml").read_text(encoding="utf-8"))


def _features(file: str) -> list[dict]:
    return json.loads((ROOT / "layers" / file).read_text(encoding="utf-8"))["features"]


def _cell(adcode: str):
    """The approximate township polygon holding `adcode` (own, or via also_covers)."""
    fc = json.loads((ROOT / "data" / "townships_approx.geojson").read_text(encoding="utf-8"))
    for f in fc["features"]:
        p = f["properties"]
        if p["adcode"] == adcode or adcode in (p.get("also_covers") or ""):
            return shape(f["geometry"])
    raise AssertionError(adcode)


def _geodesic_ha(geom) -> float:
    return abs(GEOD.geometry_area_perimeter(geom)[0]) / 1e4


def _nearest_shelter(geom) -> tuple[str, float]:
    """
    Brute force over shelters.geojson: (uid, geodesic distance in m); 0 inside a polygon.

    For a polygon, the distance is the smallest geodesic distance to its boundary densified
    to 0.00002° (≈ 2 m) vertices, so it needs no projection at all.
    """
    if geom.geom_type != "Point":
        ring = shapely.segmentize(geom.boundary, 0.00002)
        lons, lats = np.asarray(shapely.get_coordinates(ring)).T
    best = None
    for f in _features("shelters.geojson"):
        s = shape(f["geometry"])
        if geom.geom_type == "Point":
            d = GEOD.inv(geom.x, geom.y, s.x, s.y)[2]
        elif geom.covers(s):
            d = 0.0
        else:
            d = float(np.min(GEOD.inv(lons, lats, np.full_like(lons, s.x),
                                      np.full_like(lats, s.y))[2]))  # fmt: skip
        if best is None or d < best[1]:
            best = (f["properties"]["uid"], d)
    return best


def hand_affected(area) -> dict[str, dict]:
    """{uid: {layer, people, intersect_ha}} of the risk features `area` reaches, by hand."""
    out = {}
    for lid, raw in _catalog()["layers"].items():
        if raw.get("role", "risk") != "risk":
            continue
        people_field = raw.get("people")
        for f in _features(raw["file"]):
            props = f["properties"]
            if props.get("status") == "已销号" or f["geometry"] is None:
                continue
            geom = shape(f["geometry"])
            if raw["geometry"] == "Point":
                if not area.covers(geom):
                    continue
                piece, ha = geom, None
            else:
                piece = geom.intersection(area)
                if piece.is_empty or piece.area == 0:
                    continue
                ha = _geodesic_ha(piece)
            out[props["uid"]] = {
                "layer": lid,
                "people": int(props.get(people_field) or 0) if people_field else 0,
                "intersect_ha": ha,
                "piece": piece,
            }
    return out


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture
def layers_copy(tmp_path, monkeypatch):
    layers = tmp_path / "layers"
    shutil.copytree(Settings().layers_dir, layers, ignore=shutil.ignore_patterns(".*"))
    monkeypatch.setenv("RISKMAP_LAYERS_DIR", str(layers))
    return layers


@pytest.fixture
def env(layers_copy):
    settings = Settings(layers_dir=layers_copy)
    return load_project(settings), open_store(settings)


def _check_against_hand(record, expected):
    got = {p["uid"]: p for p in record["points"]}
    assert set(got) == set(expected)
    for uid, exp in expected.items():
        p = got[uid]
        assert p["layer"] == exp["layer"]
        assert p["people"] == exp["people"]
        if exp["intersect_ha"] is None:
            assert p["intersect_ha"] is None
        else:
            assert p["intersect_ha"] == pytest.approx(exp["intersect_ha"], rel=1e-3)
        shelter_uid, dist = _nearest_shelter(exp["piece"])
        assert p["shelter_uid"] == shelter_uid, uid
        assert p["shelter_distance_m"] == pytest.approx(dist, rel=1e-3, abs=2.0)
    assert alerts.warning_totals(record)["people"] == sum(e["people"] for e in expected.values())


# --- who is affected ------------------------------------------------------------------------


def test_gecheng_and_fuxing_warning_lists_the_hand_computed_points(env):
    project, store = env
    area = alerts.area_from_townships(project, ["葛城街道", "复兴街道"])
    record = alerts.new_warning(
        project, store, level="红", kind="暴雨", area=area, user="tester", now=NOW
    )
    # 复兴街道 has no polygon of its own: the 葛城街道 cell covers both (data/SOURCES.md)
    expected = hand_affected(_cell("500229001"))
    assert len(expected) >= 5  # 6 waterlogging spots, a bridge, fire zones reaching in
    _check_against_hand(record, expected)
    assert record["id"] == "YJ-20260710-001"
    assert {p["township_code"] for p in record["points"]} == {"500229001", "500229002"}
    # every point has a nearest shelter with a capacity
    assert all(p["shelter_uid"] and p["shelter_capacity"] > 0 for p in record["points"])


def test_drawn_polygon_with_people_at_risk(env):
    """A drawn box around 巴山镇's seat reaches geohazard sites: people are summed."""
    project, store = env
    seat = (108.46732, 32.11162)  # data/townships.csv, 巴山镇
    drawn = box(seat[0] - 0.06, seat[1] - 0.05, seat[0] + 0.06, seat[1] + 0.05)
    geometry = alerts.area_from_geojson({"type": "Feature", "geometry": mapping(drawn)})
    area = alerts.Area("drawn", geometry)
    record = alerts.new_warning(
        project, store, level="橙", kind="地灾气象风险", area=area, user="tester", now=NOW
    )
    expected = hand_affected(drawn)
    assert sum(e["people"] for e in expected.values()) > 0
    _check_against_hand(record, expected)
    # remaining capacity = capacity - people of this warning sent to the same shelter
    sent: dict[str, int] = {}
    for p in record["points"]:
        sent[p["shelter_uid"]] = sent.get(p["shelter_uid"], 0) + p["people"]
    for p in record["points"]:
        assert p["shelter_remaining"] == p["shelter_capacity"] - sent[p["shelter_uid"]]


def test_kml_area_file():
    lon, lat = 108.66073, 31.94856
    ring = [(lon - 0.01, lat - 0.01), (lon + 0.01, lat - 0.01), (lon + 0.01, lat + 0.01),
            (lon - 0.01, lat + 0.01), (lon - 0.01, lat - 0.01)]  # fmt: skip
    coords = " ".join(f"{x},{y},0" for x, y in ring)
    kml = (
        '<?xml version="1.0" encoding="UTF-8"?><kml xmlns="http://www.opengis.net/kml/2.2">'
        "<Document><Placemark><name>预警区</name><Polygon><outerBoundaryIs><LinearRing>"
        f"<coordinates>{coords}</coordinates></LinearRing></outerBoundaryIs></Polygon>"
        "</Placemark></Document></kml>"
    )
    geom = alerts.area_from_file(kml.encode(), "area.kml")
    assert geom.equals_exact(shapely.Polygon(ring), tolerance=1e-9) or geom.equals(
        shapely.Polygon(ring)
    )


# --- responses and closing ----------------------------------------------------------------


def test_responses_progress_close_and_freeze(env):
    project, store = env
    area = alerts.area_from_townships(project, ["巴山镇"])
    record = alerts.new_warning(
        project, store, level="黄", kind="暴雨", area=area, user="tester", now=NOW
    )
    first, second = record["points"][0], record["points"][1]
    later = NOW + dt.timedelta(minutes=5)
    alerts.record_response(store, record["id"], second["uid"], user="王", unreachable=True, now=NOW)
    alerts.record_response(
        store, record["id"], first["uid"], user="李", called=True, moved=first["people"], now=later
    )
    current = alerts.get_warning(store, record["id"])
    totals = alerts.warning_totals(current)
    assert totals["called"] == 1
    assert totals["unreachable"] == 1
    assert totals["moved"] == first["people"]
    assert totals["call_rate"] == pytest.approx(1 / len(record["points"]))
    state = alerts.response_states(current)[first["uid"]]
    assert state["called_at"] == later.isoformat()
    assert state["by"] == "李"
    # reached later: no longer unreachable
    alerts.record_response(store, record["id"], second["uid"], user="王", called=True, now=later)
    totals = alerts.warning_totals(alerts.get_warning(store, record["id"]))
    assert (totals["called"], totals["unreachable"]) == (2, 0)
    # audit log: create + 3 responses, each with the user
    log = store.record_history(alerts.COLLECTION)
    assert [e["action"] for e in log] == ["create", "response", "response", "response"]
    assert [e["user"] for e in log] == ["tester", "王", "李", "王"]
    # closing freezes it: a further record is refused and nothing is written
    alerts.close_warning(store, record["id"], user="tester", now=later)
    version = store.records_version(alerts.COLLECTION)
    with pytest.raises(alerts.AlertError, match="关闭，记录已冻结"):
        alerts.record_response(store, record["id"], first["uid"], user="李", called=True)
    with pytest.raises(alerts.AlertError, match="冻结"):
        alerts.close_warning(store, record["id"], user="tester")
    assert store.records_version(alerts.COLLECTION) == version
    # and the close is undoable through the store
    store.undo_records(alerts.COLLECTION, user="tester")
    assert alerts.get_warning(store, record["id"])["status"] == "open"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"uid": "NOPE", "called": True}, "不在预警"),
        ({"uid": None}, "至少登记一项"),
        ({"uid": None, "called": True, "unreachable": True}, "不能与"),
        ({"uid": None, "moved": -1}, "非负整数"),
        ({"uid": None, "called": True, "user": ""}, "需要编辑权限"),
    ],
)
def test_bad_responses_write_nothing(env, kwargs, match):
    project, store = env
    area = alerts.area_from_townships(project, ["葛城街道"])
    record = alerts.new_warning(project, store, level="红", kind="暴雨", area=area, user="t")
    kwargs = {"user": "t", **kwargs}
    uid = kwargs.pop("uid") or record["points"][0]["uid"]
    version = store.records_version(alerts.COLLECTION)
    with pytest.raises(alerts.AlertError, match=match):
        alerts.record_response(store, record["id"], uid, **kwargs)
    assert store.records_version(alerts.COLLECTION) == version


# --- bad areas ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda _p: alerts.Area("drawn", box(116.3, 39.8, 116.5, 40.0)), "不在城口县境内"),
        (lambda p: alerts.area_from_townships(p, []), "预警范围为空"),
        (lambda p: alerts.area_from_townships(p, ["  "]), "预警范围为空"),
        (
            lambda _p: alerts.Area("file", alerts.area_from_file(b"{not json", "a.geojson")),
            "不是有效的 GeoJSON",
        ),
        (
            lambda _p: alerts.Area("file", alerts.area_from_file(b"<kml>", "a.kml")),
            "不是有效的 KML",
        ),
        (lambda _p: alerts.Area("file", alerts.area_from_file(b"x", "a.shp")), "不支持的文件类型"),
        (
            lambda _p: alerts.Area("drawn", alerts.area_from_geojson(mapping(Point(108.6, 31.9)))),
            "没有面要素",
        ),
        (
            lambda _p: alerts.Area(
                "drawn", alerts.area_from_geojson(mapping(box(500000, 3500000, 510000, 3510000)))
            ),
            "不是经纬度",
        ),
    ],
)
def test_bad_areas_are_refused_and_nothing_is_written(env, make, match):
    project, store = env

    def attempt():
        area = make(project)
        alerts.new_warning(project, store, level="红", kind="暴雨", area=area, user="t")

    with pytest.raises(alerts.AlertError, match=match):
        attempt()
    assert store.records_version(alerts.COLLECTION) == ""


def test_area_without_risk_points_is_refused(env):
    project, store = env
    seat = (108.51737, 31.99823)  # 坪坝镇's seat: no fire zone there (checked by hand)
    assert not hand_affected(box(seat[0] - 1e-5, seat[1] - 1e-5, seat[0] + 1e-5, seat[1] + 1e-5))
    tiny = box(seat[0] - 1e-5, seat[1] - 1e-5, seat[0] + 1e-5, seat[1] + 1e-5)
    with pytest.raises(alerts.AlertError, match="没有风险点位"):
        alerts.new_warning(
            project, store, level="红", kind="暴雨", area=alerts.Area("drawn", tiny), user="t"
        )
    assert store.records_version(alerts.COLLECTION) == ""


def test_level_type_times_and_editor_are_checked(env):
    project, store = env
    area = alerts.area_from_townships(project, ["葛城街道"])
    ok = {"level": "红", "kind": "暴雨", "area": area, "user": "t"}
    for change, match in [
        ({"level": "紫"}, "预警级别"),
        ({"kind": "地震"}, "预警类型"),
        ({"user": " "}, "需要编辑权限"),
        ({"valid_from": "2026-07-10 08:00", "valid_to": "2026-07-10 07:00"}, "应晚于"),
        ({"valid_from": "明天"}, "格式不正确"),
    ]:
        with pytest.raises(alerts.AlertError, match=match):
            alerts.new_warning(project, store, **{**ok, **change})
    assert store.records_version(alerts.COLLECTION) == ""
    record = alerts.new_warning(
        project, store, **{**ok, "level": "红色", "valid_from": "2026-07-10 08:00"}
    )
    assert record["level"] == "红"
    assert record["valid_from"] == "2026-07-10T08:00:00+08:00"
    assert record["valid_to"] == "2026-07-11T08:00:00+08:00"


# --- the call list -----------------------------------------------------------------------------


def _all_cells(data: bytes) -> list[str]:
    ws = openpyxl.load_workbook(_io.BytesIO(data)).active
    return [str(c.value) for row in ws.iter_rows() for c in row if c.value is not None]


def test_call_list_grouped_by_township_with_duty_contact(env):
    project, store = env
    area = alerts.area_from_townships(project, ["葛城街道", "复兴街道"])
    record = alerts.new_warning(project, store, level="红", kind="暴雨", area=area, user="t")
    duties = alerts.duty_contacts(store)
    doc = alerts.call_list(record, duties)
    assert [t["township"] for t in doc["townships"]] == ["葛城街道", "复兴街道"]
    for town in doc["townships"]:
        duty = duties[town["township_code"]]
        assert town["duty"]["duty_phone"] == duty["duty_phone"]
        assert town["totals"]["points"] == len(town["rows"])
    assert sum(len(t["rows"]) for t in doc["townships"]) == len(record["points"])
    # XLSX: the duty contact heads each township; every point's phone is there
    cells = _all_cells(alerts.call_list_xlsx(doc))
    text = "\n".join(cells)
    assert "城口县红色暴雨预警 叫应表" in cells[0]
    for town in doc["townships"]:
        band = next(c for c in cells if c.startswith(town["township"] + "（"))
        assert town["duty"]["duty_phone"] in band
    for p in record["points"]:
        assert p["uid"] in cells
        assert p["resp_phone"] in cells
    assert "演示数据" in text
    # JSON round trip
    assert json.loads(alerts.call_list_json(doc)) == doc


def test_public_call_list_masks_every_phone(env):
    project, store = env
    area = alerts.area_from_townships(project, ["巴山镇", "葛城街道"])
    record = alerts.new_warning(project, store, level="红", kind="暴雨", area=area, user="t")
    doc = alerts.call_list(record, alerts.duty_contacts(store), public=True)
    for data in (alerts.call_list_xlsx(doc), alerts.call_list_json(doc)):
        text = data.decode("utf-8") if data.startswith(b"{") else "\n".join(_all_cells(data))
        assert not alerts.MOBILE_RE.search(text)
        assert "139****" in text
        assert "某某" not in text  # names reduced to the surname
    assert alerts.mask_phone("023-59221234") == "023-****1234"  # area code is public
    assert alerts.mask_phone("13900001234") == "139****1234"


# --- CLI ---------------------------------------------------------------------------------------


@pytest.mark.usefixtures("layers_copy")
def test_cli_new_record_show_calls_close(tmp_path):
    runner = CliRunner()
    result = runner.invoke(
        main,
        ["warning", "new", "--level", "红", "--type", "暴雨", "--township", "葛城街道",
         "--township", "复兴街道", "--from", "2026-07-10 08:00", "--user", "tester"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    wid = result.output.strip().splitlines()[-1]
    assert alerts.ID_RE.match(wid)
    expected = hand_affected(_cell("500229001"))
    uids = sorted(expected)
    for args in (["--called"], ["--called", "--moved", "3"]):
        result = runner.invoke(
            main, ["warning", "record", wid, "--uid", uids[0], *args, "--user", "李"]
        )
        assert result.exit_code == 0, result.output
    result = runner.invoke(
        main, ["warning", "record", wid, "--uid", uids[1], "--unreachable", "--user", "李"]
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["warning", "show", wid, "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert set(doc) >= {"id", "level", "type", "points", "totals"}
    assert doc["id"] == wid
    assert (doc["level"], doc["type"]) == ("红", "暴雨")
    assert set(doc["totals"]) == {"points", "people", "called", "moved", "unreachable"}
    assert doc["totals"] == {
        "points": len(expected),
        "people": sum(e["people"] for e in expected.values()),
        "called": 1,
        "moved": 3,
        "unreachable": 1,
    }
    for p in doc["points"]:
        assert set(p) == {"uid", "layer", "township_code", "people", "shelter_uid",
                          "shelter_distance_m", "response"}  # fmt: skip
    assert {p["uid"] for p in doc["points"]} == set(expected)
    out = tmp_path / "calls.xlsx"
    result = runner.invoke(main, ["warning", "calls", wid, "--format", "xlsx", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert set(uids) <= set(_all_cells(out.read_bytes()))
    out_json = tmp_path / "calls.json"
    result = runner.invoke(
        main, ["warning", "calls", wid, "--format", "json", "--out", str(out_json), "--public"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(out_json.read_text(encoding="utf-8"))["public"] is True
    result = runner.invoke(main, ["warning", "show", wid])
    assert "叫应率" in result.output
    assert runner.invoke(main, ["warning", "close", wid, "--user", "tester"]).exit_code == 0
    result = runner.invoke(main, ["warning", "record", wid, "--uid", uids[0], "--called",
                                  "--user", "李"])  # fmt: skip
    assert result.exit_code == 2
    assert "冻结" in result.output


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--township", "不存在乡"], "找不到乡镇"),
        ([], "预警范围"),
        (["--area", "{missing}"], "无法读取"),
        (["--area", "{outside}"], "不在城口县境内"),
        (["--area", "{invalid}"], "不是有效的 GeoJSON"),
        (["--township", "葛城街道", "--level", "紫"], "预警级别"),
    ],
)
def test_cli_bad_input_exit_2_nothing_written(layers_copy, tmp_path, args, match):
    outside = tmp_path / "outside.geojson"
    outside.write_text(json.dumps(mapping(box(116.3, 39.8, 116.5, 40.0))), encoding="utf-8")
    invalid = tmp_path / "invalid.geojson"
    invalid.write_text('{"type": "Polygon", "coordinates": [[[1, 2]', encoding="utf-8")
    paths = {"{missing}": str(tmp_path / "nope.kml"), "{outside}": str(outside),
             "{invalid}": str(invalid)}  # fmt: skip
    args = [paths.get(a, a) for a in args]
    base = ["warning", "new", "--level", "红", "--type", "暴雨", "--user", "t"]
    if "--level" in args:
        base = ["warning", "new", "--type", "暴雨", "--user", "t"]
    result = CliRunner().invoke(main, [*base, *args])
    assert result.exit_code == 2, result.output
    assert match in result.output
    assert "Traceback" not in result.output
    assert not (layers_copy / "records" / "warnings.json").exists()


# --- both store backends ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundled_project():
    return load_project(Settings())


def test_lifecycle_on_each_store_backend(store, bundled_project):
    """Warnings only use the Store protocol: the same loop works on files and PostGIS."""
    area = alerts.area_from_townships(bundled_project, ["葛城街道", "复兴街道"])
    record = alerts.new_warning(
        bundled_project, store, level="红", kind="暴雨", area=area, user="tester", now=NOW
    )
    uid_a, uid_b = record["points"][0]["uid"], record["points"][1]["uid"]
    alerts.record_response(store, record["id"], uid_a, user="李", called=True, moved=4, now=NOW)
    alerts.record_response(store, record["id"], uid_b, user="李", unreachable=True, now=NOW)
    alerts.close_warning(store, record["id"], user="tester", now=NOW)
    with pytest.raises(alerts.AlertError, match="冻结"):
        alerts.record_response(store, record["id"], uid_a, user="李", called=True)
    doc = alerts.show_json(alerts.get_warning(store, record["id"]))
    people = sum(p["people"] for p in record["points"])
    assert doc["totals"] == {"points": len(record["points"]), "people": people, "called": 1,
                             "moved": 4, "unreachable": 1}  # fmt: skip
    actions = [e["action"] for e in store.record_history(alerts.COLLECTION)]
    assert actions == ["create", "response", "response", "close"]
    store.undo_records(alerts.COLLECTION, user="tester")
    assert alerts.get_warning(store, record["id"])["status"] == "open"
