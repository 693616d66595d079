"""Is this row a point we already have? Update conflicts and probable duplicates. Pure.

Rules (issue 10, cases c28 and c29; thresholds are the issue's):

* An **update is a conflict** when it moves the point more than `CONFLICT_MOVE_M` (100 m)
  or replaces its name (the new name is not similar to the old one, `similar_names`).
  It is held (shown as 冲突) and applied only when the user confirms it.
* A row **without a uid** is a **probable duplicate** when a point with the same or a
  similar name lies within `DUPLICATE_RADIUS_M` (50 m): an existing point of the layer, or
  an earlier row of the same file. It is held (疑似重复) and added only when chosen.

Distances are measured in the metric CRS (``settings.metric_crs``, CGCS2000 3° GK), not in
degrees.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from typing import TYPE_CHECKING

import numpy as np

import shapely
from pyproj import Transformer

from riskmap.settings import STORAGE_CRS

if TYPE_CHECKING:
    from collections.abc import Sequence

CONFLICT_MOVE_M = 100.0
"""An update moving a point farther than this (metres) is a conflict (issue 10)."""
DUPLICATE_RADIUS_M = 50.0
"""A uid-less row this close (metres) to a similarly named point is a probable duplicate."""
SIMILAR_RATIO = 0.8
"""`difflib` ratio at or above which two names (normalised) count as similar."""

_DIGITS_RE = re.compile(r"\d+")
_NAME_DROP_RE = re.compile(r"[\s()（）\[\]【】<>《》\"'“”‘’·.,，。、:：;；\-—_]")


def normalise_name(name: object) -> str:
    """NFKC, case-folded, without spaces, brackets and punctuation (``None`` → ``""``)."""
    if not isinstance(name, str):
        return ""
    return _NAME_DROP_RE.sub("", unicodedata.normalize("NFKC", name).casefold())


def similar_names(a: object, b: object) -> bool:
    """
    Tell whether two point names probably name the same place.

    Similar when, after `normalise_name`, they are equal, one contains the other
    (``葛城滑坡`` / ``葛城滑坡点``), or their `difflib` ratio is at least `SIMILAR_RATIO` —
    unless their numbers differ (``1号点`` ≠ ``2号点``: numbered points are distinct).
    Blank names are never similar.
    """
    x, y = normalise_name(a), normalise_name(b)
    if not x or not y:
        return False
    if _DIGITS_RE.findall(x) != _DIGITS_RE.findall(y):
        return False
    if x == y or x in y or y in x:
        return True
    return difflib.SequenceMatcher(None, x, y).ratio() >= SIMILAR_RATIO


def to_metric(lon: np.ndarray, lat: np.ndarray, metric_crs: str) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 degrees → metres in `metric_crs` (arrays of the same shape)."""
    tr = Transformer.from_crs(STORAGE_CRS, metric_crs, always_xy=True)
    x, y = tr.transform(np.asarray(lon, float), np.asarray(lat, float))
    return np.asarray(x, float), np.asarray(y, float)


def move_distances_m(
    old_lon: np.ndarray,
    old_lat: np.ndarray,
    new_lon: np.ndarray,
    new_lat: np.ndarray,
    metric_crs: str,
) -> np.ndarray:
    """Distance in metres between old and new positions (NaN where either is missing)."""
    ox, oy = to_metric(old_lon, old_lat, metric_crs)
    nx, ny = to_metric(new_lon, new_lat, metric_crs)
    return np.hypot(nx - ox, ny - oy)


def update_conflicts(
    old_names: Sequence[object],
    new_names: Sequence[object],
    moved_m: np.ndarray,
    *,
    move_m: float = CONFLICT_MOVE_M,
) -> list[list[str]]:
    """
    Why each update is a conflict (empty list = not a conflict).

    Parameters
    ----------
    old_names, new_names
        Stored and imported names, length n (a blank new name keeps the old one).
    moved_m
        Shape ``(n,)``: how far the update moves each point, metres (NaN = not moved, e.g.
        an attribute-only update).
    move_m
        Threshold in metres.

    Returns
    -------
    reasons
        Per update, Chinese reasons.
    """
    out: list[list[str]] = []
    for old, new, dist in zip(old_names, new_names, moved_m, strict=True):
        reasons = []
        if np.isfinite(dist) and dist > move_m:
            reasons.append(f"位置移动 {dist:,.0f} 米（超过 {move_m:.0f} 米）")
        if normalise_name(new) and normalise_name(old) and not similar_names(old, new):
            reasons.append(f"名称由「{old}」改为「{new}」")
        out.append(reasons)
    return out


def probable_duplicates(
    x: np.ndarray,
    y: np.ndarray,
    names: Sequence[object],
    candidates: np.ndarray,
    existing_x: np.ndarray,
    existing_y: np.ndarray,
    existing_names: Sequence[object],
    *,
    radius_m: float = DUPLICATE_RADIUS_M,
) -> list[tuple[str, int] | None]:
    """
    Find, for each candidate row, a point it probably duplicates.

    Parameters
    ----------
    x, y
        Rows' positions in metres (metric CRS), shape ``(n,)``; NaN = not located.
    names
        Rows' names, length n.
    candidates
        Boolean ``(n,)``: rows to check (located, no uid, otherwise importable).
    existing_x, existing_y, existing_names
        The layer's points in the same metric CRS (shape ``(m,)``) and their names.
    radius_m
        Search radius in metres.

    Returns
    -------
    matches
        Per row: None, ``("existing", j)`` (position j in the existing arrays) or
        ``("row", i)`` (an earlier candidate row i of the same file).
    """
    n = len(x)
    out: list[tuple[str, int] | None] = [None] * n
    pos = np.flatnonzero(candidates & np.isfinite(x) & np.isfinite(y))
    if pos.size == 0:
        return out
    points = shapely.points(x[pos], y[pos])
    ok = np.isfinite(existing_x) & np.isfinite(existing_y)
    if ok.any():
        ex_idx = np.flatnonzero(ok)
        tree = shapely.STRtree(shapely.points(existing_x[ex_idx], existing_y[ex_idx]))
        src, dst = tree.query(points, predicate="dwithin", distance=radius_m)
        for s, d in zip(src, dst, strict=True):
            i, j = int(pos[s]), int(ex_idx[d])
            if out[i] is None and similar_names(names[i], existing_names[j]):
                out[i] = ("existing", j)
    tree = shapely.STRtree(points)
    src, dst = tree.query(points, predicate="dwithin", distance=radius_m)
    for s, d in sorted(zip(src.tolist(), dst.tolist(), strict=True)):
        i, j = int(pos[s]), int(pos[d])
        if j < i and out[i] is None and similar_names(names[i], names[j]):
            out[i] = ("row", j)
    return out
