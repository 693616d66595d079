"""Township loader: bundled reference data and official-like drop-in files."""

from __future__ import annotations

import itertools
from pathlib import Path

import pandas as pd
import pytest

import geopandas as gpd
import shapely
from shapely.geometry import Polygon, box

from riskmap import io
from riskmap.errors import CRSError, DataFileError, SchemaError
from riskmap.settings import Settings
from riskmap.townships import TOWNSHIP_COLUMNS, name_key, normalize_code

CHECK_COUNTY = Path(__file__).parent / "data" / "check_chengkou_county_wgs84.geojson"
METRIC = "EPSG:4545"


@pytest.fixture(scope="module")
def settings() -> Settings:
    return Settings()


@pytest.fixture(scope="module")
def codes(settings) -> pd.DataFrame:
    return io.read_township_codes(settings)


@pytest.fixture(scope="module")
def gdf_townships(settings) -> gpd.GeoDataFrame:
    return io.read_townships(settings)


@pytest.fixture(scope="module")
def gdf_county(settings) -> gpd.GeoDataFrame:
    return io.read_county(settings)


# --- bundled reference data -----------------------------------------------------------------


def test_codes_table(codes):
    assert len(codes) == 25
    assert codes["adcode"].str.fullmatch(r"500229\d{3}").all()
    assert (codes["adcode12"] == codes["adcode"] + "000").all()
    assert codes["level"].value_counts().to_dict() == {"乡": 13, "镇": 10, "街道": 2}
    fuxing = codes.set_index("adcode").loc["500229002"]
    assert fuxing["name"] == "复兴街道"
    assert pd.isna(fuxing["seat_lon"])
    assert codes["seat_lon"].notna().sum() == 24


def test_villages_codes_are_text(settings):
    villages = pd.read_csv(settings.data_dir / "villages.csv", dtype=str)
    assert len(villages) == 204
    assert villages["code"].str.fullmatch(r"500229\d{6}").all()
    assert set(villages["streetCode"]) <= set(io.read_township_codes(settings)["adcode"])


def test_county(gdf_county):
    assert gdf_county.crs.to_epsg() == 4326
    assert list(gdf_county.columns) == ["adcode", "name", "geometry"]
    assert gdf_county.loc[0, "adcode"] == "500229"
    assert gdf_county.loc[0, "name"] == "城口县"


def test_county_matches_independent_conversion(gdf_county):
    ours = gdf_county.to_crs(METRIC).geometry.iloc[0]
    check = gpd.read_file(CHECK_COUNTY).to_crs(METRIC).geometry.iloc[0]
    assert ours.symmetric_difference(check).area / check.area < 1e-4
    assert ours.hausdorff_distance(check) < 5.0  # metres


def test_county_geojson_is_rfc7946(settings):
    text = settings.county_path.read_text(encoding="utf-8")
    assert '"crs"' not in text
    assert "城口县" in text  # ensure_ascii=False


def test_approximate_partition_contract(gdf_townships, codes):
    assert list(gdf_townships.columns) == TOWNSHIP_COLUMNS
    assert len(gdf_townships) == 24
    assert gdf_townships.crs.to_epsg() == 4326
    assert isinstance(gdf_townships.index, pd.RangeIndex)
    assert gdf_townships["adcode"].is_monotonic_increasing
    assert gdf_townships["adcode"].map(type).eq(str).all()
    assert gdf_townships["adcode"].str.fullmatch(r"\d{9}").all()
    assert (gdf_townships["adcode12"] == gdf_townships["adcode"] + "000").all()
    assert gdf_townships["approximate"].dtype == bool
    assert gdf_townships["approximate"].all()
    assert gdf_townships.geom_type.isin(["Polygon", "MultiPolygon"]).all()
    assert gdf_townships.is_valid.all()
    assert set(codes["adcode"]) - set(gdf_townships["adcode"]) == {"500229002"}


def test_fuxing_is_covered_by_gecheng(gdf_townships):
    covers = gdf_townships.set_index("adcode")["also_covers"]
    assert covers["500229001"] == "500229002"
    assert (covers.drop("500229001") == "").all()
    assert gdf_townships.attrs["township_names"]["500229002"] == "复兴街道"


def test_partition_tiles_county(gdf_townships, gdf_county):
    towns = gdf_townships.to_crs(METRIC).geometry.to_numpy()
    county = gdf_county.to_crs(METRIC).geometry.iloc[0]
    union = shapely.union_all(towns)
    assert abs(union.area - county.area) / county.area < 1e-6
    assert abs(shapely.area(towns).sum() - county.area) / county.area < 1e-6  # no overlaps
    worst = max(a.intersection(b).area for a, b in itertools.combinations(towns, 2))
    assert worst < 1e-3  # m²


def test_seats_in_own_cells(gdf_townships, codes):
    seats = codes.dropna(subset=["seat_lon"]).set_index("adcode")
    cells = gdf_townships.set_index("adcode").geometry
    for adcode, row in seats.iterrows():
        point = shapely.Point(float(row["seat_lon"]), float(row["seat_lat"]))
        assert cells[adcode].contains(point), adcode


def test_sources_documented(settings):
    text = (settings.data_dir / "SOURCES.md").read_text(encoding="utf-8")
    for needle in ("GeoNames", "CC BY 4.0", "prcoords", "GCJ-02", "Voronoi", "复兴街道"):
        assert needle in text


# --- pure helpers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("500229001", "500229001"),
        (" 500229001000 ", "500229001"),
        (500229102, "500229102"),
        (500229102000.0, "500229102"),
        ("５００２２９００１", "500229001"),
        ("500229001001", None),  # a village code, not a township
        ("5002290", None),
        ("", None),
        (None, None),
        (float("nan"), None),
    ],
)
def test_normalize_code(value, expected):
    assert normalize_code(value) == expected


@pytest.mark.parametrize("name", ["巴山镇", "巴山", " 巴山镇人民政府 ", "巴山 镇"])
def test_name_key(name):
    assert name_key(name) == "巴山"


# --- official-like drop-in files ------------------------------------------------------------


def _grid(codes: pd.DataFrame) -> gpd.GeoDataFrame:
    """25 boxes of 0.02° in a 5x5 grid inside Chengkou, one per township, EPSG:4490."""
    geoms = [
        box(
            108.5 + 0.02 * (k % 5),
            31.8 + 0.02 * (k // 5),
            108.52 + 0.02 * (k % 5),
            31.82 + 0.02 * (k // 5),
        )
        for k in range(len(codes))
    ]
    return gpd.GeoDataFrame(
        {"code": codes["adcode"].to_numpy(), "name": codes["name"].to_numpy()},
        geometry=geoms,
        crs="EPSG:4490",
    )


def _settings_for(path: Path) -> Settings:
    return Settings(townships_path=path)


def _check_official(gdf: gpd.GeoDataFrame, codes: pd.DataFrame) -> None:
    assert list(gdf.columns) == TOWNSHIP_COLUMNS
    assert list(gdf["adcode"]) == sorted(codes["adcode"])
    assert gdf.crs.to_epsg() == 4326
    assert not gdf["approximate"].any()
    assert (gdf["also_covers"] == "").all()
    assert gdf.is_valid.all()
    assert isinstance(gdf.index, pd.RangeIndex)
    assert gdf.set_index("adcode").loc["500229002", "name"] == "复兴街道"


def test_official_geojson_cgcs2000(tmp_path, codes):
    gdf = _grid(codes).rename(columns={"code": "XZQDM", "name": "XZQMC"})
    gdf["XZQDM"] = gdf["XZQDM"] + "000"  # 12-digit codes
    path = tmp_path / "xzj.geojson"
    gdf.to_file(path, engine="pyogrio")
    out = io.read_townships(_settings_for(path))
    _check_official(out, codes)
    expected = _grid(codes).geometry.iloc[0]
    assert out.geometry.iloc[0].equals_exact(expected, tolerance=1e-9)  # 4490 -> 4326 no-op


def test_official_gpkg_gauss_kruger(tmp_path, codes):
    gdf = _grid(codes).rename(columns={"code": "乡镇代码", "name": "乡镇名称"}).to_crs("EPSG:4545")
    path = tmp_path / "xzj.gpkg"
    gdf.to_file(path, engine="pyogrio", layer="乡镇界")
    out = io.read_townships(_settings_for(path))
    _check_official(out, codes)
    expected = _grid(codes).geometry.iloc[3]
    assert out.geometry.iloc[3].hausdorff_distance(expected) < 1e-8


def _write_gbk_shapefile(gdf: gpd.GeoDataFrame, path: Path) -> None:
    gdf.to_file(path, engine="pyogrio", encoding="gbk")
    path.with_suffix(".cpg").unlink()  # what the bureau sends: GBK dbf, no .cpg


def test_official_shapefile_gbk_without_cpg_matched_by_name(tmp_path, codes):
    gdf = _grid(codes).drop(columns="code").rename(columns={"name": "XZQMC"}).to_crs("EPSG:4545")
    gdf.loc[0, "XZQMC"] = "葛城街道办事处"
    gdf.loc[2, "XZQMC"] = "巴山镇人民政府"
    gdf.loc[3, "XZQMC"] = "坪坝"
    path = tmp_path / "xzj.shp"
    _write_gbk_shapefile(gdf, path)
    assert not path.with_suffix(".cpg").exists()
    out = io.read_townships(_settings_for(path))
    _check_official(out, codes)
    assert out.set_index("adcode").loc["500229102", "name"] == "巴山镇"


def test_invalid_and_null_geometries(tmp_path, codes):
    gdf = _grid(codes)
    left, bottom, right, top = gdf.geometry.iloc[1].bounds
    bowtie = Polygon([(left, bottom), (right, top), (right, bottom), (left, top)])
    assert not bowtie.is_valid
    gdf.loc[1, "geometry"] = bowtie
    extra = gpd.GeoDataFrame(
        {"code": ["500229110"], "name": ["咸宜镇"]}, geometry=[None], crs="EPSG:4490"
    )
    gdf = pd.concat([gdf, extra], ignore_index=True)
    path = tmp_path / "xzj.geojson"
    gdf.to_file(path, engine="pyogrio")
    with pytest.warns(UserWarning, match=r"row 25 .*no polygon geometry"):
        out = io.read_townships(_settings_for(path))
    _check_official(out, codes)
    repaired = out.set_index("adcode").geometry["500229002"]
    assert repaired.geom_type == "MultiPolygon"
    assert repaired.area == pytest.approx(0.5 * 0.02 * 0.02, rel=1e-6)  # two triangles


def test_unmatched_features_listed(tmp_path, codes):
    gdf = _grid(codes)
    gdf.loc[4, ["code", "name"]] = ["500229999", "不存在乡"]
    gdf.loc[7, ["code", "name"]] = ["", "火星镇"]
    path = tmp_path / "xzj.geojson"
    gdf.to_file(path, engine="pyogrio")
    with pytest.raises(SchemaError, match="不存在乡") as excinfo:
        io.read_townships(_settings_for(path))
    message = str(excinfo.value)
    assert "火星镇" in message
    assert "2 feature(s)" in message
    assert "xzj.geojson" in message
    # the two townships whose boxes were renamed are now missing, and say so
    assert codes["name"].iloc[4] in message
    assert codes["name"].iloc[7] in message


def test_no_code_or_name_column(tmp_path, codes):
    gdf = _grid(codes).rename(columns={"code": "foo", "name": "bar"})
    path = tmp_path / "xzj.geojson"
    gdf.to_file(path, engine="pyogrio")
    with pytest.raises(SchemaError, match="no township code column"):
        io.read_townships(_settings_for(path))


def test_no_crs_projected_raises(tmp_path, codes):
    path = tmp_path / "noprj.shp"
    _grid(codes).to_crs("EPSG:4545").to_file(path, engine="pyogrio")
    path.with_suffix(".prj").unlink()
    with pytest.raises(CRSError, match=r"noprj\.shp"):
        io.read_townships(_settings_for(path))


def test_no_crs_lonlat_assumes_cgcs2000(tmp_path, codes):
    path = tmp_path / "noprj.shp"
    _grid(codes).to_file(path, engine="pyogrio")
    path.with_suffix(".prj").unlink()
    with pytest.warns(UserWarning, match="EPSG:4490"):
        out = io.read_townships(_settings_for(path))
    _check_official(out, codes)


def test_missing_file(tmp_path):
    with pytest.raises(DataFileError, match=r"nothere\.gpkg"):
        io.read_townships(_settings_for(tmp_path / "nothere.gpkg"))
