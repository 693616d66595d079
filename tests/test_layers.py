"""The layer pipeline on the real bundled data, checked against independent computations."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

import geopandas as gpd
from shapely.geometry import Point, box

from riskmap import io
from riskmap.aggregate import county_totals, summarize_townships, summary_records
from riskmap.layers import filter_features, isin, prepare_layer
from riskmap.project import load_project
from riskmap.settings import Settings


@pytest.fixture(scope="module")
def project():
    return load_project(Settings())


def test_bundled_layers_sizes_follow_the_2026_plan(project):
    gh = project.layers["geohazard"].gdf
    assert len(gh) == 60
    assert int(gh["station_planned_2026"].sum()) == 12  # 12 new monitoring stations
    assert int(gh["relocate_people"].sum()) == 154  # 154 people relocated
    assert int((gh["measures"] == "工程治理").sum()) == 2  # 2 major treatment projects
    wl = project.layers["waterlogging"].gdf
    assert len(wl) == 6
    assert set(wl["township"]) == {"葛城街道", "复兴街道"}
    br = project.layers["bridge"].gdf
    assert int(br["condition_class"].isin(["4类", "5类"]).sum()) == 10  # 10 dangerous bridges
    assert len(project.layers["firezone"].gdf) == 12
    for layer in project.layers.values():
        assert layer.gdf["demo"].all()


def test_every_bundled_layer_is_valid(project, settings):
    from riskmap.schema import layer_problems

    for spec in project.catalog:
        assert layer_problems(io.read_layer(spec, settings), spec) == [], spec.id


def test_point_join_agrees_with_geopandas_sjoin(project):
    """Independent check: geopandas.sjoin(within) on the same polygons."""
    gdf = project.layers["geohazard"].gdf
    t = project.gdf_townships
    hit = gpd.sjoin(gdf[["uid", "geometry"]], t[["adcode", "geometry"]], predicate="within")
    expected = hit.set_index("uid")["adcode"]
    got = gdf.set_index("uid")["township_code"]
    assert len(expected) == len(gdf)  # demo points are strictly inside
    assert (got.loc[expected.index] == expected).all()


def test_declared_township_matches_the_join_for_demo_points(project):
    gdf = project.layers["geohazard"].gdf
    assert (gdf["township_declared"] == gdf["township"]).all()
    assert gdf["flags"].isna().all()


def test_rows_in_equal_rows_out_with_outside_and_border_points(catalog, gdf_two_townships):
    spec = catalog.get("geohazard")
    pts = [
        Point(108.63, 31.95),  # inside 甲 (west box)
        Point(108.66, 31.95),  # exactly on the shared border -> lowest code 500229001, flagged
        Point(116.39, 39.91),  # Beijing: outside, flagged, kept
        None,  # no coordinates: kept, flagged
    ]
    raw = gpd.GeoDataFrame(
        {"uid": list("abcd"), "name": list("abcd"), "hazard_type": "滑坡", "threat_people": 1},
        geometry=pts,
        crs=4326,
    )
    layer = prepare_layer(raw, spec, gdf_two_townships, metric_crs="EPSG:4545")
    out = layer.gdf
    assert len(out) == 4
    assert out["uid"].tolist() == list("abcd")
    assert out["township_code"].iloc[0] == "500229001"
    assert out["township_code"].iloc[1] == "500229001"
    assert "界线上" in out["flags"].iloc[1]
    assert pd.isna(out["township_code"].iloc[2])
    assert "界外" in out["flags"].iloc[2]
    assert "无坐标" in out["flags"].iloc[3]
    assert sorted(layer.shares["key"]) == ["a", "b"]


def test_input_in_another_crs_is_reprojected(catalog, gdf_two_townships):
    spec = catalog.get("geohazard")
    lonlat = gpd.GeoSeries([Point(108.69, 31.95)], crs=4326)
    raw = gpd.GeoDataFrame(
        {"uid": ["x"], "name": ["x"], "hazard_type": ["滑坡"], "threat_people": [3]},
        geometry=lonlat.to_crs("EPSG:4545"),
    )
    out = prepare_layer(raw, spec, gdf_two_townships, metric_crs="EPSG:4545").gdf
    assert out.crs.equals("EPSG:4326")
    assert out["township"].iloc[0] == "乙街道"
    assert out.geometry.iloc[0].x == pytest.approx(108.69, abs=1e-9)


def test_fire_zone_across_two_townships_has_known_shares(catalog, gdf_two_townships):
    """A box 108.64–108.70: 0.02° in 甲 and 0.04° in 乙 (same latitudes) -> 1/3 and 2/3."""
    spec = catalog.get("firezone")
    raw = gpd.GeoDataFrame(
        {"uid": ["z"], "name": ["z"], "zone_grade": ["I级"]},
        geometry=[box(108.64, 31.94, 108.70, 31.96)],
        crs=4326,
    )
    layer = prepare_layer(raw, spec, gdf_two_townships, metric_crs="EPSG:4545")
    shares = layer.shares.set_index("township_code")["share"]
    # Areas of equal-latitude strips scale with their longitude width (to ~1e-4 in GK).
    assert shares["500229001"] == pytest.approx(1 / 3, rel=2e-3)
    assert shares["500229002"] == pytest.approx(2 / 3, rel=2e-3)
    assert layer.gdf["township"].iloc[0] == "乙街道"
    assert len(layer.in_township("500229001")) == 1
    assert len(layer.in_township("500229002")) == 1


def test_summary_counts_against_independent_groupby(project):
    df = summarize_townships(project.layers, project.gdf_townships, project.township_codes)
    assert len(df) == 25  # every township, 复兴街道 included
    gh = project.layers["geohazard"].gdf
    by_hand = gh.groupby("township_code")["threat_people"].sum()
    got = df.set_index("adcode")["geohazard|threat_people"]
    for code, people in by_hand.items():
        assert got[code] == people
    assert df["geohazard"].sum() == 60
    wl = df.set_index("name")["waterlogging"]
    assert wl["葛城街道"] + wl["复兴街道"] == 6
    # a zone across k townships counts once in each of them
    fz = project.layers["firezone"]
    assert df["firezone"].sum() == fz.shares.groupby("key")["township_code"].nunique().sum()
    # classes and statuses add up to the count
    for lid, layer in project.layers.items():
        cls_cols = [f"{lid}|{c}" for c in [*layer.spec.classes, "未分级"]]
        assert (df[cls_cols].sum(axis=1) == df[lid]).all()


def test_county_totals_and_json_records(project):
    totals = county_totals(project.layers)
    assert totals["geohazard"]["count"] == 60
    assert totals["bridge"]["by_class"]["4类"] + totals["bridge"]["by_class"]["5类"] == 10
    df = summarize_townships(project.layers, project.gdf_townships, project.township_codes)
    records = summary_records(df, project.layers)
    text = json.dumps(records, ensure_ascii=False, allow_nan=False)
    first = json.loads(text)[0]
    assert first["code"] == "500229001"
    assert first["name"] == "葛城街道"
    assert set(first["layers"]) == set(project.layers)


def test_filters(project):
    layer = project.layers["geohazard"]
    cleared = filter_features(layer, statuses=["已销号"])
    assert len(cleared) == 4
    assert (cleared["cleared_reason"] == "排危除险").all()
    one = layer.gdf.iloc[5]
    assert filter_features(layer, text=one["uid"].lower())["uid"].tolist() == [one["uid"]]
    big = filter_features(layer, classes=["大型"])
    assert set(big["danger_grade"]) == {"大型"}
    code = one["township_code"]
    assert (filter_features(layer, township_codes=[code])["township_code"] == code).all()


SHELTER = """
[layers.shelter]
name = "应急避难场所"
file = "shelter.geojson"
geometry = "Point"
key = "uid"
class_field = "kind"
symbol = "diamond"
colors = { "室外" = "#1b9e77", "室内" = "#7570b3" }
popup = ["uid", "name", "kind", "capacity"]
list = ["uid", "name", "kind", "capacity"]
sums = ["capacity"]

[layers.shelter.fields]
kind = { label = "类型", type = "str", required = true, values = ["室外", "室内"] }
capacity = { label = "容纳人数", type = "int", min = 0, unit = "人" }
"""


def test_a_new_layer_is_only_a_catalog_entry_and_a_file(tmp_path):
    """A fifth layer (应急避难场所) with no code: catalog table + GeoJSON file."""
    layers_dir = tmp_path / "layers"
    shutil.copytree(Settings().layers_dir, layers_dir, ignore=shutil.ignore_patterns(".*"))
    with (layers_dir / "catalog.toml").open("a", encoding="utf-8") as fh:
        fh.write(SHELTER)
    seats = pd.read_csv(Settings().data_dir / "townships.csv", dtype=str).dropna()
    chosen = seats[seats["name"].isin(["巴山镇", "明通镇", "高观镇"])]
    features = [
        {
            "type": "Feature",
            "properties": {
                "uid": f"BN-{i}",
                "name": f"{r.name}避难场所",
                "kind": "室外",
                "capacity": 100 * (i + 1),
            },
            "geometry": {"type": "Point", "coordinates": [float(r.seat_lon), float(r.seat_lat)]},
        }
        for i, r in enumerate(chosen.itertuples())
    ]
    (layers_dir / "shelter.geojson").write_text(
        json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False),
        encoding="utf-8",
    )
    project = load_project(Settings(layers_dir=layers_dir))
    assert project.catalog.ids[-1] == "shelter"
    shelter = project.layers["shelter"].gdf
    # seats lie in their own township's cell (Voronoi), so the join must return them
    assert sorted(shelter["township"]) == sorted(chosen["name"])
    df = summarize_townships(project.layers, project.gdf_townships, project.township_codes)
    assert df["shelter"].sum() == 3
    assert df["shelter|capacity"].sum() == 600
    assert np.isclose(df.set_index("name").loc["明通镇", "shelter|室外"], 1)


def test_unplaced_points_are_not_flagged_as_a_township_mismatch(catalog, gdf_two_townships):
    """Outside / no coordinates carry their own flag; never "落图乡镇(nan)"."""
    spec = catalog.get("geohazard")
    raw = gpd.GeoDataFrame(
        {"uid": ["o", "n"], "name": ["o", "n"], "hazard_type": "滑坡", "threat_people": 1,
         "township_declared": ["甲街道", "乙街道"]},
        geometry=[Point(116.39, 39.91), None],
        crs=4326,
    )  # fmt: skip
    flags = prepare_layer(raw, spec, gdf_two_townships, metric_crs="EPSG:4545").gdf["flags"]
    assert flags.tolist() == ["位于城口县界外，未落入任何乡镇", "无坐标，未落图"]


@pytest.mark.parametrize("dtype", ["string[pyarrow]", "object"])
def test_isin_matches_pandas_for_every_kind_of_wanted(dtype):
    """`riskmap.layers.isin` (Arrow `is_in`) gives pandas' `isin` answer; missing never matches."""
    values = pd.Series(["DZ-1", None, "DZ-2", "DZ-3", "dz-1", "DZ-1"], dtype=dtype)
    by_hand = np.array([True, False, False, True, False, True])  # DZ-1 and DZ-3, case kept
    wanted = ["DZ-1", "DZ-3", "DZ-9"]
    for given in (wanted, set(wanted), pd.Series(wanted, dtype=dtype), iter(wanted)):
        assert isin(values, given).tolist() == by_hand.tolist()
    with_missing = pd.Series([*wanted, None], dtype=dtype)
    assert isin(values, with_missing).tolist() == by_hand.tolist()  # missing never matches
    assert not isin(values, []).any()
    assert not isin(values, pd.Series([], dtype=dtype)).any()
    assert isin(values, wanted).dtype == bool


def test_isin_at_scale_agrees_with_pandas():
    rng = np.random.default_rng(500229)
    keys = pd.Series([f"K{i}" for i in rng.integers(0, 5_000, 50_000)], dtype="string[pyarrow]")
    wanted = [f"K{i}" for i in range(0, 5_000, 7)]
    assert (isin(keys, wanted) == keys.isin(wanted).to_numpy(dtype=bool)).all()
    assert isin(keys, keys).all()
