"""Stage 2 of an import: map a table's columns to a layer's fields and coordinate roles. Pure.

Column names come from the catalog, never from code: each field's key, label and
``aliases = [...]``, and the ``[import.coordinates]`` table for the coordinate roles
(`riskmap.catalog.LayerSpec.coordinate_aliases`).

Two protections against silent damage (issue 10, case c28):

* a column whose values are the running numbers 1…n (``序号``/``编号`` = 001, 002, …) is
  **not** taken as 统一编号 by a guess: such numbers are a survey's own, and 001 in two
  surveys names two different places. Mapped explicitly, it is used.
* a combined ``经纬度`` column (``108.6640,31.9460``) is split into lon/lat (noted).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from riskmap import cells as tc

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from riskmap.catalog import LayerSpec
    from riskmap.importing.report import ImportReport
    from riskmap.readers import RawTable

COORD_ROLES = ("lon", "lat", "x", "y")
"""Mapping targets for coordinate columns: lon/lat (degrees) and x/y (projected metres)."""
LONLAT_ROLE = "lonlat"
"""Mapping target of a column holding both coordinates in one cell (split on import)."""

COMPUTED = frozenset({"township", "township_code", "townships", "flags", "join_flag"})
"""Fields set by the join/derivation, never taken from a file column."""

_UNIT_RE = re.compile(r"[(\[【（][^()\[\]【】（）]*[)\]】）]$")
_INT_RE = re.compile(r"^\d{1,9}$")


def normalise_header(header: str) -> str:
    """NFKC, strip, lower-case, drop spaces and ``*`` (required markers)."""
    text = unicodedata.normalize("NFKC", str(header)).strip().lower()
    return re.sub(r"[\s*]", "", text)


def _header_keys(header: str) -> tuple[str, ...]:
    norm = normalise_header(header)
    bare = _UNIT_RE.sub("", norm)
    return (norm, bare) if bare and bare != norm else (norm,)


def column_aliases(spec: LayerSpec) -> dict[str, tuple[str, ...]]:
    """
    Column names per target declared in the catalog.

    Returns
    -------
    aliases
        ``{field key | coordinate role: (names)}``: the ``[import.coordinates]`` roles and
        each importable field's ``aliases``.
    """
    out = {role: tuple(names) for role, names in spec.coordinate_aliases.items()}
    for key, fspec in spec.fields.items():
        if fspec.aliases and key not in COMPUTED:
            out[key] = tuple(fspec.aliases)
    return out


def _targets(spec: LayerSpec) -> list[dict[str, set[str]]]:
    """Names per target in priority order: aliases, field keys, labels/headers."""
    syn = {t: {normalise_header(n) for n in names} for t, names in column_aliases(spec).items()}
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
    trailing unit in brackets (``威胁人数（人）`` = ``威胁人数``). Catalog aliases
    (`column_aliases`) win over field keys, which win over Chinese labels.

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
        ``{source column: field key | "lon" | "lat" | "x" | "y" | "lonlat"}``; columns that
        match nothing or several targets are left out (see `match_columns`).
    """
    return match_columns(columns, spec)[0]


def is_running_number(values: np.ndarray) -> bool:
    """
    Tell whether a column holds the running numbers 1…n of its rows (with leading zeros).

    Parameters
    ----------
    values
        Cells of the column (text or None), in file order.

    Returns
    -------
    running
        True when every cell is filled, is a whole number, and the numbers are exactly
        1, 2, …, n in order (``001``, ``002`` count as 1, 2).
    """
    if len(values) == 0:
        return False
    numbers = []
    for v in values:
        text = unicodedata.normalize("NFKC", v).strip() if isinstance(v, str) else ""
        if not _INT_RE.match(text):
            return False
        numbers.append(int(text))
    return numbers == list(range(1, len(values) + 1))


def resolve_explicit(
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
        if t in COORD_ROLES or t == LONLAT_ROLE or (t in spec.fields and t not in COMPUTED):
            out[col] = t
        elif (k := by_label.get(normalise_header(t))) is not None and k not in COMPUTED:
            out[col] = k
        else:
            problems.append(f"「{col}」→「{t}」: 不是图层 {spec.id} 的字段")
    if problems:
        report.file_error = "列映射无效: " + "; ".join(problems)
    return out


@dataclass
class ColumnPlan:
    """
    Where each target's values come from.

    Attributes
    ----------
    mapping
        ``{source column: target}`` used (attribute fields and coordinate roles).
    first, second
        Source columns of the first (lon/x) and second (lat/y) coordinate, or None.
    lonlat
        Source column holding both coordinates in one cell, or None.
    """

    mapping: dict[str, str] = field(default_factory=dict)
    first: str | None = None
    second: str | None = None
    lonlat: str | None = None

    @property
    def has_coordinates(self) -> bool:
        """True when the table has a coordinate pair or a combined column."""
        return self.lonlat is not None or (self.first is not None and self.second is not None)


def plan_columns(
    table: RawTable,
    spec: LayerSpec,
    report: ImportReport,
    mapping: Mapping[str, str | None] | None = None,
) -> ColumnPlan | None:
    """
    Decide the column mapping of a table (stage 2); record it in `report`.

    Parameters
    ----------
    table
        The table as read (`riskmap.readers.read_table`).
    spec
        Target layer.
    report
        Receives ``mapping``, ``unknown_columns``, ``ambiguous_columns``, notes, and
        ``file_error`` when the explicit `mapping` is invalid.
    mapping
        ``{source column: target | None}`` overriding the guess (None = keep as extra).

    Returns
    -------
    columns
        `ColumnPlan`, or None when the explicit mapping is invalid (``report.file_error``).
    """
    columns = table.columns
    explicit: dict[str, str | None] = {}
    if mapping:
        explicit = resolve_explicit(mapping, columns, spec, report)
        if report.file_error:
            return None
    # Guess without the explicitly mapped columns: setting one of two rival columns to
    # None (or elsewhere) lets the other be matched.
    guessed, ambiguous = match_columns([c for c in columns if c not in explicit], spec)
    key = spec.key
    own_names = {key.lower(), normalise_header(spec.label(key))}
    for col, target in list(guessed.items()):
        if target != key or set(_header_keys(col)) & own_names:
            continue  # a column named 统一编号 / uid is what it says
        if is_running_number(tc.to_object(tc.text_cells(table.cells[col]))):
            del guessed[col]
            report.notes.append(
                f"列「{col}」是 1…{len(table.rows)} 的流水号（序号），不作为{spec.label(key)}"
                "（不同调查表的 001 指不同地点）；如确为统一编号，请在列映射中指定"
            )
    merged: dict[str, str | None] = {**guessed, **explicit}
    final = {c: t for c, t in merged.items() if t is not None}
    by_target: dict[str, list[str]] = {}
    for c, t in final.items():
        by_target.setdefault(t, []).append(c)
    if clash := {t: cs for t, cs in by_target.items() if len(cs) > 1}:
        # match_columns never guesses one target twice: a clash involves the user's mapping
        detail = "; ".join(f"{'、'.join(cs)} → {t}" for t, cs in clash.items())
        report.file_error = f"列映射无效: 多列映射到同一字段 ({detail})"
        report.mapping = final
        return None
    report.ambiguous_columns = ambiguous
    plan = ColumnPlan()
    plan.first = next((c for c, t in final.items() if t == "lon"), None) or next(
        (c for c, t in final.items() if t == "x"), None
    )
    plan.second = next((c for c, t in final.items() if t == "lat"), None) or next(
        (c for c, t in final.items() if t == "y"), None
    )
    pair = plan.first is not None and plan.second is not None
    for c, t in list(final.items()):
        if t == LONLAT_ROLE:
            if pair or plan.lonlat is not None:
                del final[c]
                report.notes.append(f"列「{c}」是另一组坐标，已作为附加属性保留")
            else:
                plan.lonlat = c
        elif t in COORD_ROLES and c not in {plan.first, plan.second}:
            del final[c]  # a second coordinate pair (e.g. X/Y beside lon/lat) stays extra
            report.notes.append(f"列「{c}」是另一组坐标，已作为附加属性保留")
        elif t in COORD_ROLES and not pair:
            del final[c]  # half a pair: useless as a coordinate, kept as an extra column
            plan.first = plan.second = None
    plan.mapping = final
    report.mapping = dict(final)
    report.unknown_columns = [c for c in columns if c not in final]
    if ambiguous:
        report.notes.append(
            "以下列可对应多个字段，未自动映射（请在映射中指定）: "
            + "; ".join(f"{c} → {'/'.join(ts)}" for c, ts in ambiguous.items())
        )
    return plan


_PAIR_SPLIT_RE = re.compile(r"\s*[,，;；、/|]\s*")


def split_lonlat(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """
    Split cells holding two coordinates (``108.6640,31.9460``) into two cells.

    The separator is the first of ``, ， ; ； 、 / |`` found, else whitespace between two
    tokens (DMS values with inner spaces need a separator). A cell that does not split in
    two stays whole in the first part (and is reported unreadable by the coordinate stage).

    Parameters
    ----------
    values
        Cells (text or None), shape ``(n,)``.

    Returns
    -------
    first, second
        Object arrays of shape ``(n,)``: text or None.
    """
    first = np.full(len(values), None, dtype=object)
    second = np.full(len(values), None, dtype=object)
    for i, v in enumerate(values):
        if not isinstance(v, str) or not v.strip():
            continue
        text = v.strip()
        parts = _PAIR_SPLIT_RE.split(text)
        if len(parts) != 2:  # noqa: PLR2004
            parts = text.split()
        if len(parts) == 2 and all(parts):  # noqa: PLR2004
            first[i], second[i] = parts
        else:
            first[i] = text
    return first, second
