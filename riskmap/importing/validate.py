"""Stage 4 of an import: check each row's values against the catalog; uid identity. Pure.

Rules (see ``docs/import.md``):

* A cell that breaks a **required** field's type, range or allowed values is an **error**
  (the row is not written): the value is there but wrong, and guessing would corrupt data;
  a required value defines the point (名称, 灾害类型, 威胁人数), so a person fixes it.
* A wrong value in an **optional** field is treated like a missing one: the point is
  imported with that field blank and a warning naming row, column and value (a located
  point is never kept off the map for an attribute). ``strict=True`` makes it an error.
* A date read from an Excel serial (a date typed in a General cell) gets a 提示.
* A **missing** required attribute is not: a correctly located point is imported with a
  warning, marked 待补充 (`INCOMPLETE_FIELD`) and listed in 核查提示, so the map shows it
  and the completeness figures count it. ``strict=True`` makes it an error (as before).
* uids are compared after NFKC, trimming and case folding (`uid_key`), and stored in their
  canonical spelling (`canonical_uid`; an existing uid keeps the layer's spelling).
* A formula cell with no computed result is an error naming the cell and formula.
"""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from riskmap.coords import LEVEL_ERROR, LEVEL_INFO, LEVEL_WARNING
from riskmap.derive import FLAG_SEP
from riskmap.importing.columns import COMPUTED
from riskmap.importing.report import Message
from riskmap.schema import excel_serial_date, field_problem, is_blank

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, MutableMapping

    import geopandas as gpd

    from riskmap.catalog import LayerSpec
    from riskmap.importing.report import ImportReport

INCOMPLETE_FIELD = "incomplete"
"""Boolean field (label 待补充) set on points imported with a required attribute missing."""
INCOMPLETE_LABEL = "待补充"
"""What users see for an incomplete point (and the prefix of its 核查提示 entry)."""


def canonical_uid(value: object) -> str | None:
    """
    Return the canonical spelling of a uid (blank → None).

    NFKC (full-width → ASCII), format characters removed, outer whitespace trimmed and
    inner runs of whitespace made one space.
    """
    if is_blank(value):
        return None
    text = str(value)
    if not text.isascii():  # ASCII is its own NFKC form and has no format characters
        text = unicodedata.normalize("NFKC", text)
        text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    text = " ".join(text.split())
    return text or None


_PY_SPACE = r"[\t\n\x0b\x0c\r\x1c-\x1f ]"
"""ASCII characters `str.split` splits on (RE2's ``\\s`` lacks ``\\x0b``, ``\\x1c-\\x1f``)."""


def canonical_uids(values: np.ndarray) -> np.ndarray:
    """
    Return `canonical_uid` of every cell of a column, shape ``(n,)`` object (None = blank).

    Vectorised for the usual cell, non-empty ASCII text without whitespace (it is its own
    canonical form); every other cell goes through `canonical_uid`.
    """
    values = np.asarray(values, dtype=object)
    out = values.copy()
    plain = np.zeros(len(values), dtype=bool)
    try:  # text and blanks (None/NaN → null); other objects: every cell one by one
        text = pa.array(values, type=pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        text = None
    if text is not None and len(text):
        ok = pc.and_(
            pc.and_(pc.string_is_ascii(text), pc.greater(pc.utf8_length(text), 0)),
            pc.invert(pc.match_substring_regex(text, _PY_SPACE)),
        )
        plain = pc.fill_null(ok, fill_value=False).to_numpy(zero_copy_only=False)
    for i in np.flatnonzero(~plain):
        out[i] = canonical_uid(values[i])
    return out


def uid_key(value: object) -> str | None:
    """Return the identity of a uid: `canonical_uid` case-folded (``dz-1`` = ``ＤＺ-1 ``)."""
    text = canonical_uid(value)
    return None if text is None else text.casefold()


def field_errors(values: np.ndarray, fspec: Any) -> dict[int, str]:  # noqa: ANN401
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


def validate_values(
    values: MutableMapping[str, np.ndarray],
    source_of: Mapping[str, str],
    spec: LayerSpec,
    msgs: list[list[Message]],
    report: ImportReport,
    *,
    kept_from_existing: Callable[[str], np.ndarray],
    strict: bool = False,
    lenient: np.ndarray | None = None,
) -> None:
    """
    Check every field of every row (stage 4); append findings to `msgs`.

    Parameters
    ----------
    values
        ``{field key: cells}`` (text or None, shape ``(n,)``) of the mapped columns.
    source_of
        ``{field key: source column}`` for messages.
    spec
        Target layer.
    msgs
        Per-row message lists, appended to in place.
    report
        Receives file-level notes.
    kept_from_existing
        ``f(field key) -> bool array (n,)``: rows that update an existing point which already
        has a value for that field (a blank cell keeps it: not missing).
    strict
        True: a missing required value is an error (the row is not written). False (default):
        a warning; the row is written and marked 待补充.
    lenient
        Bool mask ``(n,)`` of rows where a wrong *optional* value is blanked with a warning
        (rows that place a point; default all). Elsewhere (attribute-only updates: the
        values are the whole point of the row, and no location is at stake) it is an error.
    """
    n = len(msgs)
    for fkey, fspec in spec.fields.items():
        if fkey in COMPUTED or fkey == spec.key:
            continue  # the key is checked by `check_uids`
        keep_old = kept_from_existing(fkey) if fspec.required else np.zeros(n, dtype=bool)
        col = source_of.get(fkey, fspec.header)
        if fkey not in values:
            if fspec.required:
                hit = np.flatnonzero(~keep_old)
                if len(hit):
                    what = "新增行不能导入" if strict else f"相应行按{INCOMPLETE_LABEL}导入"
                    report.notes.append(f"文件中没有必填字段「{fspec.header}」的列，{what}")
                absent = _missing(fspec, col, strict=strict, column_absent=True)
                for pos in hit:
                    msgs[pos].append(absent)  # one frozen Message shared by every row
            continue
        cells = values[fkey]
        if fspec.type in {"date", "datetime"}:
            _note_serials(cells, fspec, col, msgs)
        blanked = False
        blank = _missing(fspec, col, strict=strict, column_absent=False)  # frozen: shared
        for pos, expected in field_errors(cells, fspec).items():
            value = cells[pos]
            if value is None:
                if keep_old[pos]:
                    continue
                msgs[pos].append(blank)
                continue
            if fspec.required or strict or (lenient is not None and not lenient[pos]):
                reason = f"{fspec.label}{expected}"
                msgs[pos].append(Message(col, str(value), reason, LEVEL_ERROR))
                continue
            # a wrong optional value is treated like a missing one: the point is imported
            # with the field blank and a warning naming the value (docs/import.md)
            if not blanked:
                cells = values[fkey] = cells.copy()
                blanked = True
            cells[pos] = None
            reason = f"{fspec.label}{expected}，无法识别「{value}」，该项留空导入，请核实"
            msgs[pos].append(Message(col, str(value), reason, LEVEL_WARNING))


def _note_serials(cells: np.ndarray, fspec: Any, col: str, msgs: list[list[Message]]) -> None:  # noqa: ANN401
    """Add a 提示 to each date cell read as an Excel date serial (a date in a General cell)."""
    for pos, value in enumerate(cells):
        if value is not None and (iso := excel_serial_date(value)) is not None:
            reason = (
                f"{fspec.label}「{value}」是 Excel 日期序列号（单元格格式为常规），按 {iso} 读取"
            )
            msgs[pos].append(Message(col, str(value), reason, LEVEL_INFO))


def _missing(fspec: Any, col: str, *, strict: bool, column_absent: bool) -> Message:  # noqa: ANN401
    where = "文件中没有此列" if column_absent else "单元格为空"
    if strict:
        return Message(col, "", f"{fspec.label}必填 (required)，{where}", LEVEL_ERROR)
    reason = f"缺少必填项「{fspec.label}」（{where}），按{INCOMPLETE_LABEL}导入，请补充"
    return Message(col, "", reason, LEVEL_WARNING)


def missing_reason(message: Message) -> bool:
    """Tell whether `message` is the warning for a missing required attribute."""
    return message.level == LEVEL_WARNING and message.reason.startswith("缺少必填项")


def unevaluated_messages(
    unevaluated: Mapping[tuple[int, str], tuple[str, str]],
    rows: np.ndarray,
    used_columns: set[str],
    msgs: list[list[Message]],
) -> None:
    """
    Replace "blank" findings on formula cells without a result by one precise error.

    Parameters
    ----------
    unevaluated
        `riskmap.readers.RawTable.unevaluated`: ``{(row number, header): (cell, formula)}``.
    rows
        Excel row number of each row, shape ``(n,)``.
    used_columns
        Source columns the import reads (mapped fields and coordinates).
    msgs
        Per-row messages, edited in place: other messages on that column are dropped.
    """
    if not unevaluated:
        return
    pos_of = {int(r): i for i, r in enumerate(rows)}
    for (row, header), (ref, formula) in unevaluated.items():
        pos = pos_of.get(row)
        if pos is None or header not in used_columns:
            continue
        kept = [m for m in msgs[pos] if header not in m.column.split("/")]
        reason = (
            f"公式没有计算结果（单元格 {ref}，公式 {formula}）：请在 Excel/WPS 中打开并保存后再导入"
        )
        kept.append(Message(header, formula, reason, LEVEL_ERROR))
        msgs[pos] = kept


def check_uids(
    uids: np.ndarray, spec: LayerSpec, source_col: str, msgs: list[list[Message]]
) -> np.ndarray:
    """
    Canonicalise uids and flag those repeated in the file (same `uid_key`).

    Parameters
    ----------
    uids
        Cells of the key column (text or None), shape ``(n,)``.
    spec
        Target layer (labels).
    source_col
        Source column of the key, for messages.
    msgs
        Per-row messages; each repeated uid gets an error on every row that has it.

    Returns
    -------
    canonical
        Object array ``(n,)``: `canonical_uid` of each cell (None = blank).
    """
    canonical = canonical_uids(uids)
    keys = pd.Series(canonical, dtype=object).str.casefold()
    dup = (keys.notna() & keys.duplicated(keep=False)).to_numpy()
    if dup.any():
        for pos in np.flatnonzero(dup):
            same = [str(uids[p]) for p in np.flatnonzero(dup & (keys == keys[pos]).to_numpy())]
            spellings = "、".join(f"「{s}」" for s in dict.fromkeys(same))
            reason = (
                f"{spec.label(spec.key)}在文件中重复（{spellings} 视为同一编号：不分全角半角、"
                "大小写和首尾空格），无法确定以哪一行为准"
            )
            msgs[pos].append(Message(source_col, str(uids[pos]), reason, LEVEL_ERROR))
    return canonical


def mark_incomplete(gdf_prep: gpd.GeoDataFrame, spec: LayerSpec) -> list[list[str]]:
    """Set ``incomplete`` and the 待补充 entry of ``flags`` from the final values."""
    required = [k for k in spec.required if k != spec.key and k not in COMPUTED]
    out: list[list[str]] = [[] for _ in range(len(gdf_prep))]
    for k in required:
        if k not in gdf_prep.columns:
            blank = np.ones(len(gdf_prep), dtype=bool)
        else:
            col = gdf_prep[k]
            blank = col.isna().to_numpy().copy()
            if not (pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)):
                text = col[~blank].astype(str).str.strip()
                blank[~blank] = (text == "").to_numpy()
        for j in np.flatnonzero(blank):
            out[j].append(spec.label(k))
    marked = np.fromiter((bool(m) for m in out), dtype=bool, count=len(out))
    if INCOMPLETE_FIELD in spec.fields:
        gdf_prep[INCOMPLETE_FIELD] = marked.tolist()
    if "flags" in gdf_prep.columns:
        flags = np.array(gdf_prep["flags"].to_numpy(dtype=object), dtype=object)  # a copy
        for j in np.flatnonzero(marked):
            entry = f"{INCOMPLETE_LABEL}: {'、'.join(out[j])}"
            flags[j] = entry if is_blank(flags[j]) else f"{flags[j]}{FLAG_SEP}{entry}"
        gdf_prep["flags"] = pd.Series(flags, index=gdf_prep.index, dtype=object)
    return out
