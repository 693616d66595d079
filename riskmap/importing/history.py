"""A layer's change history as users read it: Chinese, local time, no ``None``. Pure.

The audit log itself is the store's (`riskmap.store.Store.history`: UTC ISO times, English
keys); this module only presents it, and says what an undo would restore before it runs.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pandas as pd

from riskmap.io import last_undoable

if TYPE_CHECKING:
    from collections.abc import Sequence

LOCAL_TZ = "Asia/Shanghai"
"""Time zone of the county's staff (China Standard Time, UTC+8, no daylight saving)."""

ACTION_LABELS = {
    "import": "导入",
    "update": "更新属性",
    "status": "状态变更",
    "create": "新建图层",
    "write": "写入",
    "undo": "撤销",
    "load": "载入数据库",
}
"""Chinese names of audit-log actions (unknown actions are shown as logged)."""

HISTORY_COLUMNS = ["时间", "操作", "操作人", "来源文件", "新增", "更新", "未导入", "暂缓", "要素数"]
"""Columns of `history_frame`."""


def local_time(iso: object, tz: str = LOCAL_TZ) -> str:
    """
    Show an ISO 8601 UTC time of the log as ``YYYY-MM-DD HH:MM:SS`` local time (`tz`).

    Text that is not an ISO time is returned as is; a missing value gives ``""``.
    """
    if not isinstance(iso, str) or not iso:
        return ""
    try:
        when = dt.datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M:%S")


def _count(entry: dict[str, Any], key: str) -> str:
    value = entry.get(key)
    return "" if value is None else str(value)


def history_frame(entries: Sequence[dict[str, Any]], *, tz: str = LOCAL_TZ) -> pd.DataFrame:
    """
    Turn the audit log into a table for users, newest first.

    Parameters
    ----------
    entries
        `riskmap.store.Store.history` of one layer, oldest first.
    tz
        IANA time zone the times are shown in (default Asia/Shanghai).

    Returns
    -------
    frame
        Columns `HISTORY_COLUMNS`, all text; a missing value is ``""``, never None/NaN.
    """
    records = []
    for e in reversed(list(entries)):
        action = str(e.get("action", ""))
        records.append(
            {
                "时间": local_time(e.get("time"), tz),
                "操作": ACTION_LABELS.get(action, action),
                "操作人": str(e.get("user") or ""),
                "来源文件": str(e.get("source") or ""),
                "新增": _count(e, "added"),
                "更新": _count(e, "updated"),
                "未导入": _count(e, "rejected"),
                "暂缓": _count(e, "held"),
                "要素数": _count(e, "rows_after"),
            }
        )
    return pd.DataFrame(records, columns=HISTORY_COLUMNS, dtype=object)


def undo_description(entries: Sequence[dict[str, Any]], *, tz: str = LOCAL_TZ) -> str | None:
    """
    Say what an undo would do, in Chinese, or None when there is nothing to undo.

    Names the change it reverts (action, file, user, local time, counts) and the number of
    features the layer goes back to.
    """
    last = last_undoable(list(entries))
    if last is None:
        return None
    action = str(last.get("action", ""))
    what = ACTION_LABELS.get(action, action)
    zone = "北京时间 " if tz == LOCAL_TZ else ""
    parts = [f"撤销 {zone}{local_time(last.get('time'), tz)} 的{what}"]
    if source := last.get("source"):
        parts.append(f"（文件「{source}」")
        parts.append(f"，操作人 {last['user']}）" if last.get("user") else "）")
    counts = [
        f"{label} {last[k]}"
        for k, label in (("added", "新增"), ("updated", "更新"))
        if last.get(k) not in (None, 0)
    ]
    if counts:
        parts.append("：" + "，".join(counts) + " 个点位将被还原")
    if last.get("rows_before") is not None:
        parts.append(f"；图层恢复为该次修改之前的版本（{last['rows_before']} 个要素）")
    else:
        parts.append("；图层恢复为该次修改之前的版本")
    return "".join(parts) + "。"
