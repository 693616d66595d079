"""Constants, the error type and small cell/time helpers shared by the warning modules."""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from riskmap.errors import RiskmapError

COLLECTION = "warnings"
"""Records collection holding the warnings."""
DUTY_COLLECTION = "duty_contacts"
"""Records collection holding the township duty contacts (乡镇值班)."""
LEVELS = ("红", "橙", "黄", "蓝")
"""Warning levels, most severe first (国家突发公共事件总体应急预案: 红/橙/黄/蓝色)."""
LEVEL_COLORS = {"红": "#d7191c", "橙": "#fd8d3c", "黄": "#fecc5c", "蓝": "#2b83ba"}
"""Display colour of each level."""
TYPES = (
    "暴雨",
    "地灾气象风险",
    "森林火险",
    "山洪",
    "大风",
    "冰雹",
    "寒潮",
    "高温",
    "道路结冰",
    "其他",
)
"""Warning types the office receives (气象/地灾气象风险/森林火险 warnings)."""
LOCAL_TZ = ZoneInfo("Asia/Shanghai")
"""The county's clock (北京时间): naive times given by users are read in it."""
DEFAULT_HOURS = 24
"""Validity of a warning without ``--to``, hours."""
MAX_AREA_BYTES = 20 * 1024 * 1024
"""Largest polygon file accepted, bytes."""
ID_RE = re.compile(r"^YJ-\d{8}-\d{3}$")
"""Warning ids: ``YJ-<date of issue, 北京时间>-<sequence of the day>``."""


class AlertError(RiskmapError, ValueError):
    """A warning cannot be created, changed or shown as asked (message in Chinese)."""


# --- small helpers ----------------------------------------------------------------------------


def now_local() -> dt.datetime:
    """Return the current time in the county's time zone, to the second."""
    return dt.datetime.now(LOCAL_TZ).replace(microsecond=0)


def parse_time(text: str | dt.datetime, *, label: str = "时间") -> dt.datetime:
    """
    Parse a user's time: ISO 8601 or ``YYYY-MM-DD HH:MM``; naive times are 北京时间.

    Raises
    ------
    AlertError
        When the text is not a time (names `label`).
    """
    if isinstance(text, dt.datetime):
        value = text
    else:
        try:
            value = dt.datetime.fromisoformat(str(text).strip().replace("T", " "))
        except ValueError:
            msg = f"{label}格式不正确: {text!r}（应为 2026-11-30 08:00 或 ISO 8601）"
            raise AlertError(msg) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=LOCAL_TZ)
    return value.astimezone(LOCAL_TZ).replace(microsecond=0)


def require_user(user: str | None) -> str:
    """Refuse a change without a signed-in editor (`riskmap.auth`); return the name."""
    name = (user or "").strip()
    if not name:
        msg = "需要编辑权限：请先登录（编辑者）后再发布预警或登记反馈"
        raise AlertError(msg)
    return name


def cell_number(value: Any) -> float | None:  # noqa: ANN401 - any cell value
    """Return a finite number from a cell, else ``None`` (blank, text, NaN, ±inf)."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(out) or math.isinf(out) else out


def cell_text(value: Any) -> str | None:  # noqa: ANN401 - any cell value
    """Return a cell as stripped text, else ``None`` (blank, NaN, NA, NaT)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    text = str(value).strip()
    return text or None
