"""Responsibility completeness (一点一案一策): who answers for each hazard, and what is missing.

For every 在册隐患 (not 已销号; points imported as 待补充 included), per township and layer:
the share of points with 责任人, 联系电话, 两卡 (明白卡/避险卡 issued), 应急预案 and a 最近演练
within 12 months, and the list of what each point lacks. A check applies to a layer only
when the layer declares its field (two_cards, has_plan and drill_date are geohazard fields,
DOMAIN.md "地质灾害隐患点").

Source: 城口县2026年工作要点 ("一点一案一策", "全覆盖开展单点避险演练"); DOMAIN.md.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from riskmap.aggregate import is_cleared, risk_layers

if TYPE_CHECKING:
    from collections.abc import Mapping

    from riskmap.layers import LayerData

REQUIRED_LABEL = "必填项"
"""Check of the layer's required attributes (missing ones are listed by their own labels)."""
DRILL_MAX_DAYS = 365
"""A drill counts when it is at most this many days old (12 months)."""


@dataclass(frozen=True)
class Check:
    """One completeness check: field key, Chinese label, kind (``text``, ``true``, ``recent``)."""

    field: str
    label: str
    kind: str


CHECKS = (
    Check("resp_name", "责任人", "text"),
    Check("resp_phone", "联系电话", "text"),
    Check("two_cards", "两卡", "true"),
    Check("has_plan", "应急预案", "true"),
    Check("drill_date", "最近演练", "recent"),
)


def _ok(values: pd.Series, kind: str, as_of: dt.date) -> pd.Series:
    if kind == "text":
        return values.notna() & values.astype(str).str.strip().ne("") & values.astype(str).ne("nan")
    if kind == "true":
        return values.eq(other=True).fillna(value=False).astype(bool)
    dates = pd.to_datetime(values, errors="coerce", format="ISO8601")
    start = pd.Timestamp(as_of - dt.timedelta(days=DRILL_MAX_DAYS))
    return ((dates >= start) & (dates <= pd.Timestamp(as_of))).fillna(value=False).astype(bool)


def point_checks(layer: LayerData, *, as_of: dt.date) -> pd.DataFrame:
    """
    One row per 在册隐患 of the layer: key, name and a boolean per applicable check.

    Returns
    -------
    df
        Columns ``key``, ``name``, then one column per check label whose field the layer
        declares (True = present), `REQUIRED_LABEL` (every required attribute given: a point
        imported as 待补充 is not), then ``missing`` (the labels of what is missing — checks,
        then blank required fields — joined with 、; "" when complete).
    """
    gdf = layer.gdf[~is_cleared(layer.gdf)]
    out = pd.DataFrame({"key": gdf[layer.spec.key], "name": gdf.get("name")}, index=gdf.index)
    labels = []
    for check in CHECKS:
        if check.field in layer.spec.fields:
            values = (
                gdf[check.field]
                if check.field in gdf.columns
                else pd.Series(index=gdf.index, dtype=object)
            )
            out[check.label] = _ok(values, check.kind, as_of)
            labels.append(check.label)
    # required attributes (a point imported as 待补充 lacks some on purpose, issue 10)
    required = [f for f in layer.spec.required if f not in (layer.spec.key, "name")]
    given = {
        f: _ok(gdf[f], "text", as_of).to_numpy() if f in gdf.columns else [False] * len(gdf)
        for f in required
    }
    blank_required = [
        [layer.spec.label(f) for f in required if not given[f][i]] for i in range(len(gdf))
    ]
    out[REQUIRED_LABEL] = [not blanks for blanks in blank_required]
    labels.append(REQUIRED_LABEL)
    out["missing"] = [
        "、".join(
            [label for label in labels if label != REQUIRED_LABEL and not row[label]] + blanks
        )
        for row, blanks in zip(out[labels].to_dict("records"), blank_required, strict=True)
    ]
    return out


def completeness_frame(
    layers: Mapping[str, LayerData],
    township_codes: pd.DataFrame,
    *,
    as_of: dt.date | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """
    Shares per (township, layer) and the list of incomplete points.

    Returns
    -------
    shares, missing
        ``shares``: columns ``code``, ``name``, ``layer``, ``points`` (在册隐患), then one
        share (0–1, None for no points or a check the layer lacks) per check label, then
        ``complete`` (share of points lacking nothing); townships with points, then the
        county (``code = "county"``). ``missing``: ``code``, ``township``, ``layer``, ``uid``,
        ``point``, ``missing`` — one row per incomplete point and township.
    """
    as_of = as_of or dt.date.today()
    labels = [*(c.label for c in CHECKS), REQUIRED_LABEL]
    names = dict(zip(township_codes["adcode"], township_codes["name"], strict=True))
    share_rows, missing_rows = [], []
    for lid, layer in risk_layers(layers).items():
        checks = point_checks(layer, as_of=as_of)
        member = layer.shares[["key", "township_code"]].drop_duplicates()
        per = member.merge(checks, on="key", how="inner")
        groups = [(code, g) for code, g in per.groupby("township_code", sort=False)]
        groups.sort(key=lambda item: list(names).index(item[0]) if item[0] in names else 999)
        for code, g in [*groups, ("county", checks)]:
            row = {"code": code, "name": names.get(code, "全县"), "layer": lid, "points": len(g)}
            for label in labels:
                row[label] = round(float(g[label].mean()), 4) if label in g and len(g) else None
            row["complete"] = round(float(g["missing"].eq("").mean()), 4) if len(g) else None
            share_rows.append(row)
        missing_rows += [
            {"code": r["township_code"], "township": names.get(r["township_code"], ""),
             "layer": lid, "uid": r["key"], "point": r["name"], "missing": r["missing"]}
            for r in per[per["missing"] != ""].to_dict("records")
        ]  # fmt: skip
    shares = pd.DataFrame(share_rows)
    missing = pd.DataFrame(
        missing_rows, columns=["code", "township", "layer", "uid", "point", "missing"]
    )
    return shares, missing


def completeness_table(shares: pd.DataFrame, layer_names: Mapping[str, str]) -> pd.DataFrame:
    """
    Chinese table of `completeness_frame` shares: 乡镇, 图层, 在册隐患, % per check, 齐全.

    Returns
    -------
    table
        Text cells; ``—`` where a check does not apply.
    """
    out = pd.DataFrame({"乡镇": shares["name"], "图层": shares["layer"].map(layer_names),
                        "在册隐患": shares["points"].astype(str)})  # fmt: skip
    for label in [*[c.label for c in CHECKS], REQUIRED_LABEL, "complete"]:
        out["齐全" if label == "complete" else label] = [
            "—" if v is None or pd.isna(v) else f"{v:.0%}" for v in shares[label]
        ]
    return out
