"""Survey tables (CSV/XLSX bytes) → a checked import plan for one layer.

Pure except `commit_import`.

The flow every entry point uses (CLI ``riskmap import``, the app's upload page):

1. `plan_import` reads the bytes (`riskmap.readers.read_table`), maps columns to the
   layer's fields (`guess_mapping`, overridable), converts coordinates to WGS84
   (`riskmap.coords.to_wgs84`), validates every row against the catalog, rejects points
   outside the county, joins the rest to townships and computes derived grades
   (`riskmap.layers.prepare_layer`). It writes nothing and **never raises for bad content**:
   an unreadable file becomes a report with a file-level error.
2. The user reviews `ImportPlan.report` (counts, per-row messages with Excel row numbers).
3. `commit_import` writes ``plan.gdf_result`` through the store (`riskmap.store.Store`:
   atomic, previous version kept, audited); `Store.undo` undoes it.

Policy (see ``docs/import.md``)
-------------------------------
* **Good rows are imported, the rest reported.** A row with any error (not located, outside
  the county, missing/invalid required or typed value, duplicate uid in the file) is never
  written; it is listed with its row number and reasons and kept in ``plan.gdf_rejected``
  for review. Rows with warnings (lon/lat swapped, projected values under a degree
  declaration, declared township ≠ joined township, stated grade ≠ derived grade, default
  applied) are written, with the warnings in their ``flags`` (核查提示) field.
* **The whole file is refused** only when it cannot be read, has no data rows, has no
  coordinate columns, or the explicit mapping is invalid (file-level error; no rows).
* **Unknown columns are kept** as extra properties under their original header (renamed
  ``<header>(原表)`` when the header equals a field key) and listed in the report.
* **uid**: a row without one gets ``<layer>-<file stem>-<row>`` (noted). A uid already in
  the layer **updates** that feature: non-blank cells of mapped columns and the geometry
  replace the old values; blank cells keep the old value; every change is listed old → new.
  A uid repeated inside the file is an error on each of its rows.
* ``source`` is set to the file name and ``updated_at`` to the import date when blank; a new
  point with no status starts as 在册.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io as _bytesio
import math
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

import geopandas as gpd
import shapely

from riskmap import cells as tc
from riskmap.coords import (
    CRS_CHOICES,
    LEVEL_ERROR,
    LEVEL_INFO,
    LEVEL_WARNING,
    to_wgs84,
)
from riskmap.derive import FLAG_SEP
from riskmap.errors import CRSError, ImportFileError, SchemaError, StaleVersionError
from riskmap.io import empty_layer
from riskmap.layers import prepare_layer
from riskmap.readers import MAX_COLUMNS, MAX_ROWS, read_table
from riskmap.schema import coerce_layer, field_problem, is_blank

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from riskmap.catalog import LayerSpec
    from riskmap.store import Store

COORD_ROLES = ("lon", "lat", "x", "y")
"""Mapping targets for coordinate columns: lon/lat (degrees) and x/y (projected metres)."""

SYNONYMS: Mapping[str, tuple[str, ...]] = {
    "lon": ("经度", "东经", "x", "lon", "lng", "long", "longitude", "经度(°)", "经度e"),
    "lat": ("纬度", "北纬", "y", "lat", "latitude", "纬度(°)", "纬度n"),
    "x": ("x坐标", "横坐标", "东坐标", "easting", "x(m)"),
    "y": ("y坐标", "纵坐标", "北坐标", "northing", "y(m)"),
    "name": ("名称", "隐患点名称", "点位名称", "灾害点名称", "name"),
    "uid": ("编号", "统一编号", "点号", "uid", "id"),
    "threat_people": ("威胁人数", "威胁人口"),
    "threat_households": ("威胁户数",),
    "hazard_type": ("灾害类型",),
    "township_declared": (
        "乡镇",
        "所属乡镇",
        "乡镇代码",
        "乡镇(街道)",
        "乡镇街道",
        "township",
        "township_code",
        "township_declared",
    ),
    "village": ("村", "村社区", "村/社区", "所属村"),
    "note": ("备注",),
    "resp_phone": ("联系电话", "电话"),
    "resp_name": ("上报人", "责任人"),
}
"""Known column names (normalised: NFKC, lower case, no spaces, no ``*``) → field key or role.

They win over the catalog's own keys and labels (``乡镇代码`` is the label of the joined
``township_code``, but a file's 乡镇代码 is what the surveyor declared)."""

COMPUTED = frozenset({"township", "township_code", "townships", "flags", "join_flag"})
"""Fields set by the join/derivation, never taken from a file column."""

_UNIT_RE = re.compile(r"[(\[【（][^()\[\]【】（）]*[)\]】）]$")
_FORMULA_LEAD = ("=", "+", "-", "@", "\t", "\r")
_ILLEGAL_XML_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


# --- column mapping --------------------------------------------------------------------------


def normalise_header(header: str) -> str:
    """NFKC, strip, lower-case, drop spaces and ``*`` (required markers)."""
    text = unicodedata.normalize("NFKC", str(header)).strip().lower()
    return re.sub(r"[\s*]", "", text)


def _header_keys(header: str) -> tuple[str, ...]:
    norm = normalise_header(header)
    bare = _UNIT_RE.sub("", norm)
    return (norm, bare) if bare and bare != norm else (norm,)


def _targets(spec: LayerSpec) -> list[dict[str, set[str]]]:
    """Names per target in priority order: synonyms, field keys, labels/headers."""
    syn: dict[str, set[str]] = {}
    for target, names in SYNONYMS.items():
        if target in COORD_ROLES or target in spec.fields:
            syn[target] = {normalise_header(n) for n in names}
    keys = {k: {k.lower()} for k in spec.fields if k not in COMPUTED}
    labels = {
        k: {normalise_header(f.label), normalise_header(f.header)}
        for k, f in spec.fields.items()
        if k not in COMPUTED
    }
    return [syn, keys, labels]


def _candidates(header: str, levels: list[dict[str, set[str]]]) -> list[str]:
    names = set(_header_keys(header))
    for level in levels:
        hits = [t for t, ns in level.items() if names & ns]
        if hits:
            return hits
    return []


def known_header(spec: LayerSpec) -> Any:  # noqa: ANN401 - a predicate
    """Return a predicate: True for a cell that is a known column name for `spec`."""
    levels = _targets(spec)
    return lambda cell: bool(_candidates(cell, levels))


def match_columns(
    columns: Iterable[str], spec: LayerSpec
) -> tuple[dict[str, str], dict[str, list[str]]]:
    """
    Match source columns to fields and coordinate roles.

    Headers are compared after NFKC, strip, lower-casing and dropping spaces, ``*`` and a
    trailing unit in brackets (``威胁人数（人）`` = ``威胁人数``). Synonyms (`SYNONYMS`) win
    over field keys, which win over Chinese labels.

    Returns
    -------
    mapping, ambiguous
        ``{source column: target}`` for unambiguous matches, and ``{source column:
        [candidate targets]}`` for columns not mapped because they match several targets
        or share their target with another column. When several columns claim
        ``township_declared``, a code column (``…代码``/``…code``) wins.
    """
    levels = _targets(spec)
    mapping: dict[str, str] = {}
    ambiguous: dict[str, list[str]] = {}
    for col in columns:
        hits = _candidates(col, levels)
        if len(hits) == 1:
            mapping[col] = hits[0]
        elif hits:
            ambiguous[col] = sorted(hits)
    by_target: dict[str, list[str]] = {}
    for col, target in mapping.items():
        by_target.setdefault(target, []).append(col)
    for target, cols in by_target.items():
        if len(cols) < 2:  # noqa: PLR2004
            continue
        if target == "township_declared":
            codes = [c for c in cols if "代码" in c or "code" in c.lower()]
            if len(codes) == 1:
                for c in cols:
                    if c != codes[0]:
                        del mapping[c]
                continue
        for c in cols:
            del mapping[c]
            ambiguous[c] = [target]
    return mapping, ambiguous


def guess_mapping(columns: Iterable[str], spec: LayerSpec) -> dict[str, str]:
    """
    Guess which source column holds which field.

    Parameters
    ----------
    columns
        Source column headers as read.
    spec
        The target layer's declaration.

    Returns
    -------
    mapping
        ``{source column: field key | "lon" | "lat" | "x" | "y"}``; columns that match
        nothing or several targets are left out (see `match_columns` for the ambiguous ones).
    """
    return match_columns(columns, spec)[0]


# --- report -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """One finding on one row: source column, cell value, Chinese reason and its level."""

    column: str
    value: str
    reason: str
    level: str = LEVEL_ERROR

    def to_json_dict(self) -> dict[str, str]:
        """``{"column", "value", "reason"}``."""
        return {"column": self.column, "value": self.value, "reason": self.reason}


@dataclass
class RowReport:
    """
    What happened to one input row.

    Attributes
    ----------
    row
        Row number as the user sees it in Excel (1-based; header row + offset).
    status
        ``"ok"``, ``"warning"`` (imported, check the messages) or ``"error"`` (not imported).
    lon, lat
        WGS84 degrees after conversion, or None when the row is not located.
    township_code
        9-digit code of the joined township (imported rows), else None.
    uid
        The row's uid (as given or generated), or None.
    action
        ``"add"``, ``"update"`` or ``"reject"``.
    messages
        Findings, Chinese reasons.
    """

    row: int
    status: str = "ok"
    lon: float | None = None
    lat: float | None = None
    township_code: str | None = None
    uid: str | None = None
    action: str = "add"
    messages: list[Message] = field(default_factory=list)

    def to_json_dict(self) -> dict[str, Any]:
        """``{"row", "status", "lon", "lat", "township_code", "messages"}``; no NaN."""
        return {
            "row": self.row,
            "status": self.status,
            "lon": _finite(self.lon),
            "lat": _finite(self.lat),
            "township_code": self.township_code,
            "messages": [m.to_json_dict() for m in self.messages],
        }


def _finite(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), 8)


@dataclass
class ImportReport:
    """
    Everything the user needs to judge an import before committing it.

    Attributes
    ----------
    filename, layer, crs
        File name, target layer id, declared coordinate system.
    encoding, delimiter, sheet, header_row
        What the reader detected (``""`` when not applicable; header_row 1-based).
    mapping
        ``{source column: field key | coordinate role}`` actually used.
    unknown_columns
        Source columns kept as extra properties (not mapped to a field).
    ambiguous_columns
        ``{source column: [candidate targets]}`` not auto-mapped.
    notes
        File-level notes in Chinese (encoding, conversions, skipped rows, generated uids, …).
    file_error
        Why the whole file was refused, or None.
    rows
        One `RowReport` per non-blank input row, in file order.
    """

    filename: str
    layer: str
    crs: str = "wgs84"
    encoding: str = ""
    delimiter: str = ""
    sheet: str = ""
    header_row: int | None = None
    mapping: dict[str, str] = field(default_factory=dict)
    unknown_columns: list[str] = field(default_factory=list)
    ambiguous_columns: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    file_error: str | None = None
    rows: list[RowReport] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        """``{"rows", "added", "updated", "rejected", "warnings"}``."""
        actions = [r.action for r in self.rows]
        return {
            "rows": len(self.rows),
            "added": actions.count("add"),
            "updated": actions.count("update"),
            "rejected": actions.count("reject"),
            "warnings": sum(r.status == "warning" for r in self.rows),
        }

    def to_json_dict(self) -> dict[str, Any]:
        """
        JSON-ready dict (strict JSON: no NaN).

        Returns
        -------
        data
            ``{"encoding", "rows": [{"row", "status", "lon", "lat", "township_code",
            "messages": [{"column", "value", "reason"}]}], "filename", "layer", "crs",
            "delimiter", "sheet", "header_row", "mapping", "unknown_columns",
            "ambiguous_columns", "notes", "file_error", "counts"}``.
        """
        return {
            "encoding": self.encoding,
            "rows": [r.to_json_dict() for r in self.rows],
            "filename": self.filename,
            "layer": self.layer,
            "crs": self.crs,
            "delimiter": self.delimiter,
            "sheet": self.sheet,
            "header_row": self.header_row,
            "mapping": dict(self.mapping),
            "unknown_columns": list(self.unknown_columns),
            "ambiguous_columns": {k: list(v) for k, v in self.ambiguous_columns.items()},
            "notes": list(self.notes),
            "file_error": self.file_error,
            "counts": self.counts,
        }


def safe_cell_text(value: object) -> str:
    """
    Text for a spreadsheet/CSV cell that no spreadsheet evaluates.

    Blank → ``""``; text starting with ``= + - @`` TAB or CR gets a leading ``'`` (OWASP CSV
    injection advice); XML-illegal control characters are removed.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    text = _ILLEGAL_XML_RE.sub("", str(value))
    return f"'{text}" if text.startswith(_FORMULA_LEAD) else text


def report_frame(report: ImportReport) -> pd.DataFrame:
    """
    One row per message (rows without messages once), for display and export.

    Returns
    -------
    frame
        Columns 行号, 状态, 处理, 统一编号, 经度, 纬度, 乡镇代码, 列, 值, 原因 (text/None).
    """
    status_cn = {"ok": "正常", "warning": "警告", "error": "错误"}
    action_cn = {"add": "新增", "update": "更新", "reject": "未导入"}
    records = []
    for r in report.rows:
        base = {
            "行号": r.row,
            "状态": status_cn.get(r.status, r.status),
            "处理": action_cn.get(r.action, r.action),
            "统一编号": r.uid,
            "经度": None if _finite(r.lon) is None else f"{r.lon:.7f}",
            "纬度": None if _finite(r.lat) is None else f"{r.lat:.7f}",
            "乡镇代码": r.township_code,
        }
        if not r.messages:
            records.append({**base, "列": None, "值": None, "原因": None})
        records.extend(
            {**base, "列": m.column, "值": m.value, "原因": m.reason} for m in r.messages
        )
    columns = ["行号", "状态", "处理", "统一编号", "经度", "纬度", "乡镇代码", "列", "值", "原因"]
    return pd.DataFrame(records, columns=columns)


def report_xlsx(report: ImportReport) -> bytes:
    """
    Render the report as an Excel workbook: sheet 导入结果 (one row per message) and 说明.

    Every cell is a **text** cell (never a formula); text starting with ``= + - @`` is
    neutralised by `safe_cell_text`.

    Returns
    -------
    data
        XLSX bytes.
    """
    from openpyxl import Workbook  # noqa: PLC0415 - heavy; only for this export

    wb = Workbook()
    ws = wb.active
    ws.title = "导入结果"
    frame = report_frame(report)

    def put(sheet: Any, row: int, values: Iterable[object]) -> None:  # noqa: ANN401
        for col, value in enumerate(values, start=1):
            cell = sheet.cell(row=row, column=col)
            cell.value = safe_cell_text(value)
            cell.data_type = "s"

    put(ws, 1, frame.columns)
    for i, rec in enumerate(frame.itertuples(index=False), start=2):
        put(ws, i, rec)
    info = wb.create_sheet("说明")
    counts = report.counts
    lines: list[tuple[object, object]] = [
        ("文件", report.filename),
        ("图层", report.layer),
        ("坐标系", report.crs),
        ("编码", report.encoding),
        ("分隔符", {"\t": "TAB"}.get(report.delimiter, report.delimiter)),
        ("工作表", report.sheet),
        ("列名所在行", report.header_row),
        ("文件错误", report.file_error),
        ("新增", counts["added"]),
        ("更新", counts["updated"]),
        ("未导入", counts["rejected"]),
        ("警告", counts["warnings"]),
    ]
    lines += [(f"列映射: {k}", v) for k, v in report.mapping.items()]
    lines += [("保留为附加属性的列", c) for c in report.unknown_columns]
    lines += [
        ("未能自动映射的列", f"{k}: {'/'.join(v)}") for k, v in report.ambiguous_columns.items()
    ]
    lines += [("说明", n) for n in report.notes]
    for i, pair in enumerate(lines, start=1):
        put(info, i, pair)
    buf = _bytesio.BytesIO()
    wb.save(buf)
    return buf.getvalue()


# --- plan -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldChange:
    """One field of an existing feature changed by an import."""

    field: str
    label: str
    old: str | None
    new: str | None


@dataclass
class ImportPlan:
    """
    The outcome of `plan_import`: what would be written, and the report. Nothing is written.

    Attributes
    ----------
    report
        `ImportReport`.
    layer_id, filename
        Target layer and source file name.
    gdf_new
        Rows to add, prepared (typed, derived, joined, flagged), EPSG:4326.
    gdf_updated
        Existing features the import changes, after the change, with a ``changes`` text
        column (``名称: 旧 → 新; …``); structured in `changes`.
    changes
        ``{uid: [FieldChange]}`` for every updated feature.
    gdf_rejected
        Rows not imported, raw text values (blank = None), geometry where located (else
        None), with ``_row`` (Excel row) and ``_reasons``; for "held for review" screens.
    gdf_result
        The whole layer after the import (existing order; new rows appended), EPSG:4326.
    existing_fingerprint
        Fingerprint of the layer the plan was made against (`layer_fingerprint`);
        `commit_import` refuses when the layer changed since.
    """

    report: ImportReport
    layer_id: str
    filename: str
    gdf_new: gpd.GeoDataFrame
    gdf_updated: gpd.GeoDataFrame
    changes: dict[str, list[FieldChange]]
    gdf_rejected: gpd.GeoDataFrame
    gdf_result: gpd.GeoDataFrame
    existing_fingerprint: str = ""

    @property
    def counts(self) -> dict[str, int]:
        """``{"added", "updated", "rejected"}`` as recorded in the history log."""
        c = self.report.counts
        return {"added": c["added"], "updated": c["updated"], "rejected": c["rejected"]}

    @property
    def ok(self) -> bool:
        """True when the file was read and every row is imported (warnings allowed)."""
        return self.report.file_error is None and self.report.counts["rejected"] == 0

    @property
    def can_commit(self) -> bool:
        """True when the file was read and at least one row would be added or updated."""
        c = self.report.counts
        return self.report.file_error is None and (c["added"] + c["updated"]) > 0


def layer_fingerprint(gdf: gpd.GeoDataFrame, key: str = "uid") -> str:
    """
    SHA-256 over a layer's keys and geometries (WKB), order-sensitive.

    Used to detect that a layer changed between preview and commit.
    """
    h = hashlib.sha256()
    keys = gdf[key].astype(object).where(gdf[key].notna(), "") if key in gdf.columns else []
    h.update("\x1f".join(map(str, keys)).encode("utf-8"))
    if len(gdf):
        wkb = shapely.to_wkb(np.asarray(gdf.geometry.to_numpy(), dtype=object))
        for item in wkb:
            h.update(item or b"\x00")
    return h.hexdigest()


def _empty_gdf(columns: Iterable[str] = ()) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {c: pd.Series(dtype=object) for c in columns}, geometry=[], crs="EPSG:4326"
    )


def _county_geometry(gdf_county: Any) -> Any:  # noqa: ANN401 - GeoDataFrame/GeoSeries/geometry
    if gdf_county is None:
        return None
    if isinstance(gdf_county, (gpd.GeoDataFrame, gpd.GeoSeries)):
        geo = gdf_county.geometry if isinstance(gdf_county, gpd.GeoDataFrame) else gdf_county
        if geo.crs is not None and not geo.crs.equals("EPSG:4326"):
            geo = geo.to_crs("EPSG:4326")
        return geo.union_all()
    return gdf_county


def _resolve_explicit(
    explicit: Mapping[str, str | None], columns: list[str], spec: LayerSpec, report: ImportReport
) -> dict[str, str | None]:
    """Check a user mapping; targets may be keys, labels or coordinate roles."""
    by_label = {normalise_header(f.label): k for k, f in spec.fields.items()}
    by_label |= {normalise_header(f.header): k for k, f in spec.fields.items()}
    out: dict[str, str | None] = {}
    problems = []
    for col, target in explicit.items():
        if col not in columns:
            report.notes.append(f"映射中的列「{col}」不在文件中，已忽略")
            continue
        if target is None or str(target).strip() == "":
            out[col] = None
            continue
        t = str(target).strip()
        if t in COORD_ROLES or (t in spec.fields and t not in COMPUTED):
            out[col] = t
        elif (k := by_label.get(normalise_header(t))) is not None and k not in COMPUTED:
            out[col] = k
        else:
            problems.append(f"「{col}」→「{t}」: 不是图层 {spec.id} 的字段")
    if problems:
        report.file_error = "列映射无效: " + "; ".join(problems)
    return out


def _finish(
    report: ImportReport, spec: LayerSpec, existing: gpd.GeoDataFrame, filename: str
) -> ImportPlan:
    """Return a plan with nothing to write (file-level error)."""
    gdf_existing = existing if len(existing) else _empty_gdf(spec.fields)
    return ImportPlan(
        report=report,
        layer_id=spec.id,
        filename=filename,
        gdf_new=_empty_gdf(spec.fields),
        gdf_updated=_empty_gdf(spec.fields),
        changes={},
        gdf_rejected=_empty_gdf(),
        gdf_result=gdf_existing,
        existing_fingerprint=layer_fingerprint(existing, spec.key),
    )


def _field_errors(values: np.ndarray, fspec: Any) -> dict[int, str]:  # noqa: ANN401
    """
    Positions → expectation for cells breaking `fspec`; vectorised pre-filter.

    Cells are text or None. The column is factorised once: blanks are its missing codes,
    numbers are parsed once per distinct text, and `field_problem` runs once per distinct
    value among the suspect cells (statuses, dates, booleans repeat a lot).
    """
    codes, uniques = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=True)
    blank = codes < 0
    suspects = np.zeros(len(values), dtype=bool)
    if fspec.required:
        suspects |= blank
    if fspec.type in {"int", "float"}:
        # to_numeric is elementwise: parse each distinct text once, then spread
        parsed = pd.to_numeric(pd.Series(uniques, dtype=object), errors="coerce")
        num_u = np.append(parsed.to_numpy(dtype=float, na_value=np.nan), np.nan)
        num = num_u[codes]  # code -1 picks the appended NaN
        bad = ~blank & ~np.isfinite(num)
        with np.errstate(invalid="ignore"):
            if fspec.min is not None:
                bad |= num < fspec.min
            if fspec.max is not None:
                bad |= num > fspec.max
            if fspec.type == "int":
                bad |= np.isfinite(num) & (num != np.floor(num))
        suspects |= bad
    elif fspec.type in {"bool", "date", "datetime"} or fspec.values:
        suspects |= ~blank
    pos = np.flatnonzero(suspects)
    if pos.size == 0:
        return {}
    # Check each distinct suspect value once; slot -1 (the last) is a blank cell.
    problems = np.full(len(uniques) + 1, None, dtype=object)
    for code in np.unique(codes[pos]):
        problems[code] = field_problem(fspec, None if code < 0 else uniques[code])
    found = problems[codes[pos]]
    hit = np.flatnonzero(pd.notna(found))
    return {int(i): p for i, p in zip(pos[hit], found[hit], strict=True)}


STATUS_NEW = "在册"
"""Status given to new points imported without one."""


def plan_import(
    data: bytes,
    filename: str,
    layer: LayerSpec,
    *,
    existing: gpd.GeoDataFrame,
    gdf_townships: gpd.GeoDataFrame,
    gdf_county: Any,  # noqa: ANN401 - GeoDataFrame, GeoSeries or a shapely geometry
    crs: str = "wgs84",
    sheet: str | None = None,
    mapping: Mapping[str, str | None] | None = None,
    defaults: Mapping[str, object] | None = None,
    metric_crs: str = "EPSG:4545",
    county_name: str = "城口县",
    today: dt.date | None = None,
    max_rows: int = MAX_ROWS,
    max_columns: int = MAX_COLUMNS,
) -> ImportPlan:
    """
    Plan the import of a survey table into a layer: read, map, convert, validate, join.

    Pure: nothing is written. Never raises for bad file content: an unreadable file, a file
    without coordinate columns or an invalid `mapping` gives a plan whose
    ``report.file_error`` says why and which writes nothing.

    Parameters
    ----------
    data
        The file's bytes (CSV/TXT in any of UTF-8/UTF-8-BOM/GB18030/…, XLSX, XLS).
    filename
        Shown in messages, used for generated uids (its stem) and the ``source`` field.
    layer
        The target layer's declaration (Point layers only).
    existing
        The layer as stored (`riskmap.io.read_layer`), EPSG:4326; uids found here are updates.
    gdf_townships
        Township polygons, EPSG:4326 (``adcode``, ``name``, … as `riskmap.io` reads them).
    gdf_county
        County outline (GeoDataFrame/GeoSeries in any CRS, or a shapely geometry in
        EPSG:4326). Points not within it are rejected ("位于<county_name>外"). None skips
        the check (noted).
    crs
        Declared coordinate system of the file, one of `riskmap.coords.CRS_CHOICES`.
    sheet
        Worksheet of a spreadsheet; None = the first.
    mapping
        ``{source column: field key | label | "lon" | "lat" | "x" | "y" | None}``
        overriding the guess for the columns it names (None = keep as extra property).
    defaults
        ``{field key: value}`` filled into blank cells (or a missing column) of that field;
        each filled row gets a warning. E.g. ``{"hazard_type": "滑坡"}`` for a catalogue
        of landslides.
    metric_crs
        Projected CRS in metres for derived areas (``settings.metric_crs``).
    county_name
        Used in messages.
    today
        Date written to blank ``updated_at``; default: today.
    max_rows, max_columns
        Reader caps.

    Returns
    -------
    plan
        `ImportPlan`.

    Raises
    ------
    CRSError
        When `crs` is not a known name (an argument error, not file content).
    SchemaError
        When `layer` is not a Point layer (a `ValueError` too).
    """
    if crs not in CRS_CHOICES:
        msg = f"未知坐标系 {crs!r}；可选: {', '.join(CRS_CHOICES)}"
        raise CRSError(msg)
    if layer.geometry != "Point":
        msg = f"图层 {layer.id} 是面图层；表格导入只支持点图层 (Point layers)"
        raise SchemaError(msg)
    spec = layer
    report = ImportReport(filename=filename, layer=spec.id, crs=crs)
    try:
        table = read_table(
            data,
            filename,
            sheet=sheet,
            is_known=known_header(spec),
            max_rows=max_rows,
            max_columns=max_columns,
        )
    except ImportFileError as exc:
        report.file_error = str(exc)
        return _finish(report, spec, existing, filename)
    report.encoding, report.delimiter = table.encoding, table.delimiter
    report.sheet, report.header_row = table.sheet, table.header_row
    report.notes.extend(table.notes)
    if table.encoding:
        report.notes.insert(0, f"文件编码: {table.encoding}")
    columns = table.columns
    guessed, ambiguous = match_columns(columns, spec)
    if mapping:
        explicit = _resolve_explicit(mapping, columns, spec, report)
        if report.file_error:
            return _finish(report, spec, existing, filename)
        # Guess again without the explicitly mapped columns: setting one of two rival
        # columns to None (or elsewhere) lets the other be matched.
        guessed, ambiguous = match_columns([c for c in columns if c not in explicit], spec)
        merged: dict[str, str | None] = {**guessed, **explicit}
        final = {c: t for c, t in merged.items() if t is not None}
        by_target: dict[str, list[str]] = {}
        for c, t in final.items():
            by_target.setdefault(t, []).append(c)
        clash = {t: cs for t, cs in by_target.items() if len(cs) > 1}
        if clash:
            detail = "; ".join(f"{'、'.join(cs)} → {t}" for t, cs in clash.items())
            report.file_error = f"列映射无效: 多列映射到同一字段 ({detail})"
            report.mapping = final
            return _finish(report, spec, existing, filename)
    else:
        final = dict(guessed)
    report.ambiguous_columns = ambiguous
    first = next((c for c, t in final.items() if t == "lon"), None) or next(
        (c for c, t in final.items() if t == "x"), None
    )
    second = next((c for c, t in final.items() if t == "lat"), None) or next(
        (c for c, t in final.items() if t == "y"), None
    )
    for c, t in list(final.items()):
        if t in COORD_ROLES and c not in {first, second}:
            del final[c]  # a second coordinate pair (e.g. X/Y beside lon/lat) stays extra
            report.notes.append(f"列「{c}」是另一组坐标，已作为附加属性保留")
    report.mapping = final
    report.unknown_columns = [c for c in columns if c not in final]
    if ambiguous:
        report.notes.append(
            "以下列可对应多个字段，未自动映射（请在映射中指定）: "
            + "; ".join(f"{c} → {'/'.join(ts)}" for c, ts in ambiguous.items())
        )
    if first is None or second is None:
        report.file_error = (
            f"{filename}: 找不到坐标列（需要 经度/纬度、X/Y 或 longitude/latitude 两列）；"
            f"现有列: {'、'.join(columns)}"
        )
        return _finish(report, spec, existing, filename)
    if not table.rows:
        report.file_error = f"{filename}: 列名下方没有数据行"
        return _finish(report, spec, existing, filename)
    return _plan_rows(
        table_rows=table.rows,
        table_cells=table.cells,
        first=first,
        second=second,
        final=final,
        report=report,
        spec=spec,
        existing=existing,
        gdf_townships=gdf_townships,
        gdf_county=gdf_county,
        crs=crs,
        defaults=defaults or {},
        metric_crs=metric_crs,
        county_name=county_name,
        today=today or dt.datetime.now(dt.UTC).date(),
        filename=filename,
    )


def _plan_rows(  # noqa: PLR0915 - one linear pipeline, stages marked by comments
    *,
    table_rows: list[int],
    table_cells: dict[str, tc.Column],
    first: str,
    second: str,
    final: dict[str, str],
    report: ImportReport,
    spec: LayerSpec,
    existing: gpd.GeoDataFrame,
    gdf_townships: gpd.GeoDataFrame,
    gdf_county: Any,  # noqa: ANN401
    crs: str,
    defaults: Mapping[str, object],
    metric_crs: str,
    county_name: str,
    today: dt.date,
    filename: str,
) -> ImportPlan:
    n = len(table_rows)
    stripped: dict[str, tc.Column] = {}  # source column -> cells stripped, blank = missing
    as_objects: dict[str, np.ndarray] = {}

    def text_of(col: str) -> np.ndarray:
        """`_cells` of a source column, computed once (kept as Arrow too, for the frame)."""
        if col not in as_objects:
            stripped[col] = tc.text_cells(table_cells[col])
            as_objects[col] = tc.to_object(stripped[col])
        return as_objects[col]

    msgs: list[list[Message]] = [[] for _ in range(n)]
    rows = np.asarray(table_rows, dtype=np.int64)

    # --- coordinates ----------------------------------------------------------------------
    county_geom = _county_geometry(gdf_county)
    county_lon = 108.66
    if county_geom is not None and not county_geom.is_empty:
        county_lon = float(county_geom.centroid.x)
    coords = to_wgs84(
        tc.to_object(table_cells[first]),
        tc.to_object(table_cells[second]),
        crs=crs,
        county_lon=county_lon,
    )
    report.notes.extend(coords.notes)
    role_col = {"lon": first, "lat": second}
    first_cells, second_cells = text_of(first), text_of(second)
    for pos, items in coords.messages.items():
        for level, role, reason in items:
            col = role_col.get(role, f"{first}/{second}")
            if role == "lon":
                value = first_cells[pos] or ""
            elif role == "lat":
                value = second_cells[pos] or ""
            else:
                value = f"{first_cells[pos] or ''}, {second_cells[pos] or ''}"
            msgs[pos].append(Message(col, value, reason, level))
    lon, lat = coords.lon, coords.lat
    located = np.isfinite(lon) & np.isfinite(lat)
    if county_geom is None:
        report.notes.append("未提供县界，未检查是否位于县域内")
    else:
        inside = np.zeros(n, dtype=bool)
        inside[located] = shapely.intersects_xy(county_geom, lon[located], lat[located])
        for pos in np.flatnonzero(located & ~inside):
            value = f"{lon[pos]:.6f}, {lat[pos]:.6f}"
            reason = f"位于{county_name}外（outside {county_name}），未导入"
            msgs[pos].append(Message(f"{first}/{second}", value, reason, LEVEL_ERROR))

    # --- attributes -----------------------------------------------------------------------
    values: dict[str, np.ndarray] = {}
    source_of: dict[str, str] = {}
    for col, target in final.items():
        if target in COORD_ROLES:
            continue
        values[target] = text_of(col)
        source_of[target] = col
    for key, default in defaults.items():
        if key not in spec.fields or key in COMPUTED:
            report.notes.append(f"默认值字段「{key}」不是图层 {spec.id} 的字段，已忽略")
            continue
        cells = values.get(key, np.full(n, None, dtype=object))
        blank = pd.isna(pd.Series(cells, dtype=object)).to_numpy()
        filled = cells.copy()
        filled[blank] = str(default)
        values[key] = filled
        label = spec.label(key)
        reason = f"{label}为空，按导入设定的默认值「{default}」填入"
        for pos in np.flatnonzero(blank):
            msgs[pos].append(Message(source_of.get(key, label), "", reason, LEVEL_WARNING))
        if blank.any():
            report.notes.append(f"{int(blank.sum())} 行的{label}按默认值「{default}」填入")
    key = spec.key
    stem = PurePath(filename).stem or "import"
    uids = values.get(key, np.full(n, None, dtype=object))
    missing_uid = pd.isna(pd.Series(uids, dtype=object)).to_numpy()
    if missing_uid.any():
        uids = uids.copy()
        for pos in np.flatnonzero(missing_uid):
            uids[pos] = f"{spec.id}-{stem}-{rows[pos]}"
            reason = f"无{spec.label(key)}，已生成 {uids[pos]}"
            msgs[pos].append(Message(source_of.get(key, spec.label(key)), "", reason, LEVEL_INFO))
        report.notes.append(
            f"{int(missing_uid.sum())} 行无{spec.label(key)}，已按「图层-文件名-行号」生成"
        )
    values[key] = uids
    uid_series = pd.Series(uids, dtype=object)
    existing_keys = set(existing[key].dropna().astype(str)) if key in existing.columns else set()
    is_update = uid_series.astype(str).isin(existing_keys).to_numpy()
    old_rows = (
        existing.assign(_k=existing[key].astype(str)).drop_duplicates("_k").set_index("_k")
        if is_update.any()
        else None
    )

    def kept_from_existing(fkey: str) -> np.ndarray:
        """Update rows whose existing feature already has a value for `fkey`."""
        out = np.zeros(n, dtype=bool)
        if old_rows is None or fkey not in old_rows.columns:
            return out
        upd = np.flatnonzero(is_update)
        old = old_rows[fkey].reindex(uid_series.iloc[upd].astype(str)).to_numpy(dtype=object)
        out[upd] = [not is_blank(v) for v in old]
        return out

    for fkey, fspec in spec.fields.items():
        if fkey in COMPUTED:
            continue
        # A blank required cell of an update keeps the stored value: not an error.
        keep_old = kept_from_existing(fkey) if fspec.required else np.zeros(n, dtype=bool)
        if fkey not in values:
            if fspec.required:
                reason = f"{fspec.label}必填 (required)，文件中没有此列"
                hit = np.flatnonzero(~keep_old)
                if len(hit):
                    report.notes.append(f"文件中没有必填字段「{fspec.header}」的列，新增行不能导入")
                for pos in hit:
                    msgs[pos].append(Message(fspec.header, "", reason, LEVEL_ERROR))
            continue
        col = source_of.get(fkey, fspec.header)
        cells = values[fkey]
        for pos, expected in _field_errors(cells, fspec).items():
            if keep_old[pos] and cells[pos] is None:
                continue
            value = cells[pos]
            reason = f"{fspec.label}{expected}"
            msgs[pos].append(Message(col, "" if value is None else str(value), reason, LEVEL_ERROR))
    dup = uid_series.duplicated(keep=False).to_numpy()
    for pos in np.flatnonzero(dup):
        reason = f"{spec.label(key)}在文件中重复，无法确定以哪一行为准"
        msgs[pos].append(Message(source_of.get(key, spec.label(key)), str(uids[pos]), reason))

    # --- row status -----------------------------------------------------------------------
    has_error = np.array([any(m.level == LEVEL_ERROR for m in ms) for ms in msgs], dtype=bool)
    accepted = ~has_error & located

    # --- accepted rows -> prepared features ----------------------------------------------
    extra_cols = [c for c in table_cells if c not in final]
    reserved = set(spec.fields) | COMPUTED | {"geometry"}
    extra_key = {c: (f"{c}(原表)" if c in reserved else c) for c in extra_cols}
    props: dict[str, Any] = {k: v for k, v in values.items() if k not in COMPUTED}
    origin = {k: source_of[k] for k in props if k in source_of}
    for c in extra_cols:
        props[extra_key[c]] = text_of(c)
        origin[extra_key[c]] = c
    for k, col in origin.items():
        # Text columns not changed since reading go to pandas as Arrow strings (the dtype
        # it infers from the object array) instead of re-encoding 100,000 Python strings.
        if props[k] is as_objects[col] and (series := tc.to_str_series(stripped[col])) is not None:
            props[k] = series
    raw = pd.DataFrame(props, index=pd.RangeIndex(n))
    import_flags = [
        FLAG_SEP.join(f"导入: {m.reason}" for m in ms if m.level == LEVEL_WARNING) or None
        for ms in msgs
    ]
    geometry = np.full(n, None, dtype=object)
    geometry[located] = shapely.points(lon[located], lat[located])
    acc_idx = np.flatnonzero(accepted)
    gdf_acc = gpd.GeoDataFrame(
        raw.iloc[acc_idx].reset_index(drop=True),
        geometry=geometry[acc_idx],
        crs="EPSG:4326",
    )
    gdf_acc["flags"] = [import_flags[i] for i in acc_idx]
    if "source" in spec.fields:
        src = gdf_acc["source"] if "source" in gdf_acc.columns else None
        gdf_acc["source"] = filename if src is None else src.where(src.notna(), filename)
    if "updated_at" in spec.fields:
        upd = gdf_acc["updated_at"] if "updated_at" in gdf_acc.columns else None
        stamp = today.isoformat()
        gdf_acc["updated_at"] = stamp if upd is None else upd.where(upd.notna(), stamp)
    acc_update = is_update[acc_idx]
    if "status" in spec.fields:
        # A new point starts its lifecycle as 在册 (DOMAIN.md: 在册 → 治理中 → 已销号); an
        # update with a blank status keeps the stored one (see `_merge_updates`).
        status = gdf_acc["status"] if "status" in gdf_acc.columns else None
        blank = np.ones(len(gdf_acc), bool) if status is None else status.isna().to_numpy()
        fill = blank & ~acc_update
        gdf_acc["status"] = (
            np.where(fill, STATUS_NEW, None) if status is None else status.mask(fill, STATUS_NEW)
        )
    changes: dict[str, list[FieldChange]] = {}
    base = existing.reset_index(drop=True)
    if acc_update.any():
        gdf_acc, changes = _merge_updates(gdf_acc, acc_update, base, spec)
    if len(gdf_acc):
        layer = prepare_layer(
            gdf_acc, spec, gdf_townships, metric_crs=metric_crs, county_name=county_name
        )
        gdf_prep = layer.gdf
    else:  # prepare_layer's share table cannot be built from zero rows
        gdf_prep = coerce_layer(gdf_acc, spec).assign(join_flag=pd.Series(dtype=object))
    # Flags added by the join/derivation become warnings of their rows.
    township_col = source_of.get("township_declared", "")
    prep_flags = gdf_prep["flags"].tolist()
    for j, pos in enumerate(acc_idx):
        flags = prep_flags[j]
        if not isinstance(flags, str) or not flags:
            continue
        own = {m.reason for m in msgs[pos]}
        for flag in flags.split(FLAG_SEP):
            reason = flag.removeprefix("导入: ")
            if reason in own:
                continue
            col = township_col if "填报乡镇" in flag else ""
            value = "" if not col else str(values["township_declared"][pos] or "")
            msgs[pos].append(Message(col, value, reason, LEVEL_WARNING))

    # --- report rows ----------------------------------------------------------------------
    tcode = np.full(n, None, dtype=object)
    tcode[acc_idx] = [None if is_blank(v) else str(v) for v in gdf_prep["township_code"].tolist()]
    for pos in range(n):
        ms = msgs[pos]
        level = (
            "error"
            if not accepted[pos]
            else ("warning" if any(m.level == LEVEL_WARNING for m in ms) else "ok")
        )
        action = "reject" if not accepted[pos] else ("update" if is_update[pos] else "add")
        report.rows.append(
            RowReport(
                row=int(rows[pos]),
                status=level,
                lon=float(lon[pos]) if located[pos] else None,
                lat=float(lat[pos]) if located[pos] else None,
                township_code=tcode[pos],
                uid=None if uids[pos] is None else str(uids[pos]),
                action=action,
                messages=ms,
            )
        )

    # --- result frames --------------------------------------------------------------------
    gdf_new = gdf_prep[~acc_update].reset_index(drop=True)
    gdf_updated = gdf_prep[acc_update].reset_index(drop=True)
    gdf_updated["changes"] = [
        "; ".join(f"{c.label}: {c.old or '∅'} → {c.new or '∅'}" for c in changes.get(str(u), []))
        for u in gdf_updated[key].astype(str)
    ]
    rej_idx = np.flatnonzero(~accepted)
    gdf_rejected = gpd.GeoDataFrame(
        raw.iloc[rej_idx].reset_index(drop=True), geometry=geometry[rej_idx], crs="EPSG:4326"
    )
    gdf_rejected["_row"] = rows[rej_idx]
    gdf_rejected["_reasons"] = [
        FLAG_SEP.join(m.reason for m in msgs[i] if m.level == LEVEL_ERROR) for i in rej_idx
    ]
    gdf_result = _assemble(base, gdf_updated.drop(columns="changes"), gdf_new, spec)
    return ImportPlan(
        report=report,
        layer_id=spec.id,
        filename=filename,
        gdf_new=gdf_new,
        gdf_updated=gdf_updated,
        changes=changes,
        gdf_rejected=gdf_rejected,
        gdf_result=gdf_result,
        existing_fingerprint=layer_fingerprint(existing, key),
    )


def _show(value: object) -> str | None:
    if is_blank(value):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _merge_updates(
    gdf_acc: gpd.GeoDataFrame, acc_update: np.ndarray, base: gpd.GeoDataFrame, spec: LayerSpec
) -> tuple[gpd.GeoDataFrame, dict[str, list[FieldChange]]]:
    """Overlay non-blank imported values on the existing features they update."""
    key = spec.key
    old_by_uid = base.assign(_k=base[key].astype(str)).drop_duplicates("_k").set_index("_k")
    upd = gdf_acc[acc_update]
    old = old_by_uid.loc[upd[key].astype(str)]
    merged = gpd.GeoDataFrame(old.drop(columns=[old.geometry.name]).reset_index(drop=True))
    changes: dict[str, list[FieldChange]] = {}
    new_part = upd.reset_index(drop=True)
    for col in new_part.columns:
        if col == new_part.geometry.name:
            continue
        new_vals = new_part[col].astype(object)
        if col in merged.columns:
            merged[col] = new_vals.where(new_vals.notna(), merged[col].astype(object))
        else:
            merged[col] = new_vals
    merged = gpd.GeoDataFrame(merged, geometry=new_part.geometry.to_numpy(), crs="EPSG:4326")
    if "flags" in merged.columns:
        merged["flags"] = new_part["flags"].to_numpy()
    skip = {"flags", "updated_at", "source", *COMPUTED}
    old_geoms = old.geometry.to_numpy()
    for i, uid in enumerate(new_part[key].astype(str)):
        items: list[FieldChange] = []
        for col in new_part.columns:
            if col in skip or col == new_part.geometry.name:
                continue
            new_v = _show(new_part[col].iloc[i])
            old_v = _show(old[col].iloc[i]) if col in old.columns else None
            if new_v is not None and new_v != old_v:
                items.append(FieldChange(col, spec.label(col), old_v, new_v))
        og, ng = old_geoms[i], new_part.geometry.iloc[i]
        if og is None or og.is_empty or og.distance(ng) > 1e-7:  # noqa: PLR2004 - ~1 cm
            old_txt = None if og is None or og.is_empty else f"{og.x:.6f}, {og.y:.6f}"
            items.append(FieldChange("geometry", "位置", old_txt, f"{ng.x:.6f}, {ng.y:.6f}"))
        changes[uid] = items
    out = pd.concat([gdf_acc[~acc_update], merged], ignore_index=True)
    order = np.concatenate([np.flatnonzero(~acc_update), np.flatnonzero(acc_update)])
    out.index = order
    return gpd.GeoDataFrame(out.sort_index(), crs="EPSG:4326"), changes


def _assemble(
    base: gpd.GeoDataFrame,
    gdf_updated: gpd.GeoDataFrame,
    gdf_new: gpd.GeoDataFrame,
    spec: LayerSpec,
) -> gpd.GeoDataFrame:
    """Existing features in order (updated ones replaced) + new ones appended."""
    key = spec.key
    if len(base) == 0:
        parts = [gdf_updated, gdf_new]
    else:
        kept = coerce_layer(gpd.GeoDataFrame(base, crs=base.crs or "EPSG:4326"), spec)
        if kept.crs is not None and not kept.crs.equals("EPSG:4326"):
            kept = kept.to_crs("EPSG:4326")
        if len(gdf_updated):
            pos = pd.Series(np.arange(len(kept)), index=kept[key].astype(str))
            pos = pos[~pos.index.duplicated()]
            where = pos.loc[gdf_updated[key].astype(str)].to_numpy()
            upd = gdf_updated.set_axis(where)
            kept = kept.drop(index=kept.index[where])
            kept = pd.concat([kept, upd]).sort_index()
        parts = [kept, gdf_new]
    parts = [p for p in parts if len(p)]
    if not parts:
        return _empty_gdf(spec.fields) if len(base) == 0 else base
    out = pd.concat(parts, ignore_index=True)
    return gpd.GeoDataFrame(out, geometry=out.geometry.name, crs="EPSG:4326")


# --- commit -----------------------------------------------------------------------------------


def commit_import(plan: ImportPlan, spec: LayerSpec, store: Store, *, user: str) -> str:
    """
    Write a previewed import through the store: one audited, undoable transaction.

    Writes ``plan.gdf_result`` with `Store.write_layer` (``action="import"``,
    ``source=plan.filename``, ``counts={added, updated, rejected}``). When the layer has no
    data yet, an empty version is written first (``action="create"``) so the import can be
    undone with `Store.undo` like any other.

    Parameters
    ----------
    plan
        From `plan_import` for the same layer.
    spec
        The layer's declaration.
    store
        Where the layer lives (`riskmap.store.open_store`).
    user
        Recorded in the audit log.

    Returns
    -------
    version
        The layer's new version token.

    Raises
    ------
    ImportFileError
        When the plan has a file-level error or nothing to add or update.
    StaleVersionError
        When the layer changed since the plan was made (re-run the preview).
    LockError
        When another process is writing the layer.
    """
    if plan.layer_id != spec.id:
        msg = f"导入计划属于图层 {plan.layer_id}，不能写入图层 {spec.id}"
        raise ImportFileError(msg)
    if plan.report.file_error:
        msg = f"{plan.filename}: 文件无法导入: {plan.report.file_error}"
        raise ImportFileError(msg)
    if not plan.can_commit:
        msg = f"{plan.filename}: 没有可导入的行（{plan.counts['rejected']} 行有错误）"
        raise ImportFileError(msg)
    # The version read here must hold the features the plan was made against; the store
    # checks it again under its lock, so two imports previewed on the same version cannot
    # both land (the second is refused instead of silently overwriting).
    version = store.layer_version(spec)
    if layer_fingerprint(store.read_layer(spec), spec.key) != plan.existing_fingerprint:
        msg = f"{spec.name}: 预览之后图层已被修改（可能有其他导入），请重新预览后再导入"
        raise StaleVersionError(msg)
    if version == "":
        version = store.write_layer(
            empty_layer(spec), spec, user=user, action="create", source=plan.filename,
            expected_version=version,
        )  # fmt: skip
    return store.write_layer(
        plan.gdf_result,
        spec,
        user=user,
        action="import",
        source=plan.filename,
        counts=plan.counts,
        expected_version=version,
    )
