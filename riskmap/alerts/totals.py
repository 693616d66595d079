"""Where a warning stands: each point's latest response, the totals and the per-township table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from collections.abc import Mapping


# --- progress ---------------------------------------------------------------------------------


def response_states(record: Mapping[str, Any]) -> dict[str, dict[str, Any] | None]:
    """
    Fold a warning's responses into each point's current state.

    Returns
    -------
    states
        ``{uid: None}`` for a point without response, else ``{"called": bool, "called_at":
        first 已叫应 time or None, "moved": people (latest figure, 0 if never given),
        "unreachable": bool (latest contact attempt failed and nobody answered since),
        "time": latest response time, "by": who recorded it}``.
    """
    states: dict[str, dict[str, Any] | None] = {p["uid"]: None for p in record.get("points", [])}
    for entry in record.get("responses", []):
        uid = entry.get("uid")
        if uid not in states:
            continue
        state = states[uid] or {
            "called": False,
            "called_at": None,
            "moved": 0,
            "unreachable": False,
            "time": None,
            "by": None,
        }
        state = dict(state)
        if entry.get("called"):
            state["called"] = True
            state["called_at"] = state["called_at"] or entry.get("time")
            state["unreachable"] = False
        if entry.get("unreachable"):
            state["unreachable"] = not state["called"]
        if entry.get("moved") is not None:
            state["moved"] = int(entry["moved"])
        state["time"] = entry.get("time")
        state["by"] = entry.get("by")
        states[uid] = state
    return states


def warning_totals(record: Mapping[str, Any]) -> dict[str, Any]:
    """
    Return the progress of a warning.

    Returns
    -------
    totals
        ``points`` (features warned), ``people`` / ``households`` (at risk), ``called``
        (points 已叫应), ``moved`` (people 已转移), ``unreachable`` (points 无法联系 now),
        ``call_rate`` (叫应率 = called / points, 0–1), ``moved_share`` (moved / people, or
        None when no people are recorded).
    """
    points = record.get("points", [])
    states = response_states(record)
    people = sum(int(p.get("people") or 0) for p in points)
    called = sum(1 for s in states.values() if s and s["called"])
    moved = sum(int(s["moved"]) for s in states.values() if s)
    return {
        "points": len(points),
        "people": people,
        "households": sum(int(p.get("households") or 0) for p in points),
        "called": called,
        "moved": moved,
        "unreachable": sum(1 for s in states.values() if s and s["unreachable"]),
        "call_rate": called / len(points) if points else 0.0,
        "moved_share": moved / people if people else None,
    }


def per_township(record: Mapping[str, Any]) -> pd.DataFrame:
    """
    Points, people, households, called, moved, unreachable per township of a warning.

    Returns
    -------
    df
        Columns ``township_code``, ``township``, ``points``, ``people``, ``households``,
        ``called``, ``moved``, ``unreachable``; one row per township, code order.
    """
    states = response_states(record)
    rows = []
    for p in record.get("points", []):
        s = states.get(p["uid"])
        rows.append(
            {
                "township_code": p.get("township_code") or "",
                "township": p.get("township") or "（未落入乡镇）",
                "points": 1,
                "people": int(p.get("people") or 0),
                "households": int(p.get("households") or 0),
                "called": int(bool(s and s["called"])),
                "moved": int(s["moved"]) if s else 0,
                "unreachable": int(bool(s and s["unreachable"])),
            }
        )
    cols = [
        "township_code",
        "township",
        "points",
        "people",
        "households",
        "called",
        "moved",
        "unreachable",
    ]
    df = pd.DataFrame(rows, columns=cols)
    return df.groupby(["township_code", "township"], as_index=False, sort=True).sum()


def show_json(record: Mapping[str, Any]) -> dict[str, Any]:
    """
    Return the JSON of ``riskmap warning show --format json``.

    Returns
    -------
    doc
        ``{"id", "level", "type", "status", "valid_from", "valid_to", "points": [{"uid",
        "layer", "township_code", "people", "shelter_uid", "shelter_distance_m",
        "response"}], "totals": {"points", "people", "called", "moved", "unreachable"}}``;
        ``response`` is None or the point's state (`response_states`).
    """
    states = response_states(record)
    totals = warning_totals(record)
    return {
        "id": record["id"],
        "level": record["level"],
        "type": record["type"],
        "status": record.get("status"),
        "valid_from": record.get("valid_from"),
        "valid_to": record.get("valid_to"),
        "points": [
            {
                "uid": p["uid"],
                "layer": p["layer"],
                "township_code": p.get("township_code"),
                "people": int(p.get("people") or 0),
                "shelter_uid": p.get("shelter_uid"),
                "shelter_distance_m": p.get("shelter_distance_m"),
                "response": states.get(p["uid"]),
            }
            for p in record.get("points", [])
        ],
        "totals": {k: totals[k] for k in ("points", "people", "called", "moved", "unreachable")},
    }
