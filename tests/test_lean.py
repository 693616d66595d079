"""Issue 15: the layer pipeline keeps text Arrow-backed and leaves its input untouched; the
CLI's start-up does not load the heavy libraries. Checked on the bundled geohazard layer."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pyarrow as pa

from riskmap import io
from riskmap.layers import prepare_layer
from riskmap.schema import coerce_layer
from riskmap.settings import Settings

TEXT_FIELDS = ["uid", "name", "township", "township_code", "village", "status", "hazard_type"]


def _raw_and_spec():
    settings = Settings()
    raw = io.read_layer_file(settings.layers_dir / "geohazard.geojson")
    return settings, raw, io.read_catalog(settings).get("geohazard")


def test_prepared_text_is_arrow_backed_and_input_untouched():
    settings, raw, spec = _raw_and_spec()
    before = raw.copy(deep=True)
    layer = prepare_layer(raw, spec, io.read_townships(settings), metric_crs=settings.metric_crs)
    gdf = layer.gdf
    for col in TEXT_FIELDS:
        assert isinstance(gdf[col].dtype, pd.StringDtype), col
        assert gdf[col].dtype.storage == "pyarrow", col
    # every bundled point lies in a township: the joined codes are 9-digit text, no gap
    assert gdf["township_code"].str.fullmatch(r"\d{9}").all()
    # shallow copies + copy-on-write: the caller's frame is exactly as it was
    pd.testing.assert_frame_equal(raw, before)
    # the shares table carries the same Arrow text, one row per located point
    assert len(layer.shares) == int(gdf["township_code"].notna().sum())
    assert layer.shares["key"].tolist() == gdf["uid"].tolist()


def test_clean_text_column_is_shared_not_copied():
    _, raw, spec = _raw_and_spec()
    # a column with no blank cell and nothing to strip in the bundled data
    assert not raw["name"].isna().any()
    assert (raw["name"].str.strip() == raw["name"]).all()
    out = coerce_layer(raw, spec)
    before_buf = pa.array(raw["name"].array).buffers()[-1]
    after_buf = pa.array(out["name"].array).buffers()[-1]
    assert after_buf.address == before_buf.address  # same Arrow data buffer
    # a column that needs stripping is copied, stripped, and blank becomes missing
    dirty = raw.assign(name=[" 甲 ", "", *raw["name"].iloc[2:]])
    got = coerce_layer(dirty, spec)["name"]
    assert got.iloc[0] == "甲"
    assert pd.isna(got.iloc[1])
    assert got.iloc[2:].tolist() == raw["name"].iloc[2:].tolist()


def test_cli_start_up_loads_no_heavy_library():
    code = (
        "import sys, json; import riskmap.cli; "
        "print(json.dumps(sorted(m for m in ('pandas', 'geopandas', 'openpyxl', 'folium',"
        " 'streamlit', 'altair') if m in sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    assert json.loads(out) == []
