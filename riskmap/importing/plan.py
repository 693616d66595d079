"""Stage 5 of an import: from a read table to an `ImportPlan` (what would be written). Pure.

`plan_import` = `riskmap.readers.read_table` (stage 1) + `plan_table`, which runs
`riskmap.importing.columns.plan_columns` (2), `riskmap.importing.locate.locate_rows` (3),
`riskmap.importing.validate` (4), the identity checks of `riskmap.importing.identity` and
the merge of `riskmap.importing.merge` (5). `riskmap.importing.commit.commit_import` (6)
writes a plan through the store. `plan_attribute_update` plans attribute-only updates from
records (e.g. a lifecycle status sheet) through the same path.

Policy (see ``docs/import.md``): good rows are imported, the rest reported; a missing
required attribute does not keep a located point off the map (待补充) unless ``strict``;
conflicting updates and probable duplicates are held until confirmed.

Size (just over ~800 lines): the plan stage and its report rows are one transaction of
decisions (new / update / conflict / duplicate / 待补充 per row). The report rows are built
column-wise (`riskmap.importing.report.RowReports`): only rows with findings are visited one
by one (issue 15); the per-row message lists themselves are what would move to one frame of
(row, column, reason, level) next.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

import geopandas as gpd
import shapely

from riskmap import cells as tc
from riskmap import io
from riskmap.coords import CRS_CHOICES, LEVEL_ERROR, LEVEL_INFO, LEVEL_WARNING
from riskmap.derive import FLAG_SEP
from riskmap.errors import CRSError, ImportFileError, SchemaError
from riskmap.importing.columns import COMPUTED, known_header, plan_columns
from riskmap.importing.commit import layer_fingerprint
from riskmap.importing.holds import Confirm, hold_conflicts, hold_duplicates
from riskmap.importing.locate import county_geometry, locate_rows
from riskmap.importing.merge import (
    FieldChange,
    assemble,
    empty_gdf,
    merge_updates,
    name_new_points,
    uid_prefix,
)
from riskmap.importing.report import ImportReport, Message, RowReports
from riskmap.importing.validate import (
    INCOMPLETE_LABEL,
    check_uids,
    mark_incomplete,
    missing_reason,
    uid_key,
    unevaluated_messages,
    validate_values,
)
from riskmap.layers import prepare_layer
from riskmap.readers import MAX_COLUMNS, MAX_ROWS, RawTable, read_table
from riskmap.schema import _coerce_series, blank_mask, coerce_layer, is_blank
from riskmap.settings import COUNTY_NAME, METRIC_CRS, STORAGE_CRS

if TYPE_CHECKING:
    from collections.abc import Mapping

    from riskmap.catalog import LayerSpec

STATUS_NEW = "在册"
"""Status given to new points imported without one."""


@dataclass
class ImportPlan:
    """
    The outcome of `plan_import`: what would be written, and the report. Nothing is written.

    Attributes
    ----------
    report
        `riskmap.importing.report.ImportReport`.
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
        Rows not imported (errors) or held (conflicts, probable duplicates), raw text values
        (blank = None), geometry where located (else None), with ``_row`` (Excel row),
        ``_action`` (``reject``/``conflict``/``duplicate``) and ``_reasons``.
    gdf_result
        The whole layer after the import (existing order; new rows appended), EPSG:4326.
    existing_fingerprint
        Fingerprint of the layer the plan was made against (`layer_fingerprint`);
        `commit_import` refuses when the layer changed since.
    action
        Recorded in the audit log: ``"import"``, or what `plan_attribute_update` was given.
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
    action: str = "import"

    @property
    def counts(self) -> dict[str, int]:
        """``{"added", "updated", "rejected"}`` as recorded in the history log (+ held)."""
        c = self.report.counts
        out = {"added": c["added"], "updated": c["updated"], "rejected": c["rejected"]}
        if held := c["conflicts"] + c["duplicates"]:
            out["held"] = held
        return out

    @property
    def ok(self) -> bool:
        """True when the file was read and every row is imported (warnings allowed)."""
        c = self.report.counts
        done = c["added"] + c["updated"] + c["unchanged"]
        return self.report.file_error is None and done == c["rows"]

    @property
    def can_commit(self) -> bool:
        """True when the file was read and at least one row would be added or updated."""
        c = self.report.counts
        return self.report.file_error is None and (c["added"] + c["updated"]) > 0


def _empty_plan(
    report: ImportReport, spec: LayerSpec, existing: gpd.GeoDataFrame, filename: str
) -> ImportPlan:
    """Return a plan with nothing to write (file-level error)."""
    gdf_existing = existing if len(existing) else empty_gdf(spec.fields)
    return ImportPlan(
        report=report,
        layer_id=spec.id,
        filename=filename,
        gdf_new=empty_gdf(spec.fields),
        gdf_updated=empty_gdf(spec.fields),
        changes={},
        gdf_rejected=empty_gdf(),
        gdf_result=gdf_existing,
        existing_fingerprint=layer_fingerprint(existing, spec.key),
    )


def _check_arguments(crs: str, layer: LayerSpec) -> None:
    if crs not in CRS_CHOICES:
        msg = f"未知坐标系 {crs!r}；可选: {', '.join(CRS_CHOICES)}"
        raise CRSError(msg)
    if layer.geometry != "Point":
        msg = f"图层 {layer.id} 是面图层；表格导入只支持点图层 (Point layers)"
        raise SchemaError(msg)


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
    metric_crs: str = METRIC_CRS,
    county_name: str = COUNTY_NAME,
    today: dt.date | None = None,
    max_rows: int = MAX_ROWS,
    max_columns: int = MAX_COLUMNS,
    strict: bool = False,
    accept_conflicts: Confirm = False,
    add_duplicates: Confirm = False,
) -> ImportPlan:
    """
    Plan the import of a survey table into a layer: read, map, convert, validate, join.

    Pure: nothing is written. Never raises for bad file content: an unreadable file, a file
    without coordinate columns (and no known uid) or an invalid `mapping` gives a plan
    whose ``report.file_error`` says why and which writes nothing.

    Parameters
    ----------
    data
        The file's bytes (CSV/TXT in any of UTF-8/UTF-8-BOM/GB18030/…, XLSX, XLS).
    filename
        Shown in messages and stored in the ``source`` field.
    layer
        The target layer's declaration (Point layers only).
    existing
        The layer as stored (`riskmap.store.Store.read_layer`), EPSG:4326; rows whose uid
        is found here (compared after NFKC, trim and case folding) are updates.
    gdf_townships
        Township polygons, EPSG:4326 (``adcode``, ``name``, … as `riskmap.io` reads them).
    gdf_county
        County outline (GeoDataFrame/GeoSeries in any CRS, or a shapely geometry in
        EPSG:4326). Points not within it are rejected ("位于<county_name>外"). None skips
        the check (noted).
    crs
        Declared coordinate form of the file, an id of `riskmap.coords.COORDINATE_FORMS`.
    sheet
        Worksheet of a spreadsheet; None = the first.
    mapping
        ``{source column: field key | label | "lon" | "lat" | "x" | "y" | "lonlat" | None}``
        overriding the guess for the columns it names (None = keep as extra property).
    defaults
        ``{field key: value}`` filled into blank cells (or a missing column) of that field;
        each filled row gets a warning.
    metric_crs
        Projected CRS in metres for areas and distances (``settings.metric_crs``).
    county_name
        Used in messages.
    today
        Date written to blank ``updated_at``; default: today (UTC).
    max_rows, max_columns
        Reader caps.
    strict
        True: a row missing a required attribute is rejected (the pre-issue-10 behaviour).
        False (default): it is imported, marked 待补充.
    accept_conflicts
        Apply conflicting updates (move > 100 m or name replaced): True for all, or the
        Excel row numbers confirmed one by one. Unconfirmed conflicts are held.
    add_duplicates
        Add probable duplicates (no uid, similar name within 50 m): True for all, or row
        numbers. Unchosen ones are held.

    Returns
    -------
    plan
        `ImportPlan`.

    Raises
    ------
    CRSError
        When `crs` is not a known coordinate form (an argument error, not file content).
    SchemaError
        When `layer` is not a Point layer (a `ValueError` too).
    """
    _check_arguments(crs, layer)
    report = ImportReport(filename=filename, layer=layer.id, crs=crs)
    try:
        table = read_table(
            data,
            filename,
            sheet=sheet,
            is_known=known_header(layer),
            max_rows=max_rows,
            max_columns=max_columns,
        )
    except ImportFileError as exc:
        report.file_error = str(exc)
        return _empty_plan(report, layer, existing, filename)
    return plan_table(
        table,
        filename,
        layer,
        report=report,
        existing=existing,
        gdf_townships=gdf_townships,
        gdf_county=gdf_county,
        crs=crs,
        mapping=mapping,
        defaults=defaults,
        metric_crs=metric_crs,
        county_name=county_name,
        today=today,
        strict=strict,
        accept_conflicts=accept_conflicts,
        add_duplicates=add_duplicates,
    )


def plan_attribute_update(
    records: pd.DataFrame,
    layer: LayerSpec,
    *,
    existing: gpd.GeoDataFrame,
    gdf_townships: gpd.GeoDataFrame,
    source: str,
    action: str = "update",
    metric_crs: str = METRIC_CRS,
    county_name: str = COUNTY_NAME,
    today: dt.date | None = None,
) -> ImportPlan:
    """
    Plan attribute-only updates of existing points (a status sheet, a list of 责任人 …).

    The same path as a survey import without coordinates: values are validated against
    the catalog (status values, dates, …), every change is listed old → new, and
    `riskmap.importing.commit.commit_import` writes it as one audited, undoable version.

    Parameters
    ----------
    records
        One row per point: the layer's key column (``uid``) and the fields to change, by
        field key or Chinese label; cells are converted to text (blank = keep the value).
    layer
        Target layer.
    existing
        The layer as stored; a uid not found in it is rejected.
    gdf_townships
        Township polygons (for the re-join of the changed points).
    source
        Recorded as the file name of the change (``source`` in the audit log).
    action
        Audit action (``"update"``; the lifecycle uses ``"status"``).
    metric_crs, county_name, today
        As `plan_import`.

    Returns
    -------
    plan
        `ImportPlan`; ``plan.action == action``.
    """
    cells = {
        str(col): tc.text_column(["" if is_blank(v) else str(v) for v in records[col].tolist()])
        for col in records.columns
    }
    table = RawTable(cells=cells, rows=list(range(2, len(records) + 2)), fmt="records")
    mapping = {c: c for c in cells if c in layer.fields}
    plan = plan_table(
        table,
        source,
        layer,
        existing=existing,
        gdf_townships=gdf_townships,
        gdf_county=None,
        crs="wgs84",
        mapping=mapping,
        metric_crs=metric_crs,
        county_name=county_name,
        today=today,
    )
    plan.action = action
    return plan


def plan_table(
    table: RawTable,
    filename: str,
    layer: LayerSpec,
    *,
    existing: gpd.GeoDataFrame,
    gdf_townships: gpd.GeoDataFrame,
    gdf_county: Any,  # noqa: ANN401
    crs: str = "wgs84",
    mapping: Mapping[str, str | None] | None = None,
    defaults: Mapping[str, object] | None = None,
    metric_crs: str = METRIC_CRS,
    county_name: str = COUNTY_NAME,
    today: dt.date | None = None,
    strict: bool = False,
    accept_conflicts: Confirm = False,
    add_duplicates: Confirm = False,
    report: ImportReport | None = None,
) -> ImportPlan:
    """
    Plan the import of an already read table (stages 2–5); see `plan_import`.

    Parameters
    ----------
    table
        `riskmap.readers.RawTable`.
    report
        Report to fill (`plan_import` passes its own); default: a new one.
    filename, layer, existing, gdf_townships, gdf_county, crs, mapping, defaults,
    metric_crs, county_name, today, strict, accept_conflicts, add_duplicates
        As `plan_import`.

    Returns
    -------
    plan
        `ImportPlan`.
    """
    _check_arguments(crs, layer)
    spec = layer
    report = report or ImportReport(filename=filename, layer=spec.id, crs=crs)
    report.encoding, report.delimiter = table.encoding, table.delimiter
    report.sheet, report.header_row = table.sheet, table.header_row
    report.notes.extend(table.notes)
    if table.encoding:
        report.notes.insert(0, f"文件编码: {table.encoding}")
    columns = plan_columns(table, spec, report, mapping)
    if columns is None:
        return _empty_plan(report, spec, existing, filename)
    if not table.rows:
        report.file_error = f"{filename}: 列名下方没有数据行"
        return _empty_plan(report, spec, existing, filename)
    rows = _Rows(table, columns.mapping, spec, report)
    stored = _StoredKeys(existing, spec.key)
    if not columns.has_coordinates and not rows.any_known_uid(stored):
        report.file_error = (
            f"{filename}: 找不到坐标列（需要 经度/纬度、X/Y、经纬度 或 longitude/latitude）；"
            f"没有坐标的行只能更新图层中已有的{spec.label(spec.key)}。现有列: "
            f"{'、'.join(table.columns)}"
        )
        if table.sheet:
            sheets = [n for n in table.notes if n.startswith("工作簿有")]
            report.file_error += f"（读取的是工作表「{table.sheet}」"
            report.file_error += f"；{sheets[0]}）" if sheets else "；可用 --sheet 指定工作表）"
        return _empty_plan(report, spec, existing, filename)
    loc = locate_rows(
        table, columns, crs=crs, county_geom=county_geometry(gdf_county), county_name=county_name
    )
    report.notes.extend(loc.notes)
    return _plan_rows(
        rows,
        loc,
        stored,
        has_coordinates=columns.has_coordinates,
        coordinate_columns={c for c in (columns.first, columns.second, columns.lonlat) if c},
        spec=spec,
        existing=existing,
        gdf_townships=gdf_townships,
        defaults=defaults or {},
        metric_crs=metric_crs,
        county_name=county_name,
        today=today or dt.datetime.now(dt.UTC).date(),
        filename=filename,
        strict=strict,
        accept_conflicts=accept_conflicts,
        add_duplicates=add_duplicates,
    )


class _StoredKeys:
    """The layer's uids by identity (`uid_key`) → stored spelling and position."""

    def __init__(self, existing: gpd.GeoDataFrame, key: str) -> None:
        self.spelling: dict[str, str] = {}
        self.position: dict[str, int] = {}
        if key in existing.columns:
            for i, uid in enumerate(existing[key].tolist()):
                if (k := uid_key(uid)) is not None and k not in self.spelling:
                    self.spelling[k] = str(uid)
                    self.position[k] = i


class _Rows:
    """Cell values of the mapped columns, per field; computed once (Arrow kept too)."""

    def __init__(
        self, table: RawTable, mapping: dict[str, str], spec: LayerSpec, report: ImportReport
    ) -> None:
        self.table, self.spec, self.report = table, spec, report
        self.n = len(table.rows)
        self.rows = np.asarray(table.rows, dtype=np.int64)
        self.stripped: dict[str, tc.Column] = {}
        self.as_objects: dict[str, np.ndarray] = {}
        self.values: dict[str, np.ndarray] = {}
        self.source_of: dict[str, str] = {}
        self.mapping = mapping
        for col, target in mapping.items():
            if target in spec.fields:
                cells = self.text_of(col)
                if spec.fields[target].type in {"int", "float"}:
                    # full-width digits and thousands separators (never in coordinates)
                    cells = tc.number_cells(cells, thousands=table.delimiter != ";")
                self.values[target] = cells
                self.source_of[target] = col
        self.msgs: list[list[Message]] = [[] for _ in range(self.n)]

    def text_of(self, col: str) -> np.ndarray:
        """Return the stripped cells of a source column (blank = None), computed once."""
        if col not in self.as_objects:
            self.stripped[col] = tc.text_cells(self.table.cells[col])
            self.as_objects[col] = tc.to_object(self.stripped[col])
        return self.as_objects[col]

    def any_known_uid(self, stored: _StoredKeys) -> bool:
        uids = self.values.get(self.spec.key)
        return uids is not None and any(uid_key(u) in stored.spelling for u in uids)

    def apply_defaults(self, defaults: Mapping[str, object]) -> None:
        spec, n = self.spec, self.n
        for key, default in defaults.items():
            if key not in spec.fields or key in COMPUTED:
                self.report.notes.append(f"默认值字段「{key}」不是图层 {spec.id} 的字段，已忽略")
                continue
            cells = self.values.get(key, np.full(n, None, dtype=object))
            blank = pd.isna(pd.Series(cells, dtype=object)).to_numpy()
            filled = cells.copy()
            filled[blank] = str(default)
            self.values[key] = filled
            label = spec.label(key)
            reason = f"{label}为空，按导入设定的默认值「{default}」填入"
            for pos in np.flatnonzero(blank):
                self.msgs[pos].append(
                    Message(self.source_of.get(key, label), "", reason, LEVEL_WARNING)
                )
            if blank.any():
                self.report.notes.append(f"{int(blank.sum())} 行的{label}按默认值「{default}」填入")


def _plan_rows(  # noqa: PLR0915 - one linear pipeline, stages in helpers
    rows: _Rows,
    loc: Any,  # noqa: ANN401 - riskmap.importing.locate.Location
    stored: _StoredKeys,
    *,
    has_coordinates: bool,
    coordinate_columns: set[str],
    spec: LayerSpec,
    existing: gpd.GeoDataFrame,
    gdf_townships: gpd.GeoDataFrame,
    defaults: Mapping[str, object],
    metric_crs: str,
    county_name: str,
    today: dt.date,
    filename: str,
    strict: bool,
    accept_conflicts: Confirm,
    add_duplicates: Confirm,
) -> ImportPlan:
    n, key, report, msgs = rows.n, spec.key, rows.report, rows.msgs
    rows.apply_defaults(defaults)

    # --- identity: canonical uids, updates, attribute-only rows -------------------------
    key_col = rows.source_of.get(key, spec.label(key))
    raw_uids = rows.values.get(key, np.full(n, None, dtype=object))
    uids = check_uids(raw_uids, spec, key_col, msgs)
    uid_series = pd.Series(uids, dtype=object)
    missing_uid = uid_series.isna().to_numpy()
    keys = uid_series.str.casefold().where(~missing_uid, None).tolist()
    is_update = (
        uid_series.str.casefold().isin(list(stored.spelling)).to_numpy() & ~missing_uid
        if stored.spelling
        else np.zeros(n, dtype=bool)
    )
    for pos in np.flatnonzero(is_update):
        stored_uid = stored.spelling[keys[pos]]
        if stored_uid != raw_uids[pos]:
            reason = f"{spec.label(key)}「{raw_uids[pos]}」按图层中的「{stored_uid}」匹配"
            msgs[pos].append(Message(key_col, str(raw_uids[pos]), reason, LEVEL_INFO))
        uids[pos] = stored_uid
    if key in rows.values:
        rows.values[key] = uids
    attr_only = loc.blank & is_update
    for pos, found in enumerate(loc.messages):
        if found and not attr_only[pos]:  # an attribute-only row keeps its location
            msgs[pos][:0] = found
    if not has_coordinates:
        reason = f"没有坐标，且{spec.label(key)}不在图层中：无法落图"
        for pos in np.flatnonzero(~attr_only):
            msgs[pos].append(Message(key_col, str(raw_uids[pos] or ""), reason, LEVEL_ERROR))
    base = existing.reset_index(drop=True)
    old_pos = np.full(n, -1, dtype=np.int64)
    old_pos[is_update] = [stored.position[keys[pos]] for pos in np.flatnonzero(is_update)]

    def kept_from_existing(fkey: str) -> np.ndarray:
        """Update rows whose existing feature already has a value for `fkey`."""
        out = np.zeros(n, dtype=bool)
        if fkey not in base.columns:
            return out
        old_values = base[fkey].tolist()
        for pos in np.flatnonzero(is_update):
            out[pos] = not is_blank(old_values[old_pos[pos]])
        return out

    # --- validation ----------------------------------------------------------------------
    validate_values(
        rows.values, rows.source_of, spec, msgs, report,
        kept_from_existing=kept_from_existing, strict=strict, lenient=~attr_only,
    )  # fmt: skip
    used = set(rows.source_of.values()) | coordinate_columns
    unevaluated_messages(rows.table.unevaluated, rows.rows, used, msgs)
    if missing_uid.any():
        report.notes.append(
            f"{int(missing_uid.sum())} 行无{spec.label(key)}，"
            f"新增时按「{uid_prefix(spec)}-乡镇代码-序号」生成"
        )
    has_error = np.zeros(n, dtype=bool)
    for pos, ms in enumerate(msgs):  # only rows with findings are looked into
        if ms and any(m.level == LEVEL_ERROR for m in ms):
            has_error[pos] = True
    located = loc.located | attr_only
    accepted = ~has_error & located

    # --- identity checks: conflicting updates, probable duplicates -----------------------
    action = np.where(accepted, np.where(is_update, "update", "add"), "reject").astype(object)
    # 7 decimals ≈ 1 cm (RFC 7946 §11.2): more is noise from DMS/projection arithmetic; the
    # bundled layers have 6, which this leaves unchanged
    lon, lat = np.round(loc.lon, COORD_DECIMALS), np.round(loc.lat, COORD_DECIMALS)
    if len(base):
        old_geom = base.geometry.to_numpy()
        for pos in np.flatnonzero(attr_only & accepted):
            g = old_geom[old_pos[pos]]
            if g is not None and not g.is_empty:
                lon[pos], lat[pos] = g.x, g.y
    hold_conflicts(rows, spec, base, action, old_pos, attr_only, loc, metric_crs, accept_conflicts)
    hold_duplicates(rows, spec, base, action, missing_uid, lon, lat, metric_crs, add_duplicates)
    written = np.isin(action, ["add", "update"])

    # --- written rows -> prepared features ---------------------------------------------
    acc_idx = np.flatnonzero(written)
    for pos in acc_idx:
        if missing_uid[pos]:
            uids[pos] = f"__new_{pos}"  # replaced by a readable uid after the join
    rows.values[key] = uids
    raw = _raw_frame(rows)
    import_flags = np.full(n, None, dtype=object)
    for pos, ms in enumerate(msgs):
        if ms:
            import_flags[pos] = (
                FLAG_SEP.join(
                    f"导入: {m.reason}"
                    for m in ms
                    if m.level == LEVEL_WARNING and not missing_reason(m)
                )
                or None
            )
    geometry = np.full(n, None, dtype=object)
    has_point = np.isfinite(lon) & np.isfinite(lat)
    geometry[has_point] = shapely.points(lon[has_point], lat[has_point])
    gdf_acc = gpd.GeoDataFrame(
        raw.iloc[acc_idx].reset_index(drop=True), geometry=geometry[acc_idx], crs=STORAGE_CRS
    )
    gdf_acc["flags"] = import_flags[acc_idx].tolist()
    acc_update = is_update[acc_idx]
    _fill_bookkeeping(gdf_acc, spec, filename, today, acc_update)
    changes: dict[str, list[FieldChange]] = {}
    if acc_update.any():
        gdf_acc, changes = merge_updates(gdf_acc, acc_update, base, spec)
        # a row naming a stored point and changing nothing is 无变化: kept as stored (see
        # `merge_updates`), not counted as updated, not listed among the changes
        for pos in acc_idx[acc_update]:
            if not changes.get(str(uids[pos]), True):
                action[pos] = "unchanged"
        changes = {uid: items for uid, items in changes.items() if items}
    stored_flags = gdf_acc["flags"].tolist()  # this import's own findings, not the join's
    if len(gdf_acc):
        layer = prepare_layer(
            gdf_acc, spec, gdf_townships, metric_crs=metric_crs, county_name=county_name
        )
        gdf_prep = layer.gdf
    else:  # prepare_layer's share table cannot be built from zero rows
        gdf_prep = coerce_layer(gdf_acc, spec).assign(join_flag=pd.Series(dtype=object))
    name_new_points(gdf_prep, acc_idx, missing_uid, uids, spec, base, msgs, key_col)
    missing = mark_incomplete(gdf_prep, spec)
    _join_flags_to_messages(gdf_prep, acc_idx, rows)

    # --- report rows (column-wise: only rows with findings are looked at one by one) -----
    tcode = np.full(n, None, dtype=object)
    if len(acc_idx):
        codes = gdf_prep["township_code"]
        code_blank = blank_mask(codes).to_numpy()
        tcode[acc_idx[~code_blank]] = codes[~code_blank].astype(str).tolist()
    missing_of = {int(acc_idx[j]): labels for j, labels in enumerate(missing) if labels}
    _drop_unused_incomplete_notes(report, missing)
    status = np.where(action == "reject", "error", "ok").astype(object)
    status[np.isin(action, ["conflict", "duplicate"])] = "warning"
    messages: dict[int, list[Message]] = {}
    for pos, found in enumerate(msgs):
        if not found:
            continue
        if action[pos] == "reject":
            # not imported: a missing attribute is not "imported as 待补充"
            msgs[pos] = [
                dataclasses.replace(m, reason=m.reason.split("，按")[0]) if missing_reason(m) else m
                for m in found
            ]
        elif any(m.level == LEVEL_WARNING for m in found):
            status[pos] = "warning"  # else "ok": information (提示) only, nothing to check
        messages[pos] = msgs[pos]
    report_uids = uids.copy()
    for pos in acc_idx[missing_uid[acc_idx]]:
        if str(report_uids[pos]).startswith("__new_"):  # a placeholder never named
            report_uids[pos] = None
    report.rows = RowReports(
        row=rows.rows,
        status=status,
        action=action.astype(str).astype(object),
        uid=report_uids,
        lon=np.where(has_point, lon, np.nan),
        lat=np.where(has_point, lat, np.nan),
        township_code=tcode,
        attributes_only=attr_only,
        messages=messages,
        missing=missing_of,
    )

    # --- result frames --------------------------------------------------------------------
    gdf_new = gdf_prep[~acc_update].reset_index(drop=True)
    acc_changed = acc_update & (action[acc_idx] == "update")
    gdf_updated = gdf_prep[acc_changed].reset_index(drop=True)
    gdf_updated["changes"] = [
        "; ".join(f"{c.label}: {c.old or '∅'} → {c.new or '∅'}" for c in changes.get(str(u), []))
        for u in gdf_updated[key].astype(str)
    ]
    rej_idx = np.flatnonzero(~written)
    gdf_rejected = gpd.GeoDataFrame(
        raw.iloc[rej_idx].reset_index(drop=True), geometry=geometry[rej_idx], crs=STORAGE_CRS
    )
    if key in gdf_rejected.columns:
        gdf_rejected[key] = [None if str(u).startswith("__new_") else u for u in gdf_rejected[key]]
    gdf_rejected["_row"] = rows.rows[rej_idx]
    gdf_rejected["_action"] = action[rej_idx].astype(str)
    gdf_rejected["_reasons"] = [
        FLAG_SEP.join(m.reason for m in msgs[i] if m.level == LEVEL_ERROR or action[i] != "reject")
        for i in rej_idx
    ]
    gdf_result = _stored_result(base, gdf_prep, acc_update, stored_flags, missing, spec)
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


def _raw_frame(rows: _Rows) -> pd.DataFrame:
    """Build the mapped field values + unknown columns (kept as extras) of every row."""
    spec, mapping = rows.spec, rows.mapping
    extra_cols = [c for c in rows.table.cells if c not in mapping]
    reserved = set(spec.fields) | COMPUTED | {"geometry"}
    extra_key = {c: (f"{c}(原表)" if c in reserved else c) for c in extra_cols}
    props: dict[str, Any] = {k: v for k, v in rows.values.items() if k not in COMPUTED}
    for k, cells in list(props.items()):
        if k in spec.fields and spec.fields[k].type in {"date", "datetime"}:
            # the value as stored (ISO), so the preview of an update shows it, not the cell
            iso = _coerce_series(pd.Series(cells, dtype=object), spec.fields[k])
            props[k] = iso.to_numpy(dtype=object)
    origin = {k: rows.source_of[k] for k in props if k in rows.source_of}
    for c in extra_cols:
        props[extra_key[c]] = rows.text_of(c)
        origin[extra_key[c]] = c
    for k, col in origin.items():
        # Text columns not changed since reading go to pandas as Arrow strings (the dtype
        # it infers from the object array) instead of re-encoding 100,000 Python strings.
        if (
            props[k] is rows.as_objects.get(col)
            and (series := tc.to_str_series(rows.stripped[col])) is not None
        ):
            props[k] = series
    return pd.DataFrame(props, index=pd.RangeIndex(rows.n))


def _drop_unused_incomplete_notes(report: ImportReport, missing: list[list[str]]) -> None:
    """Drop "没有必填字段「X」的列，相应行按待补充导入" when no written row was marked for X."""
    marked = {label for labels in missing for label in labels}
    report.notes[:] = [
        n
        for n in report.notes
        if not (
            n.startswith("文件中没有必填字段「")
            and INCOMPLETE_LABEL in n
            and n.split("「", 1)[1].split("」", 1)[0].split("(")[0] not in marked
        )
    ]


COORD_DECIMALS = 7
"""Decimals of stored lon/lat of imported points: 1e-7° ≈ 1.1 cm (RFC 7946 §11.2)."""
WORKING_COLUMNS = ("township", "township_code", "townships", "join_flag")
"""Columns the township join derives at load time (`riskmap.layers.prepare_layer`): never stored."""
SPARSE_FIELDS = ("flags",)
"""Import bookkeeping fields stored only on the features that have a value."""


def _stored_result(
    base: gpd.GeoDataFrame,
    gdf_prep: gpd.GeoDataFrame,
    acc_update: np.ndarray,
    stored_flags: list[object],
    missing: list[list[str]],
    spec: LayerSpec,
) -> gpd.GeoDataFrame:
    """
    Return the layer as it is to be stored: existing features + this import's, no join output.

    The stored ``flags`` of an imported feature are this import's own warnings and its
    待补充 entry; the join's flags (乡镇 border, outside the county) are derived again at
    load time and are not stored, nor are `WORKING_COLUMNS`. Columns the stored layer did
    not have (``incomplete`` on a layer stored without it), the survey's unknown columns and
    `SPARSE_FIELDS` are marked sparse
    (`riskmap.io.SPARSE_COLUMNS_ATTR`): written only on features that have a value, so a
    feature the import did not touch keeps exactly its properties.
    """
    stored = gdf_prep.copy()
    if "flags" in stored.columns:
        old = pd.Series(stored_flags, dtype=object)
        kept = ~blank_mask(old).to_numpy()
        flags = np.full(len(old), None, dtype=object)
        flags[kept] = [str(v) for v in old[kept].tolist()]
        for j, labels in enumerate(missing):
            if labels:
                entry = f"{INCOMPLETE_LABEL}: {'、'.join(labels)}"
                flags[j] = entry if flags[j] is None else f"{flags[j]}{FLAG_SEP}{entry}"
        stored["flags"] = pd.Series(flags, index=stored.index, dtype=object)
    upd = stored[acc_update].reset_index(drop=True)
    new = stored[~acc_update].reset_index(drop=True)
    out = assemble(base, upd, new, spec)
    out = out.drop(columns=[c for c in WORKING_COLUMNS if c in out.columns])
    geom = out.geometry.name
    sparse = [
        c
        for c in out.columns
        if c != geom and (c not in spec.fields or c in SPARSE_FIELDS or c not in base.columns)
    ]
    out.attrs[io.SPARSE_COLUMNS_ATTR] = tuple(sparse)
    return out


def _fill_bookkeeping(
    gdf_acc: gpd.GeoDataFrame,
    spec: LayerSpec,
    filename: str,
    today: dt.date,
    acc_update: np.ndarray,
) -> None:
    """``source`` = file name and ``updated_at`` = today where blank; new points start 在册."""
    if "source" in spec.fields:
        src = gdf_acc["source"] if "source" in gdf_acc.columns else None
        gdf_acc["source"] = filename if src is None else src.where(src.notna(), filename)
    if "updated_at" in spec.fields:
        upd = gdf_acc["updated_at"] if "updated_at" in gdf_acc.columns else None
        stamp = today.isoformat()
        gdf_acc["updated_at"] = stamp if upd is None else upd.where(upd.notna(), stamp)
    if "status" in spec.fields:
        # A new point starts its lifecycle as 在册 (DOMAIN.md: 在册 → 治理中 → 已销号); an
        # update with a blank status keeps the stored one (see `merge_updates`).
        status = gdf_acc["status"] if "status" in gdf_acc.columns else None
        blank = np.ones(len(gdf_acc), bool) if status is None else status.isna().to_numpy()
        fill = blank & ~acc_update
        gdf_acc["status"] = (
            np.where(fill, STATUS_NEW, None) if status is None else status.mask(fill, STATUS_NEW)
        )


def _join_flags_to_messages(gdf_prep: gpd.GeoDataFrame, acc_idx: np.ndarray, rows: _Rows) -> None:
    """Turn flags added by the join/derivation into warnings of their rows."""
    township_col = rows.source_of.get("township_declared", "")
    flagged = np.flatnonzero(~gdf_prep["flags"].isna().to_numpy())
    prep_flags = gdf_prep["flags"].to_numpy(dtype=object)[flagged]
    for j, flags in zip(flagged.tolist(), prep_flags.tolist(), strict=True):
        pos = acc_idx[j]
        if not isinstance(flags, str) or not flags:
            continue
        own = {m.reason for m in rows.msgs[pos]}
        for flag in flags.split(FLAG_SEP):
            reason = flag.removeprefix("导入: ")
            if reason in own or flag.startswith(INCOMPLETE_LABEL):
                continue
            col = township_col if "填报乡镇" in flag else ""
            value = "" if not col else str(rows.values["township_declared"][pos] or "")
            rows.msgs[pos].append(Message(col, value, reason, LEVEL_WARNING))
