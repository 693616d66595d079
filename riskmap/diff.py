"""Survey-round diff (汛前/汛中/汛后排查): what changed between two versions of the layers.

Versions come from the store's history: every write keeps the version it replaced (the
audit entry's ``backup``), so the version in effect at any time is known as long as it was
kept (`Settings.history_keep`). `layer_versions` lists them; `resolve_version` turns a date,
a date-time or a version token into one; `diff_layer` compares two versions of a layer:

- 新增 (new): a key only in the later version;
- 销号 (cleared): status became 已销号;
- 变更 (changed): any declared field differs (old → new), 销号 excepted;
- 移动 (moved): the geometry moved more than `MOVE_MIN_M` metres (metric CRS);
- 删除 (removed): a key only in the earlier version.

Each row carries the township of the point (spatial join of the later version, or of the
earlier one for removed points), so a round can be read by township.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from io import BytesIO
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pandas as pd
from openpyxl import Workbook
from openpyxl.styles import Font

import geopandas as gpd

from riskmap.errors import RiskmapError
from riskmap.layers import prepare_layer

if TYPE_CHECKING:
    from collections.abc import Callable

    from riskmap.catalog import LayerSpec
    from riskmap.store import Store

MOVE_MIN_M = 1.0
"""A geometry that moved less than this (metres) is not reported as moved (rounding)."""
LOCAL_TZ = ZoneInfo("Asia/Shanghai")
"""A bare date means the start of that day in China Standard Time."""
KINDS = {"new": "新增", "cleared": "销号", "changed": "变更", "moved": "移动", "removed": "删除"}
IGNORED_FIELDS = frozenset({"updated_at", "source", "flags", "township", "township_code"})
"""Bookkeeping fields not reported as changes (they change with every write)."""


class VersionNotFoundError(RiskmapError, LookupError):
    """A --from/--to that names no kept version."""


@dataclass(frozen=True)
class Version:
    """
    One version of a layer.

    Attributes
    ----------
    token
        Version token (SHA-256 of the stored file), ``""`` when its backup was pruned.
    since
        When it became current (UTC); None for the oldest known version.
    action, user
        The write that made it (``import``, ``status``, ``undo``…), "" for the oldest.
    load
        Returns the version's features as stored.
    """

    token: str
    since: dt.datetime | None
    action: str
    user: str
    load: Callable[[], gpd.GeoDataFrame]


def layer_versions(store: Store, spec: LayerSpec) -> list[Version]:
    """
    Every known version of a layer, oldest first, the current one last.

    Versions whose backup was pruned have token ``""`` (`resolve_version` refuses them).
    """
    history = [e for e in store.history(spec) if e.get("backup")]
    versions: list[Version] = []
    previous_since: dt.datetime | None = None
    previous_action, previous_user = "", ""
    for entry in history:
        backup = entry["backup"]
        versions.append(
            Version(
                token=store.backup_version(spec, backup),
                since=previous_since,
                action=previous_action,
                user=previous_user,
                load=lambda b=backup: store.read_backup(spec, b),
            )
        )
        previous_since = dt.datetime.fromisoformat(entry["time"])
        previous_action, previous_user = entry.get("action", ""), entry.get("user", "")
    versions.append(
        Version(
            token=store.layer_version(spec),
            since=previous_since,
            action=previous_action,
            user=previous_user,
            load=lambda: store.read_layer(spec),
        )
    )
    return versions


def _is_token(text: str) -> bool:
    text = text.strip().lower()
    return len(text) >= 8 and all(c in "0123456789abcdef" for c in text)  # noqa: PLR2004


def resolve_version(versions: list[Version], ref: str | None) -> Version:
    """
    Find the version a ``--from``/``--to`` value names.

    Parameters
    ----------
    versions
        From `layer_versions`.
    ref
        None, ``"now"`` or ``"current"``: the current version; a version token or a prefix
        of at least 8 hex digits; ``yyyy-mm-dd`` (the version in effect at the start of that
        day, Asia/Shanghai); an ISO 8601 date-time (with offset, or China time).

    Raises
    ------
    VersionNotFoundError
        When the token matches no kept version, the moment is before the oldest kept one
        or its backup was pruned, or the text is neither.
    """
    if ref is None or ref.strip().lower() in {"now", "current", ""}:
        return versions[-1]
    text = ref.strip()
    if _is_token(text):
        hits = [v for v in versions if v.token and v.token.startswith(text.lower())]
        if hits:
            return hits[-1]
        msg = f"找不到版本 {text!r}（该图层的历史中没有此版本）"
        raise VersionNotFoundError(msg)
    try:
        if len(text) == 10:  # noqa: PLR2004 - yyyy-mm-dd
            moment = dt.datetime.combine(dt.date.fromisoformat(text), dt.time(), LOCAL_TZ)
        else:
            moment = dt.datetime.fromisoformat(text)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=LOCAL_TZ)
    except ValueError:
        msg = f"{text!r} 既不是日期 (2026-04-01) 也不是版本号"
        raise VersionNotFoundError(msg) from None
    found = [v for v in versions if v.since is None or v.since <= moment][-1]
    if not found.token:
        msg = f"{text} 时的版本已被清理（只保留最近的版本）"
        raise VersionNotFoundError(msg)
    return found


def _norm(value: object) -> object:
    if value is None:
        return None
    if isinstance(value, float) and pd.isna(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, str):
        return value.strip() or None
    if hasattr(value, "item"):
        return value.item()
    return value


def diff_layer(
    gdf_old: gpd.GeoDataFrame,
    gdf_new: gpd.GeoDataFrame,
    spec: LayerSpec,
    gdf_townships: gpd.GeoDataFrame,
    *,
    metric_crs: str,
    cleared_status: str = "已销号",
) -> pd.DataFrame:
    """
    Compare two versions of one layer.

    Parameters
    ----------
    gdf_old, gdf_new
        The earlier and later versions as stored, EPSG:4326.
    spec
        The layer's declaration (key and fields compared).
    gdf_townships
        Township polygons, for the township of each row.
    metric_crs
        Projected CRS in metres for the moved distance (``settings.metric_crs``).
    cleared_status
        The closing status (``已销号``).

    Returns
    -------
    df
        One row per (point, change): ``kind`` (new, cleared, changed, moved, removed),
        ``kind_label`` (新增…), ``uid``, ``name``, ``township``, ``field``, ``label``,
        ``old``, ``new`` (text; for moved: ``dist_m``), ``dist_m`` (float or None).
        Ordered by township, kind, uid.
    """
    key = spec.key
    old = prepare_layer(gdf_old, spec, gdf_townships, metric_crs=metric_crs).gdf
    new = prepare_layer(gdf_new, spec, gdf_townships, metric_crs=metric_crs).gdf
    old_by = old.set_index(old[key].astype(str))
    new_by = new.set_index(new[key].astype(str))
    rows: list[dict[str, Any]] = []

    def add(kind: str, uid: str, src: pd.Series, **extra: Any) -> None:  # noqa: ANN401
        rows.append({"kind": kind, "kind_label": KINDS[kind], "uid": uid,
                     "name": _norm(src.get("name")), "township": _norm(src.get("township")),
                     "field": "", "label": "", "old": None, "new": None, "dist_m": None,
                     **extra})  # fmt: skip

    for uid in new_by.index.difference(old_by.index):
        add("new", uid, new_by.loc[uid])
    for uid in old_by.index.difference(new_by.index):
        add("removed", uid, old_by.loc[uid])
    common = new_by.index.intersection(old_by.index)
    fields = [f for f in spec.fields if f not in IGNORED_FIELDS and f != key]
    for uid in common:
        a, b = old_by.loc[uid], new_by.loc[uid]
        if _norm(b.get("status")) == cleared_status and _norm(a.get("status")) != cleared_status:
            add("cleared", uid, b, field="status", label=spec.label("status"),
                old=_norm(a.get("status")), new=cleared_status)  # fmt: skip
            skip = {"status"}
        else:
            skip = set()
        for f in fields:
            if f in skip:
                continue
            va, vb = _norm(a.get(f)), _norm(b.get(f))
            if va != vb:
                add("changed", uid, b, field=f, label=spec.label(f), old=va, new=vb)
    if len(common):
        ga = gpd.GeoSeries(old_by.loc[common].geometry, crs=old.crs).to_crs(metric_crs)
        gb = gpd.GeoSeries(new_by.loc[common].geometry, crs=new.crs).to_crs(metric_crs)
        moved = ga.centroid.distance(gb.centroid)
        shape_changed = ~ga.geom_equals_exact(gb, tolerance=0.01)
        for uid in common[(moved > MOVE_MIN_M).to_numpy() | shape_changed.to_numpy()]:
            dist = round(float(moved.loc[uid]), 1)
            add("moved", uid, new_by.loc[uid], field="geometry", label="位置",
                old=None, new=f"{dist} m", dist_m=dist)  # fmt: skip
    cols = ["kind", "kind_label", "uid", "name", "township", "field", "label", "old", "new",
            "dist_m"]  # fmt: skip
    df = pd.DataFrame(rows, columns=cols)
    order = {k: i for i, k in enumerate(KINDS)}
    df["_k"] = df["kind"].map(order)
    df = df.sort_values(["township", "_k", "uid"], kind="stable", na_position="last")
    return df.drop(columns="_k").reset_index(drop=True)


def diff_store(
    store: Store,
    specs: list[LayerSpec],
    gdf_townships: gpd.GeoDataFrame,
    *,
    metric_crs: str,
    ref_from: str,
    ref_to: str | None = None,
) -> tuple[pd.DataFrame, dict[str, dict[str, Any]]]:
    """
    Diff every layer in `specs` between two moments or versions of the store's history.

    Returns
    -------
    df, versions
        The rows of `diff_layer` for every layer with a ``layer`` column (layer id) first;
        ``{layer_id: {"from": token, "from_since": iso, "to": token, "to_since": iso}}``.

    A version token names one layer's version: layers whose history lacks it are left out
    (a date applies to every layer).

    Raises
    ------
    VersionNotFoundError
        When a date names no kept version of some layer, or a token none of any layer (the
        message names the layers).
    """
    frames, used = [], {}
    errors = []
    for spec in specs:
        versions = layer_versions(store, spec)
        try:
            a = resolve_version(versions, ref_from)
            b = resolve_version(versions, ref_to)
        except VersionNotFoundError as exc:
            errors.append(f"{spec.name}: {exc}")
            continue
        used[spec.id] = {
            "from": a.token, "from_since": a.since.isoformat() if a.since else None,
            "to": b.token, "to_since": b.since.isoformat() if b.since else None,
        }  # fmt: skip
        if a.token == b.token:
            continue
        part = diff_layer(a.load(), b.load(), spec, gdf_townships, metric_crs=metric_crs)
        frames.append(part.assign(layer=spec.id))
    tokens = [r for r in (ref_from, ref_to) if r and _is_token(r)]
    if errors and (not tokens or not used):
        raise VersionNotFoundError("；".join(errors))
    cols = ["layer", "kind", "kind_label", "uid", "name", "township", "field", "label", "old",
            "new", "dist_m"]  # fmt: skip
    df = pd.concat(frames, ignore_index=True)[cols] if frames else pd.DataFrame(columns=cols)
    return df, used


def diff_json(df: pd.DataFrame, versions: dict, *, label: str = "") -> dict[str, Any]:
    """
    JSON of a diff: by layer and kind, with per-township counts.

    Returns
    -------
    data
        ``{"label", "versions": {layer: {...}}, "layers": {layer: {"new": [uid…],
        "cleared": [...], "removed": [...], "moved": [{"uid", "dist_m"}], "changed": [{"uid",
        "name", "township", "changes": [{"field", "label", "old", "new"}]}]}},
        "townships": {name: {kind: n}}}``.
    """
    layers: dict[str, Any] = {}
    for lid in versions:
        part = df[df["layer"] == lid]
        entry: dict[str, Any] = {k: sorted(set(part.loc[part["kind"] == k, "uid"]))
                                 for k in ("new", "cleared", "removed")}  # fmt: skip
        moved = part[part["kind"] == "moved"]
        entry["moved"] = [
            {"uid": r["uid"], "dist_m": _norm(r["dist_m"])} for _, r in moved.iterrows()
        ]
        changed = []
        for uid, g in part[part["kind"] == "changed"].groupby("uid", sort=True):
            changed.append({
                "uid": uid, "name": _norm(g["name"].iloc[0]),
                "township": _norm(g["township"].iloc[0]),
                "changes": [{"field": r["field"], "label": r["label"], "old": _norm(r["old"]),
                             "new": _norm(r["new"])} for _, r in g.iterrows()],
            })  # fmt: skip
        entry["changed"] = changed
        layers[lid] = entry
    per_point = df.drop_duplicates(["layer", "uid", "kind"])
    towns: dict[str, dict[str, int]] = {}
    for r in per_point.itertuples():
        name = _norm(r.township) or "（县界外）"
        towns.setdefault(name, {})
        towns[name][r.kind] = towns[name].get(r.kind, 0) + 1
    return {"label": label, "versions": versions, "layers": layers, "townships": towns}


def diff_table(df: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    """Chinese table of a diff: 乡镇, 图层, 类型, 统一编号, 名称, 字段, 原值, 新值."""
    return pd.DataFrame({
        "乡镇": df["township"].fillna("（县界外）"),
        "图层": df["layer"].map(names),
        "类型": df["kind_label"],
        "统一编号": df["uid"],
        "名称": df["name"].fillna(""),
        "字段": df["label"],
        "原值": df["old"].map(lambda v: "" if v is None or pd.isna(v) else str(v)),
        "新值": df["new"].map(lambda v: "" if v is None or pd.isna(v) else str(v)),
    })  # fmt: skip


def diff_xlsx(table: pd.DataFrame, *, title: str, notes: list[str]) -> bytes:
    """Write a diff table (`diff_table`) as one sheet with a title row; every cell as text."""
    wb = Workbook()
    ws = wb.active
    ws.title = "变化清单"
    ws.cell(row=1, column=1, value=title).font = Font(bold=True, size=14)
    ws.cell(row=2, column=1, value="；".join(notes))
    for j, h in enumerate(table.columns, start=1):
        ws.cell(row=3, column=j, value=h).font = Font(bold=True)
    for i, row in enumerate(table.itertuples(index=False), start=4):
        for j, value in enumerate(row, start=1):
            cell = ws.cell(row=i, column=j, value=str(value))
            cell.data_type = "s"  # text: never a formula
    for j, w in enumerate((10, 14, 6, 16, 24, 12, 20, 20), start=1):
        ws.column_dimensions[ws.cell(row=3, column=j).column_letter].width = w
    ws.freeze_panes = "A4"
    buf = BytesIO()
    wb.save(buf)
    return buf.getvalue()
