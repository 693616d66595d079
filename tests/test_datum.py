"""c27: a boundary file whose datum PROJ converts only approximately loads with a warning."""

from __future__ import annotations

import warnings

import pytest
from click.testing import CliRunner

from riskmap import io
from riskmap.cli import main
from riskmap.coords import datum_warning
from riskmap.settings import Settings
from tests.conftest import CASES

C27 = CASES / "c27_townships_xian80.gpkg"


@pytest.mark.parametrize(
    ("crs", "warns"),
    [
        ("EPSG:4326", False),  # WGS84
        ("EPSG:4490", False),  # CGCS2000 geographic
        ("EPSG:4545", False),  # CGCS2000 3° GK CM 108E
        ("EPSG:4524", False),  # CGCS2000 3° GK zone 36
        ("EPSG:32649", False),  # WGS84 UTM 49N
        ("EPSG:2381", True),  # Xian 1980 3° GK CM 108E (c27)
        ("EPSG:4610", True),  # Xian 1980 geographic
        ("EPSG:4214", True),  # Beijing 1954 geographic
        ("EPSG:2433", True),  # Beijing 1954 3° GK CM 108E
        (None, False),
    ],
)
def test_datum_warning_table(crs, warns):
    text = datum_warning(crs, source="界线.gpkg")
    assert (text is not None) is warns
    if warns:
        assert "界线.gpkg" in text
        assert "ballpark" in text
        assert "CGCS2000" in text  # says how to fix it
        assert "参数" in text


def test_c27_read_townships_warns_and_records_it():
    settings = Settings.from_env({}, townships_path=C27)
    with pytest.warns(UserWarning, match="近似"):
        gdf = io.read_townships(settings)
    assert len(gdf.attrs["datum_warnings"]) == 1
    assert "EPSG:2381" in gdf.attrs["datum_warnings"][0]


def test_bundled_townships_load_without_datum_warning(settings):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gdf = io.read_townships(settings)
    assert gdf.attrs["datum_warnings"] == []


def test_c27_cli_shows_the_warning():
    result = CliRunner().invoke(main, ["summary", "--townships", str(C27)])
    assert result.exit_code == 0, result.output
    assert "警告:" in result.output
    assert "Xian 1980" in result.output


def test_county_outline_in_xian80_warns(tmp_path):
    import shutil

    import geopandas as gpd

    base = Settings()
    data = tmp_path / "data"
    shutil.copytree(base.data_dir, data)
    county = gpd.read_file(base.county_path).to_crs("EPSG:2381")
    (data / "county.geojson").unlink()
    county.to_file(data / "county.geojson")
    settings = Settings.from_env({}, data_dir=data)
    with pytest.warns(UserWarning, match="Xian 1980"):
        gdf = io.read_county(settings)
    assert len(gdf.attrs["datum_warnings"]) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert io.read_county(base).attrs["datum_warnings"] == []
