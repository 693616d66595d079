"""Fuzzing: layer files and XLSX-ish uploads give clear errors, never crashes, never writes."""

from __future__ import annotations

import io as _io
import json
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from riskmap import io
from riskmap.errors import DataFileError
from riskmap.importers import plan_import
from riskmap.settings import Settings

FUZZ = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


def _error(path: Path) -> str | None:
    """The DataFileError message of reading `path`, or None; anything else propagates."""
    try:
        gdf = io.read_layer_file(path)
    except DataFileError as exc:
        return str(exc)
    assert gdf.crs is not None
    return None


@FUZZ
@given(data=st.binary(max_size=600))
def test_arbitrary_bytes_as_layer_file_raise_only_data_file_error(data, tmp_path):
    path = tmp_path / "layer.geojson"
    path.write_bytes(data)
    message = _error(path)
    assert message is None or "layer.geojson" in message


_json_value = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)
_geometry = st.one_of(
    st.none(),
    _json_value,
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(["Point", "Polygon", "LineString", "Pointy", "", "MultiPoint"]),
            "coordinates": _json_value,
        }
    ),
)
_feature = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["Feature", "feature", "X"]),
        "properties": st.one_of(
            st.none(),
            st.dictionaries(st.sampled_from(["uid", "name", "x"]), _json_value, max_size=3),
        ),
        "geometry": _geometry,
    }
)


@FUZZ
@given(features=st.lists(_feature, max_size=4), cut=st.integers(0, 400))
def test_garbled_geojson_layers_raise_only_data_file_error(features, cut, tmp_path):
    text = json.dumps({"type": "FeatureCollection", "features": features})
    path = tmp_path / "garbled.geojson"
    path.write_text(text[: max(cut, len(text) // 2)] if cut % 3 == 0 else text, encoding="utf-8")
    message = _error(path)
    assert message is None or "garbled.geojson" in message


_member = st.tuples(
    st.sampled_from(
        ["[Content_Types].xml", "xl/workbook.xml", "xl/worksheets/sheet1.xml", "_rels/.rels",
         "xl/sharedStrings.xml", "xl/_rels/workbook.xml.rels", "../evil.xml", "a"]
    ),
    st.one_of(
        st.binary(max_size=200),
        st.sampled_from(
            [b"<worksheet><sheetData><row><c><v>1</v></c></row></sheetData></worksheet>",
             b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;&a;</x>',
             b"<worksheet><sheetData>" + b"<row/>" * 100 + b"</sheetData></worksheet>",
             b"<x:worksheet xmlns:x='y'><x:row>"]
        ),
    ),
)  # fmt: skip


@pytest.fixture
def planning(tmp_path, survey, gdf_townships, gdf_county, monkeypatch):
    def forbidden(*_a, **_k):
        msg = "planning must not write"
        raise AssertionError(msg)

    for name in ("write_layer", "write_text_atomic", "write_bytes_atomic"):
        monkeypatch.setattr(io, name, forbidden)
    cfg = Settings.from_env({}, root=tmp_path)
    return cfg, {
        "existing": io.empty_layer(survey),
        "gdf_townships": gdf_townships,
        "gdf_county": gdf_county,
    }


@pytest.fixture
def survey(catalog):
    return catalog.get("survey")


@FUZZ
@given(members=st.lists(_member, min_size=1, max_size=5, unique_by=lambda m: m[0]))
def test_xlsx_ish_zips_never_raise_never_write(members, survey, planning):
    cfg, kw = planning
    buf = _io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members:
            zf.writestr(name, data)
    plan = plan_import(buf.getvalue(), "fuzz.xlsx", survey, **kw)
    assert plan.report.file_error or plan.counts["added"] >= 0
    assert not plan.can_commit or plan.report.file_error == ""
    assert not any(Path(cfg.root).rglob("*"))
