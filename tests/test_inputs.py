"""Inputs: size limit, content sniffing, XLSX bombs, layer ids/paths, malformed layer files."""

from __future__ import annotations

import io as _io
import shutil
import time
import tracemalloc
import zipfile
from pathlib import Path

import openpyxl
import pytest

from riskmap import io
from riskmap.catalog import catalog_from_dict
from riskmap.errors import CatalogError, DataFileError, ImportFileError, LayerNotFoundError
from riskmap.project import load_project
from riskmap.readers import read_table
from riskmap.settings import Settings
from tests.conftest import catalog_raw

ROOT = Path(__file__).resolve().parent.parent
CSV = "名称,经度,纬度\n甲,108.664,31.946\n".encode()


def _xlsx_bytes(rows) -> bytes:
    wb = openpyxl.Workbook()
    for r in rows:
        wb.active.append(r)
    buf = _io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _with_sheet(sheet_xml: bytes) -> bytes:
    """A valid workbook whose sheet1.xml is replaced by `sheet_xml` (compressed)."""
    src = zipfile.ZipFile(_io.BytesIO(_xlsx_bytes([["名称", "经度", "纬度"]])))
    out = _io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for info in src.infolist():
            data = sheet_xml if info.filename == "xl/worksheets/sheet1.xml" else src.read(info)
            zf.writestr(info.filename, data, compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


NS = b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'


def _sheet(body: bytes, ns: bytes = NS, close: bytes = b"</worksheet>") -> bytes:
    return ns + b"<sheetData>" + body + b"</sheetData>" + close


# --- size limit ----------------------------------------------------------------------------


def test_upload_limit_message_is_chinese_and_names_the_limit(tmp_path):
    f = tmp_path / "survey.csv"
    f.write_bytes(b"x" * (3 * 2**20))
    with pytest.raises(ImportFileError) as info:
        io.read_import_bytes(f, max_mb=2)
    msg = str(info.value)
    assert "超过上限 2 MiB" in msg
    assert "survey.csv" in msg
    assert "3.0 MiB" in msg
    assert len(io.read_import_bytes(f, max_mb=3)) == 3 * 2**20


def test_upload_limit_configurable_from_env():
    assert Settings.from_env({"RISKMAP_UPLOAD_MAX_MB": "5"}).upload_max_mb == 5.0
    config = (ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8")
    assert "maxUploadSize = 20" in config  # the app's own cap matches the default


# --- sniffing ------------------------------------------------------------------------------


def test_xlsx_name_with_csv_content_read_as_csv():
    table = read_table(CSV, "真的是表格.xlsx")
    assert table.fmt == "csv"
    assert table.frame.iloc[0].tolist() == ["甲", "108.664", "31.946"]


def test_csv_name_with_xlsx_content_read_as_xlsx():
    table = read_table(_xlsx_bytes([["名称", "经度", "纬度"], ["甲", 108.664, 31.946]]), "a.csv")
    assert table.fmt == "xlsx"
    assert table.frame.iloc[0].tolist() == ["甲", "108.664", "31.946"]


def _plain_zip() -> bytes:
    buf = _io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a.txt", "hi")
    return buf.getvalue()


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"PK\x03\x04" + b"\x00" * 60, "XLSX"),  # zip magic, broken archive
        (_plain_zip(), "XLSX"),  # a real ZIP that is no workbook
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "二进制"),
        (b"%PDF-1.7\n" + bytes(range(256)) * 4, "二进制"),
    ],
)
def test_csv_name_with_other_content_is_a_clear_error(data, why):
    with pytest.raises(ImportFileError, match=why) as info:
        read_table(data, "upload.csv")
    assert "upload.csv" in str(info.value)


# --- bombs ---------------------------------------------------------------------------------


def _refused_fast(data: bytes, match: str, **kw) -> None:
    start = time.monotonic()
    with pytest.raises(ImportFileError, match=match):
        read_table(data, "bomb.xlsx", **kw)
    elapsed = time.monotonic() - start
    assert elapsed < 3, elapsed
    tracemalloc.start()  # again, measured (tracemalloc slows Python down many times)
    try:
        with pytest.raises(ImportFileError, match=match):
            read_table(data, "bomb.xlsx", **kw)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2**20, peak  # bounded memory: the sheet is streamed, not built


def test_million_rows_refused_before_parsing():
    data = _with_sheet(_sheet(b"<row/>" * 1_100_000))
    assert len(data) < 100_000  # a small upload...
    _refused_fast(data, "行数超过上限")  # ...refused without parsing 1.1 million rows


def test_million_rows_with_cells_refused_under_custom_cap():
    row = b'<row><c t="inlineStr"><is><t>x</t></is></c></row>'
    _refused_fast(_with_sheet(_sheet(row * 50_000)), "行数超过上限", max_rows=1000)


def test_one_huge_row_refused():
    data = _with_sheet(_sheet(b"<row>" + b"<c/>" * 2_000_000 + b"</row>"))
    _refused_fast(data, "一行超过")


def test_ten_thousand_columns_refused():
    cells = b"".join(b"<c><v>1</v></c>" for _ in range(10_000))
    _refused_fast(_with_sheet(_sheet(b"<row>" + cells + b"</row>") * 3), "列数")


def test_prefixed_namespace_and_whitespace_do_not_evade_the_count():
    ns = b'<x:worksheet xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    body = b"<x:row\n>" + b"<x:c\t/>" * 20_000 + b"</x:row>"
    data = _with_sheet(ns + b"<x:sheetData>" + body + b"</x:sheetData></x:worksheet>")
    _refused_fast(data, "一行超过")


def test_total_cells_cap(monkeypatch):
    from riskmap import readers

    monkeypatch.setattr(readers, "MAX_XLSX_CELLS", 1000)
    prescan = readers._prescan_xlsx  # noqa: SLF001
    monkeypatch.setattr(prescan, "__kwdefaults__", {"max_cells": 1000, "max_row_cells": 16384})
    body = b"<row>" + b"<c/>" * 100 + b"</row>"
    _refused_fast(_with_sheet(_sheet(body * 20)), "单元格数超过上限")


def test_uncompressed_size_cap_and_lying_zip_header():
    data = _with_sheet(_sheet(b"<row/>" * 10))
    with pytest.raises(ImportFileError, match="超过上限"):
        read_table(data, "big.xlsx", max_uncompressed=1000)
    # a header that understates the size: the stream stops at the declared size -> error
    raw = bytearray(
        _with_sheet(_sheet(b'<row><c t="inlineStr"><is><t>x</t></is></c></row>' * 5000))
    )
    cd = raw.rfind(b"PK\x01\x02")
    while cd != -1:
        name_len = int.from_bytes(raw[cd + 28 : cd + 30], "little")
        name = bytes(raw[cd + 46 : cd + 46 + name_len])
        if name == b"xl/worksheets/sheet1.xml":
            raw[cd + 24 : cd + 28] = (100).to_bytes(4, "little")
        cd = raw.rfind(b"PK\x01\x02", 0, cd)
    with pytest.raises(ImportFileError):
        read_table(bytes(raw), "liar.xlsx")


def test_legit_workbook_with_styled_empty_columns_still_reads():
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["名称", "经度", "纬度"])
    ws.append(["甲", 108.664, 31.946])
    ws.cell(row=2, column=300).value = None
    ws.cell(row=2, column=300).number_format = "@"  # styled, empty: Excel pads like this
    buf = _io.BytesIO()
    wb.save(buf)
    table = read_table(buf.getvalue(), "styled.xlsx")
    assert table.frame.iloc[0].tolist() == ["甲", "108.664", "31.946"]


# --- layer ids and paths -------------------------------------------------------------------


@pytest.mark.parametrize(
    "layer_id", ["../etc/passwd", "geohazard/../../x", "/etc/passwd", "GEOHAZARD", "", "a" * 40]
)
def test_layer_ids_are_looked_up_never_used_as_paths(layer_id):
    cat = catalog_from_dict(catalog_raw())
    with pytest.raises(LayerNotFoundError, match="未知图层"):
        cat.get(layer_id)


@pytest.mark.parametrize(
    "file", ["../secrets.geojson", "/etc/passwd.geojson", "a/b.geojson", "..geojson", "x.json",
             "C:\\\\x.geojson", "x.geojson\x00.txt"],
)  # fmt: skip
def test_catalog_file_with_path_is_refused(file):
    raw = catalog_raw()
    raw["layers"]["geohazard"]["file"] = file
    with pytest.raises(CatalogError, match="file"):
        catalog_from_dict(raw)


@pytest.mark.parametrize("layer_id", ["../x", "Geo", "1abc", "a-b"])
def test_catalog_layer_id_pattern_enforced(layer_id):
    raw = catalog_raw()
    raw["layers"][layer_id] = raw["layers"].pop("bridge")
    raw["layers"][layer_id]["file"] = "other.geojson"
    with pytest.raises(CatalogError, match="id must match"):
        catalog_from_dict(raw)


def test_every_layer_path_stays_in_layers_dir():
    cat = catalog_from_dict(catalog_raw())
    base = Path("/srv/riskmap/layers")
    for spec in cat:
        assert spec.path(base).parent == base


# --- malformed layer files -----------------------------------------------------------------


FEATURE = '{"type":"Feature","properties":{"uid":"G1","name":"甲"},"geometry":%s}'
BAD_LAYERS = {
    "truncated": '{"type":"FeatureCollection","features":[{"type":"Feature",',
    "not json": "uid,name\nG1,甲\n",
    "empty": "",
    "binary": "\x00\x01\x02PK",
    "json array": "[1, 2, 3]",
    "json but not a collection": '{"hello": "world"}',
    "geometry wrong type": '{"type":"FeatureCollection","features":['
    + FEATURE % '{"type":"Pointy","coordinates":[108.6,31.9]}'
    + "]}",
    "geometry bad coordinates": '{"type":"FeatureCollection","features":['
    + FEATURE % '{"type":"Point","coordinates":["a","b"]}'
    + "]}",
    "features not a list": '{"type":"FeatureCollection","features":{"a":1}}',
    "nan literal": '{"type":"FeatureCollection","features":['
    + FEATURE % '{"type":"Point","coordinates":[NaN,31.9]}'
    + "]}",
}


@pytest.fixture
def project_copy(tmp_path):
    layers = tmp_path / "layers"
    shutil.copytree(Settings().layers_dir, layers, ignore=shutil.ignore_patterns(".*"))
    return Settings.from_env({}, layers_dir=layers)


def _load_error(settings: Settings) -> str | None:
    """The DataFileError message of loading the project, or None; anything else propagates."""
    try:
        load_project(settings)
    except DataFileError as exc:
        return str(exc)
    return None


@pytest.mark.parametrize("name", sorted(BAD_LAYERS))
def test_malformed_layer_gives_data_file_error_naming_the_file(name, project_copy):
    path = project_copy.layers_dir / "bridge.geojson"
    path.write_bytes(BAD_LAYERS[name].encode("utf-8"))
    message = _load_error(project_copy)  # never an uncaught exception
    assert message is not None, name
    assert "bridge.geojson" in message
