"""考核 targets: the county plan's promises measured from the layers, with a traffic light.

The targets are declared in ``layers/targets.toml`` (read by `riskmap.io.read_targets_raw`,
checked by `targets_from_dict`): 12 monitoring stations, 2 engineering treatments, 154 people
relocated, drills at every site, 整改率 100%, 6 waterlogging spots, 3 monitors, 10 bridges
(城口县2026年安全生产和防灾减灾救灾工作要点). `measure_targets` computes done / target per
township and for the county; `targets_xlsx` writes the 考核表.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from io import BytesIO
from typing import TYPE_CHECKING, Any

import pandas as pd
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill

from riskmap.errors import CatalogError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from riskmap.catalog import Catalog
    from riskmap.layers import LayerData

MEASURES = frozenset({"count", "sum", "share"})
OPERATORS = frozenset({"not", "present", "within_days", "min"})
LIGHTS = {"green": "绿", "yellow": "黄", "red": "红"}
LIGHT_FILL = {"绿": "C6EFCE", "黄": "FFEB9C", "红": "FFC7CE"}
"""Cell colours of the 考核表 (Excel's own good / neutral / bad styles)."""
COLUMNS = ("code", "name", "id", "label", "unit", "done", "target", "ratio", "light", "source")
"""Columns of `measure_targets`, also when no target is declared (no ``targets.toml``)."""


@dataclass(frozen=True)
class Target:
    """
    One declared target (see the header of ``layers/targets.toml``).

    Attributes
    ----------
    id, label, layer, measure, field, unit, due, source
        As declared; `field` only for ``measure = "sum"``.
    target
        The county figure (count/sum) or share (0–1).
    where, of, planned
        Conditions ``{field: value | [values] | {operator: value}}``.
    """

    id: str
    label: str
    layer: str
    measure: str
    target: float
    unit: str = ""
    field: str = ""
    where: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    of: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    planned: Mapping[str, Any] | None = None
    due: str = ""
    source: str = ""


@dataclass(frozen=True)
class Targets:
    """All targets and the traffic-light thresholds (shares of the target)."""

    targets: tuple[Target, ...]
    green: float = 1.0
    yellow: float = 0.6


def targets_from_dict(raw: Mapping[str, Any], catalog: Catalog) -> Targets:
    """
    Check and build the targets of ``layers/targets.toml``.

    Raises
    ------
    CatalogError
        Unknown layer, measure, field or operator, a sum without `field`, a share target
        outside 0–1; every problem listed, each naming the target's id.
    """
    problems: list[str] = []
    out = []
    for i, t in enumerate(raw.get("targets", ())):
        tid = str(t.get("id", f"#{i + 1}"))
        layer_id = str(t.get("layer", ""))
        if layer_id not in catalog:
            problems.append(f"{tid}: 未知图层 {layer_id!r}")
            continue
        fields = catalog.get(layer_id).fields
        measure = str(t.get("measure", ""))
        if measure not in MEASURES:
            problems.append(f"{tid}: measure 应为 {sorted(MEASURES)}，而不是 {measure!r}")
        if measure == "sum" and t.get("field") not in fields:
            problems.append(f"{tid}: sum 需要图层 {layer_id} 的数值字段 field")
        try:
            target = float(t["target"])
        except (KeyError, TypeError, ValueError):
            problems.append(f"{tid}: target 应为数字")
            continue
        if measure == "share" and not 0 < target <= 1:
            problems.append(f"{tid}: share 的 target 应在 0–1 之间（1.0 = 100%）")
        for part in ("where", "of", "planned"):
            for key, cond in (t.get(part) or {}).items():
                if key not in fields:
                    problems.append(f"{tid}.{part}: 图层 {layer_id} 没有字段 {key!r}")
                if isinstance(cond, dict) and not set(cond) <= OPERATORS:
                    problems.append(f"{tid}.{part}.{key}: 未知条件 {sorted(set(cond) - OPERATORS)}")
        out.append(
            Target(
                id=tid,
                label=str(t.get("label", tid)),
                layer=layer_id,
                measure=measure,
                target=target,
                unit=str(t.get("unit", "")),
                field=str(t.get("field", "")),
                where=dict(t.get("where") or {}),
                of=dict(t.get("of") or {}),
                planned=dict(t["planned"]) if "planned" in t else None,
                due=str(t.get("due", "")),
                source=str(t.get("source", "")),
            )
        )
    if problems:
        msg = "targets.toml: " + "；".join(problems)
        raise CatalogError(msg)
    lights = raw.get("lights", {})
    return Targets(
        tuple(out), green=float(lights.get("green", 1.0)), yellow=float(lights.get("yellow", 0.6))
    )


def _condition(values: pd.Series, cond: object, as_of: dt.date) -> pd.Series:
    if isinstance(cond, list):
        return values.isin(cond).fillna(value=False).astype(bool)
    if not isinstance(cond, dict):
        return values.eq(cond).fillna(value=False).astype(bool)
    mask = pd.Series(data=True, index=values.index)
    present = values.notna() & values.astype(str).str.strip().ne("")
    for op, arg in cond.items():
        if op == "not":
            mask &= values.ne(arg).fillna(value=True).astype(bool)
        elif op == "present":
            mask &= present if arg else ~present
        elif op == "min":
            mask &= pd.to_numeric(values, errors="coerce").ge(arg).fillna(value=False).astype(bool)
        elif op == "within_days":
            dates = pd.to_datetime(values, errors="coerce", format="ISO8601")
            start = pd.Timestamp(as_of - dt.timedelta(days=int(arg)))
            mask &= (dates >= start) & (dates <= pd.Timestamp(as_of))
    return mask


def select(gdf: pd.DataFrame, conditions: Mapping[str, Any], *, as_of: dt.date) -> pd.Series:
    """
    Boolean mask of the rows meeting every condition (a missing field matches nothing).

    Parameters
    ----------
    gdf
        Features (prepared layer).
    conditions
        ``{field: value | [values] | {operator: value}}`` (header of ``targets.toml``).
    as_of
        The day ``within_days`` counts back from.
    """
    mask = pd.Series(data=True, index=gdf.index)
    for key, cond in conditions.items():
        if key not in gdf.columns:
            return pd.Series(data=False, index=gdf.index)
        mask &= _condition(gdf[key], cond, as_of)
    return mask


def _contributions(t: Target, gdf: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """
    Return each feature's contributions ``done`` and ``base`` to the measure.

    Summed over a set of features they give done (count/sum) and its own target (planned),
    or, for a share, numerator and denominator. ``base`` is NaN for a count/sum target
    without ``planned``.
    """
    where = select(gdf, t.where, as_of=as_of)
    if t.measure == "share":
        base = select(gdf, t.of, as_of=as_of)
        return pd.DataFrame({"done": (where & base).astype(float), "base": base.astype(float)})
    if t.measure == "sum":
        values = pd.to_numeric(gdf[t.field], errors="coerce").fillna(0).astype(float)
    else:
        values = pd.Series(1.0, index=gdf.index)
    done = values.where(where, 0.0)
    if t.planned is None:
        return pd.DataFrame({"done": done, "base": float("nan")})
    planned = select(gdf, t.planned, as_of=as_of)
    return pd.DataFrame({"done": done, "base": values.where(planned, 0.0)})


def _figure(t: Target, done: float, base: float) -> tuple[float, float | None]:
    """Return ``(done, own target)`` from summed contributions (a share: num / den)."""
    if t.measure == "share":
        return (done / base if base else float("nan")), t.target
    return done, None if pd.isna(base) else base


def light(done: float, target: float | None, targets: Targets) -> str:
    """
    Return the traffic light ``绿``/``黄``/``红`` of done against target, ``""`` for no target.

    绿: done ≥ green × target; 黄: done ≥ yellow × target; 红: below (thresholds from
    ``[lights]`` of ``targets.toml``).
    """
    if target is None or not target or pd.isna(done):
        return ""
    ratio = done / target
    if ratio >= targets.green - 1e-9:
        return LIGHTS["green"]
    return LIGHTS["yellow"] if ratio >= targets.yellow - 1e-9 else LIGHTS["red"]


def measure_targets(
    targets: Targets,
    layers: Mapping[str, LayerData],
    township_codes: pd.DataFrame,
    *,
    as_of: dt.date | None = None,
) -> pd.DataFrame:
    """
    Done / target / light of every target, per township and for the county.

    A township's target is the measure over its own planned features (a share target is the
    same share); a township with nothing planned has no target and no light. The county
    target is the declared figure.

    Returns
    -------
    df
        Columns ``code`` (9-digit or ``"county"``), ``name``, ``id``, ``label``, ``unit``,
        ``done``, ``target`` (float or None), ``ratio`` (done / target or None), ``light``,
        ``source``. Townships in code order, then the county; targets in file order. No
        rows, the same columns, when no target is declared or none of their layers is loaded.
    """
    as_of = as_of or dt.date.today()
    towns = list(township_codes[["adcode", "name"]].itertuples(index=False))
    per_target: dict[str, dict[str, tuple[float, float]]] = {}
    for t in targets.targets:
        layer = layers.get(t.layer)
        if layer is None:
            continue
        parts = _contributions(t, layer.gdf, as_of)
        parts["key"] = layer.gdf[layer.spec.key].to_numpy()
        member = layer.shares[["key", "township_code"]].drop_duplicates()
        by_town = member.merge(parts, on="key").groupby("township_code")[["done", "base"]]
        sums = by_town.sum(min_count=1)
        figures = {code: (float(r.done), float(r.base)) for code, r in sums.iterrows()}
        figures["county"] = (float(parts["done"].sum()), float(parts["base"].sum(min_count=1)))
        per_target[t.id] = figures
    rows = []
    for code, name in [*towns, ("county", "全县")]:
        for t in targets.targets:
            if t.id not in per_target:
                continue
            raw_done, raw_base = per_target[t.id].get(code, (0.0, float("nan")))
            if t.planned is not None and t.measure != "share" and pd.isna(raw_base):
                raw_base = 0.0  # a township with none of the planned features
            done, own = _figure(t, raw_done, raw_base)
            target = t.target if code == "county" else own
            if t.measure == "share" and pd.isna(done):
                target = None
            ratio = None if not target or pd.isna(done) else round(done / target, 4)
            rows.append(
                {
                    "code": code, "name": name, "id": t.id, "label": t.label, "unit": t.unit,
                    "done": None if pd.isna(done) else round(done, 4), "target": target,
                    "ratio": ratio, "light": light(done, target, targets), "source": t.source,
                }
            )  # fmt: skip
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _shown(value: float | None, unit: str) -> str:
    if value is None or pd.isna(value):
        return "—"
    if unit == "%":
        return f"{value:.0%}"
    return f"{value:g}"


def targets_table(df: pd.DataFrame) -> pd.DataFrame:
    """
    Turn `measure_targets` into a Chinese table: 乡镇, 考核指标, 完成, 目标, 完成率, 状态.

    Returns
    -------
    table
        Text cells (shares as percentages, units appended, ``—`` for none).
    """
    return pd.DataFrame(
        {
            "乡镇": df["name"],
            "考核指标": df["label"],
            "完成": [_shown(v, u) for v, u in zip(df["done"], df["unit"], strict=True)],
            "目标": [_shown(v, u) for v, u in zip(df["target"], df["unit"], strict=True)],
            "单位": df["unit"].where(df["unit"] != "%", ""),
            "完成率": [_shown(v, "%") for v in df["ratio"]],
            "状态": df["light"].replace("", "—"),
        }
    )


def targets_json(df: pd.DataFrame) -> dict[str, Any]:
    """
    JSON of the 考核 figures.

    Returns
    -------
    data
        ``{"county": [{"id", "label", "unit", "done", "target", "ratio", "light"}],
        "townships": [{"code", "name", "targets": [...same keys...]}]}``.
    """
    keys = ["id", "label", "unit", "done", "target", "ratio", "light"]
    county = df[df["code"] == "county"][keys].to_dict("records")
    townships = [
        {"code": code, "name": g["name"].iloc[0], "targets": g[keys].to_dict("records")}
        for code, g in df[df["code"] != "county"].groupby("code", sort=False)
    ]
    return {"county": county, "townships": townships}


def targets_xlsx(
    df: pd.DataFrame,
    *,
    title: str,
    notes: list[str],
    completeness: pd.DataFrame | None = None,
) -> bytes:
    """
    Write the 考核表: sheet 全县, sheet 各乡镇, and (optionally) sheet 一点一案一策.

    Parameters
    ----------
    df
        From `measure_targets`.
    title
        Title row, e.g. ``"城口县2026年风险隐患考核表"``.
    notes
        Second row: as-of date, 示意边界, 演示数据…
    completeness
        From `riskmap.completeness.completeness_table` (Chinese headers), or None.

    Returns
    -------
    data
        XLSX bytes; light cells filled green/yellow/red, text cells written as text.
    """
    wb = Workbook()
    ws_county = wb.active
    ws_county.title = "全县"
    county = df[df["code"] == "county"]
    _sheet(ws_county, title, notes, targets_table(county).drop(columns=["乡镇"]),
           sources=county["source"].tolist())  # fmt: skip
    _sheet(wb.create_sheet("各乡镇"), title, notes,
           targets_table(df[(df["code"] != "county") & df["target"].notna()]))  # fmt: skip
    if completeness is not None:
        _sheet(wb.create_sheet("一点一案一策"), title, notes, completeness)
    buf = BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _sheet(ws: Any, title: str, notes: list[str], table: pd.DataFrame,  # noqa: ANN401
           *, sources: list[str] | None = None) -> None:  # fmt: skip
    headers = [*table.columns, *(["依据"] if sources is not None else [])]
    ws.cell(row=1, column=1, value=title).font = Font(bold=True, size=14)
    ws.cell(row=2, column=1, value="；".join(notes)).font = Font(size=10, color="555555")
    for j, h in enumerate(headers, start=1):
        cell = ws.cell(row=3, column=j, value=h)
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="DDEBF7")
        cell.alignment = Alignment(horizontal="center")
    widths = [max(4, *(len(str(h)) * 2 for h in headers))] * len(headers)
    for i, row in enumerate(table.itertuples(index=False), start=4):
        values = [*row, *([sources[i - 4]] if sources is not None else [])]
        for j, value in enumerate(values, start=1):
            text = "" if value is None else str(value)
            cell = ws.cell(row=i, column=j, value=text)
            cell.data_type = "s"  # text: never a formula, whatever the data holds
            if headers[j - 1] == "状态" and text in LIGHT_FILL:
                cell.fill = PatternFill("solid", fgColor=LIGHT_FILL[text])
                cell.alignment = Alignment(horizontal="center")
            widths[j - 1] = min(60, max(widths[j - 1], len(text) * 2))
    for j, w in enumerate(widths, start=1):
        ws.column_dimensions[ws.cell(row=3, column=j).column_letter].width = w
    ws.freeze_panes = "A4"
