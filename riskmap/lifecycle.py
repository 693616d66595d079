"""Status changes of risk points (隐患动态清零): plan, check and commit through the store.

The lifecycle is declared in ``layers/catalog.toml`` (``[lifecycle]``, see `lifecycle_spec`):
在册/监测中 → 治理中 → 已销号, 已销号 → 在册 only as 重新入册 with a reason; 销号 needs 销号日期
and 销号原因 (工程治理, 搬迁避让, 排危除险, 趋于稳定 — DOMAIN.md "Lifecycle").

Three steps, like an import:

1. `check_transition` — pure: is ``old → new`` allowed and are its required fields given?
   The import engineer's attribute-only update path (status sheets, case c30) calls it too.
2. `plan_status_change` — pure: the layer with one point's status changed, or the problems.
3. `commit_status_change` — the editor's role is checked here (server side, not only by
   hiding widgets), an optional evidence file (photo/PDF, type checked by content, size
   limited) is stored with `Store.write_attachment`, and the layer is written with
   `Store.write_layer(..., action="status", expected_version=...)`: one audit entry (who,
   when, uid, from → to, reason, note, evidence) that `Store.undo` reverts.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import filetype
import pandas as pd

from riskmap.errors import CatalogError, RiskmapError
from riskmap.io import last_undoable

if TYPE_CHECKING:
    from collections.abc import Mapping

    import geopandas as gpd

    from riskmap.auth import EditorSession
    from riskmap.catalog import Catalog, LayerSpec
    from riskmap.store import Store

REQUIREMENTS = {
    "cleared_date": "销号日期",
    "cleared_reason": "销号原因",
    "reason": "原因说明",
}
"""Keys a transition may require, with their Chinese labels."""

EVIDENCE_MIME = {"jpg": "image/jpeg", "png": "image/png", "pdf": "application/pdf"}
"""Evidence types we accept (extension → MIME type recognised from the content)."""


class StatusChangeError(RiskmapError, ValueError):
    """A status change that is not allowed or lacks what it requires (message in Chinese)."""


class EditPermissionError(RiskmapError, PermissionError):
    """The user may not change data (not signed in as an editor)."""


@dataclass(frozen=True)
class Transition:
    """
    One allowed status change.

    Attributes
    ----------
    from_statuses
        Statuses it starts from (a blank status counts as the first declared status, 在册).
    to
        Status it leads to.
    label
        What staff call it (销号, 重新入册…).
    requires
        Keys of `REQUIREMENTS` that must be given.
    """

    from_statuses: tuple[str, ...]
    to: str
    label: str
    requires: tuple[str, ...] = ()


@dataclass(frozen=True)
class LifecycleSpec:
    """
    The lifecycle declared in the catalog (``[lifecycle]``).

    Attributes
    ----------
    statuses
        Every status, in order (``在册, 监测中, 治理中, 已销号``).
    cleared
        The closing status (``已销号``).
    in_progress
        The status whose deadline can pass (``治理中``).
    reasons
        Allowed 销号原因.
    transitions
        Allowed changes.
    deadline_field, deadline_fields
        Field holding a point's deadline (整改期限), and per-layer overrides.
    evidence_max_mb, evidence_types
        Largest evidence file in MiB; accepted types (keys of `EVIDENCE_MIME`).
    source
        The document the rules come from.
    """

    statuses: tuple[str, ...]
    cleared: str
    in_progress: str
    reasons: tuple[str, ...]
    transitions: tuple[Transition, ...]
    deadline_field: str = "deadline"
    deadline_fields: Mapping[str, str] = field(default_factory=dict)
    evidence_max_mb: float = 10.0
    evidence_types: tuple[str, ...] = ("jpg", "png", "pdf")
    source: str = ""

    def deadline_of(self, layer_id: str) -> str:
        """Return the deadline field of a layer."""
        return self.deadline_fields.get(layer_id, self.deadline_field)

    def transition(self, old: str, new: str) -> Transition | None:
        """Return the declared transition ``old → new``, or None."""
        for t in self.transitions:
            if t.to == new and old in t.from_statuses:
                return t
        return None


def lifecycle_spec(catalog: Catalog) -> LifecycleSpec:
    """
    Read and check the catalog's ``[lifecycle]`` table.

    Raises
    ------
    CatalogError
        When the table is missing or malformed (unknown status in a transition, unknown
        requirement, unknown evidence type…); the message names the key.
    """
    raw = catalog.lifecycle
    if not raw:
        msg = "catalog.toml 缺少 [lifecycle] 表 (no lifecycle declared)"
        raise CatalogError(msg)
    try:
        statuses = tuple(str(s) for s in raw["statuses"])
        cleared = str(raw["cleared"])
        in_progress = str(raw.get("in_progress", "治理中"))
        reasons = tuple(str(r) for r in raw.get("reasons", ()))
        transitions = tuple(
            Transition(
                from_statuses=tuple(str(s) for s in t["from"]),
                to=str(t["to"]),
                label=str(t.get("label", t["to"])),
                requires=tuple(str(r) for r in t.get("requires", ())),
            )
            for t in raw.get("transitions", ())
        )
    except (KeyError, TypeError) as exc:
        msg = f"[lifecycle] 缺少或错误的键 {exc} (malformed lifecycle table)"
        raise CatalogError(msg) from None
    problems = [f"状态 {n!r} 不在 statuses 中" for n in (cleared, in_progress) if n not in statuses]
    for t in transitions:
        problems += [
            f"transition {t.label}: 状态 {s!r} 不在 statuses 中"
            for s in (*t.from_statuses, t.to)
            if s not in statuses
        ]
        problems += [
            f"transition {t.label}: 未知要求 {r!r}（可用 {', '.join(REQUIREMENTS)}）"
            for r in t.requires
            if r not in REQUIREMENTS
        ]
    types = tuple(str(t) for t in raw.get("evidence_types", ("jpg", "png", "pdf")))
    problems += [f"evidence_types: 不支持 {t!r}" for t in types if t not in EVIDENCE_MIME]
    if problems:
        msg = "[lifecycle] " + "；".join(problems)
        raise CatalogError(msg)
    return LifecycleSpec(
        statuses=statuses,
        cleared=cleared,
        in_progress=in_progress,
        reasons=reasons,
        transitions=transitions,
        deadline_field=str(raw.get("deadline_field", "deadline")),
        deadline_fields={str(k): str(v) for k, v in raw.get("deadline_fields", {}).items()},
        evidence_max_mb=float(raw.get("evidence_max_mb", 10)),
        evidence_types=types,
        source=str(raw.get("source", "")),
    )


def _blank(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and pd.isna(value):
        return True
    return isinstance(value, str) and not value.strip()


def _as_date(value: object) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        return None


def check_transition(
    spec: LifecycleSpec,
    old_status: str | None,
    new_status: str,
    fields: Mapping[str, Any],
    *,
    today: dt.date | None = None,
) -> list[str]:
    """
    Check one status change; return every problem (``[]`` when it is allowed and complete).

    Pure: the app, the CLI and the status-sheet import (attribute-only updates, case c30)
    call it with the same rules.

    Parameters
    ----------
    spec
        The catalog's lifecycle (`lifecycle_spec`).
    old_status
        Current status; None or blank counts as the first status (在册, a fresh import).
    new_status
        Requested status.
    fields
        Values given with the change: ``cleared_date`` (ISO ``yyyy-mm-dd`` or a date),
        ``cleared_reason``, ``reason`` (free text). Missing keys count as blank.
    today
        For "销号日期不能晚于今天"; default: today's date.

    Returns
    -------
    problems
        Chinese messages naming the field, e.g. ``"销号日期 为空（已销号 需要）"``.
    """
    today = today or dt.date.today()
    old = spec.statuses[0] if _blank(old_status) else str(old_status)
    if new_status not in spec.statuses:
        return [f"状态 {new_status!r} 无效；可用: {'、'.join(spec.statuses)}"]
    if old == new_status:
        return [f"状态已是 {new_status}，无需变更"]
    t = spec.transition(old, new_status)
    if t is None:
        allowed = [f"{x.to}（{x.label}）" for x in spec.transitions if old in x.from_statuses]
        return [f"不允许从 {old} 改为 {new_status}；可改为: {'、'.join(allowed) or '（无）'}"]
    problems = [
        f"{REQUIREMENTS[r]} 为空（{t.label} 需要）" for r in t.requires if _blank(fields.get(r))
    ]
    if "cleared_date" in t.requires and not _blank(fields.get("cleared_date")):
        date = _as_date(fields["cleared_date"])
        if date is None:
            problems.append(f"销号日期 {fields['cleared_date']!r} 不是日期（应为 2026-06-30 格式）")
        elif date > today:
            problems.append(f"销号日期 {date.isoformat()} 晚于今天（{today.isoformat()}）")
    reason = fields.get("cleared_reason")
    if "cleared_reason" in t.requires and not _blank(reason) and reason not in spec.reasons:
        problems.append(f"销号原因 {reason!r} 无效；可用: {'、'.join(spec.reasons)}")
    return problems


@dataclass(frozen=True)
class StatusChange:
    """
    A planned status change of one point (`plan_status_change`).

    Attributes
    ----------
    layer_id, uid
        Which point.
    old, new
        Status before and after (old ``""`` when it was blank).
    label
        The transition's name (销号, 重新入册…).
    fields
        Stored field changes ``{field: (old, new)}`` (status, cleared_date, cleared_reason,
        updated_at).
    reason, note
        The reason (销号原因 or the 重新入册 reason) and the free note, for the audit entry.
    gdf_result
        The whole layer after the change (as stored: no join columns), EPSG:4326.
    base_version
        The layer version the plan was made against (checked again when committing).
    """

    layer_id: str
    uid: str
    old: str
    new: str
    label: str
    fields: Mapping[str, tuple[Any, Any]]
    reason: str
    note: str
    gdf_result: gpd.GeoDataFrame
    base_version: str


def _text(value: object) -> str:
    return "" if _blank(value) else str(value).strip()


def plan_status_change(
    gdf: gpd.GeoDataFrame,
    layer: LayerSpec,
    spec: LifecycleSpec,
    uid: str,
    new_status: str,
    *,
    cleared_date: str | dt.date | None = None,
    reason: str = "",
    note: str = "",
    base_version: str = "",
    today: dt.date | None = None,
) -> StatusChange:
    """
    Plan one point's status change (pure: `gdf` is not modified).

    Parameters
    ----------
    gdf
        The layer as stored (`Store.read_layer`), EPSG:4326.
    layer
        The layer's declaration (its ``key`` finds the point).
    spec
        The catalog's lifecycle.
    uid
        The point's key value (统一编号).
    new_status
        Requested status.
    cleared_date
        销号日期 (required for 已销号), ISO ``yyyy-mm-dd``.
    reason
        销号原因 for 已销号 (one of ``spec.reasons``); the free-text reason for 重新入册.
    note
        Optional free note, kept in the audit entry.
    base_version
        `Store.layer_version` when `gdf` was read.
    today
        Today's date (销号日期 check and ``updated_at``); default: today.

    Returns
    -------
    change
        A `StatusChange` whose ``gdf_result`` has ``status`` set, ``cleared_date`` and
        ``cleared_reason`` set for 已销号 (emptied when a point leaves 已销号) and
        ``updated_at`` = today.

    Raises
    ------
    StatusChangeError
        When the uid is not in the layer, or `check_transition` finds problems (all listed).
    """
    today = today or dt.date.today()
    key = layer.key
    uid = str(uid).strip()
    rows = gdf.index[gdf[key].astype(str).str.strip() == uid] if key in gdf.columns else []
    if len(rows) != 1:
        what = "找不到" if len(rows) == 0 else f"有 {len(rows)} 个"
        msg = f"{layer.name}: {what}统一编号为 {uid!r} 的点位"
        raise StatusChangeError(msg)
    row = rows[0]
    old = _text(gdf.loc[row, "status"]) if "status" in gdf.columns else ""
    date_text = cleared_date.isoformat() if isinstance(cleared_date, dt.date) else cleared_date
    given = {"cleared_date": date_text, "cleared_reason": reason, "reason": reason}
    problems = check_transition(spec, old, new_status, given, today=today)
    if problems:
        msg = f"{layer.name} {uid}: " + "；".join(problems)
        raise StatusChangeError(msg)
    t = spec.transition(old or spec.statuses[0], new_status)
    assert t is not None  # noqa: S101 - check_transition found it
    values: dict[str, Any] = {"status": new_status, "updated_at": today.isoformat()}
    if new_status == spec.cleared:
        date = _as_date(date_text)
        values |= {"cleared_date": date.isoformat() if date else None, "cleared_reason": reason}
    elif old == spec.cleared:
        values |= {"cleared_date": None, "cleared_reason": None}
    out = gdf.copy()
    changes: dict[str, tuple[Any, Any]] = {}
    for name, value in values.items():
        before = out.loc[row, name] if name in out.columns else None
        if name not in out.columns:
            out[name] = None
        out[name] = out[name].astype(object)
        out.loc[row, name] = value
        changes[name] = (None if _blank(before) else before, value)
    return StatusChange(
        layer_id=layer.id,
        uid=uid,
        old=old,
        new=new_status,
        label=t.label,
        fields=changes,
        reason=_text(reason),
        note=_text(note),
        gdf_result=out,
        base_version=base_version,
    )


def check_evidence(data: bytes, spec: LifecycleSpec, *, filename: str = "") -> str:
    """
    Check an evidence file (photo/PDF) by its content and size; return its extension.

    The type comes from the file's leading bytes (`filetype`), never from its name: a
    renamed executable is refused.

    Parameters
    ----------
    data
        The file's bytes.
    spec
        Accepted types (``spec.evidence_types``) and the size limit (``evidence_max_mb``).
    filename
        For messages only.

    Returns
    -------
    ext
        ``"jpg"``, ``"png"`` or ``"pdf"``.

    Raises
    ------
    StatusChangeError
        Empty, too large, or not one of the accepted types (the message names the file).
    """
    name = filename or "证明材料"
    limit = spec.evidence_max_mb * 1024 * 1024
    if not data:
        msg = f"{name}: 文件为空"
        raise StatusChangeError(msg)
    if len(data) > limit:
        msg = f"{name}: 文件 {len(data) / 1048576:.1f} MB，超过上限 {spec.evidence_max_mb:g} MB"
        raise StatusChangeError(msg)
    kind = filetype.guess(data)
    mime = kind.mime if kind is not None else "未知"
    for ext in spec.evidence_types:
        if EVIDENCE_MIME[ext] == mime:
            return ext
    accepted = "、".join(e.upper() for e in spec.evidence_types)
    msg = f"{name}: 文件类型 {mime} 不被接受；证明材料应为 {accepted}（按文件内容判断）"
    raise StatusChangeError(msg)


def require_editor(who: EditorSession) -> str:
    """
    Return the editor's name, or raise when the session may not change data.

    Raises
    ------
    EditPermissionError
        For a viewer (``who.can_edit`` false). Checked in the library, so a hidden widget
        is not the only guard.
    """
    if not who.can_edit or not who.editor:
        msg = "只有登录的编辑者可以变更状态或撤销 (editors only)"
        raise EditPermissionError(msg)
    return who.editor


def commit_status_change(
    change: StatusChange,
    layer: LayerSpec,
    store: Store,
    who: EditorSession,
    *,
    evidence: bytes | None = None,
    evidence_name: str = "",
    spec: LifecycleSpec | None = None,
) -> str:
    """
    Write a planned status change: one audited, undoable transaction.

    Parameters
    ----------
    change
        From `plan_status_change` on this layer.
    layer
        The layer's declaration.
    store
        Where the layer lives.
    who
        The signed-in session; a viewer is refused (`require_editor`).
    evidence, evidence_name
        Optional photo/PDF bytes and the uploaded name (kept in the audit entry; the
        stored name is generated from the content).
    spec
        Lifecycle (evidence limits); default: read from the store's catalog.

    Returns
    -------
    version
        The layer's new version token.

    Raises
    ------
    EditPermissionError
        When `who` may not edit.
    StatusChangeError
        When the change belongs to another layer or the evidence is refused.
    StaleVersionError
        When the layer changed since the plan (someone else edited it): plan again.
    """
    user = require_editor(who)
    if change.layer_id != layer.id:
        msg = f"状态变更属于图层 {change.layer_id}，不能写入图层 {layer.id}"
        raise StatusChangeError(msg)
    counts: dict[str, Any] = {
        "uid": change.uid,
        "from": change.old,
        "to": change.new,
        "transition": change.label,
        "reason": change.reason,
        "note": change.note,
        "fields": {k: [_jsonable(v[0]), _jsonable(v[1])] for k, v in change.fields.items()},
    }
    if evidence is not None:
        spec = spec or lifecycle_spec(store.read_catalog())
        ext = check_evidence(evidence, spec, filename=evidence_name)
        counts["evidence"] = store.write_attachment(evidence, suffix=ext)
        counts["evidence_name"] = evidence_name
    return store.write_layer(
        change.gdf_result,
        layer,
        user=user,
        action="status",
        source=f"状态变更 {change.uid}: {change.old or '（空）'} → {change.new}",
        counts=counts,
        expected_version=change.base_version,
    )


def _jsonable(value: object) -> object:
    if isinstance(value, dt.date):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()  # numpy scalar
    return value


def status_entries(store: Store, layer: LayerSpec) -> list[dict[str, Any]]:
    """
    Return the layer's status-change audit entries, oldest first, with undone ones marked.

    Returns
    -------
    entries
        The ``action == "status"`` entries of `Store.history`, each with ``undone`` (bool).
    """
    history = store.history(layer)
    undone = {e.get("undoes") for e in history if e.get("action") == "undo"}
    return [
        {**e, "undone": e.get("backup") in undone} for e in history if e.get("action") == "status"
    ]


def undo_last(store: Store, layer: LayerSpec, who: EditorSession) -> str:
    """
    Undo the layer's last write (a status change or an import) for an editor.

    Raises
    ------
    EditPermissionError
        When `who` may not edit.
    DataFileError
        When there is nothing to undo.
    """
    return store.undo(layer, user=require_editor(who))


def undo_last_status(store: Store, layer: LayerSpec, who: EditorSession) -> dict[str, Any]:
    """
    Undo the layer's last write when it is a status change; return that change's entry.

    Raises
    ------
    EditPermissionError
        When `who` may not edit.
    StatusChangeError
        When the last undoable write is not a status change (an import: undo it there).
    DataFileError
        When there is nothing to undo.
    """
    user = require_editor(who)
    last = last_undoable(store.history(layer))
    if last is None or last.get("action") != "status":
        what = "没有可撤销的修改" if last is None else f"最近一次修改是“{last.get('action')}”"
        msg = f"{layer.name}: {what}，不是状态变更，未撤销"
        raise StatusChangeError(msg)
    store.undo(layer, user=user)
    return last


def import_transition_problems(
    changes: Mapping[str, list[Any]],
    gdf_result: pd.DataFrame,
    key: str,
    spec: LifecycleSpec,
    *,
    today: dt.date | None = None,
) -> list[str]:
    """
    Check every status change an import (a status sheet, case c30) would make.

    Pure, like `check_transition`, which it applies to each updated point whose status
    changes; the point's 销号日期/销号原因 (and its 备注 as the reason of a 重新入册) are read
    from the result of the import.

    Parameters
    ----------
    changes
        ``{uid: [change with .field, .old, .new]}`` of an import plan (updated points only).
    gdf_result
        The layer as the import would write it.
    key
        The layer's key field.
    spec
        The catalog's lifecycle.
    today
        As `check_transition`.

    Returns
    -------
    problems
        ``"<uid>: <problem>"`` messages, ``[]`` when every change is allowed.
    """
    rows = gdf_result.set_index(gdf_result[key].astype(str)) if len(gdf_result) else None
    problems = []
    for uid, fields in changes.items():
        status = next((c for c in fields if c.field == "status"), None)
        if status is None or rows is None or str(uid) not in rows.index:
            continue
        row = rows.loc[str(uid)]
        given = {
            "cleared_date": row.get("cleared_date"),
            "cleared_reason": row.get("cleared_reason"),
            "reason": row.get("note"),
        }
        new = "" if _blank(status.new) else str(status.new)
        if not new:
            continue  # a blank status cell keeps the value
        problems += [
            f"{uid}: {p}"
            for p in check_transition(spec, status.old, new, given, today=today)
        ]
    return problems
