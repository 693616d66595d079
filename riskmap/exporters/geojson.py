"""The township's features as one RFC 7946 FeatureCollection. Pure."""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

from riskmap.exporters.listing import (
    AREA_HEADER,
    SHARE_HEADER,
    _any_demo,
    _check_code,
    data_as_of,
    list_frame,
    listed_features,
    selection_note,
)
from riskmap.exporters.public import public_note
from riskmap.io import geojson_text
from riskmap.layers import LayerData
from riskmap.settings import COUNTY_NAME

if TYPE_CHECKING:
    from collections.abc import Mapping

    from riskmap.filters import FeatureFilter


def geojson_township(
    layers: Mapping[str, LayerData],
    township_code: str,
    township_name: str,
    *,
    include_cleared: bool = False,
    approximate: bool = True,
    as_of: dt.date | None = None,
    generated: dt.date | None = None,
    county_name: str = COUNTY_NAME,
    selection: FeatureFilter | None = None,
) -> bytes:
    """
    Write the township's features as one RFC 7946 FeatureCollection (UTF-8, no BOM).

    Each feature keeps its stored properties (see `riskmap.io.geojson_text`: WGS84, ``null``
    for blanks, never ``NaN``) plus ``layer`` (id) and ``layer_name``; polygons add
    ``township_area_ha`` and ``township_share`` (0–1) for this township. Top-level foreign
    members (RFC 7946 §6.1): ``title``, ``township`` (``{"code", "name"}``),
    ``approximate_boundaries``, ``demo`` (any listed feature is demo data),
    ``public_release`` and ``selection`` (the notes of a public release and of a screen
    selection, or null), ``as_of`` (ISO date or null) and ``generated`` (ISO date). Values
    are not neutralised (data, not a spreadsheet).

    Parameters
    ----------
    layers, township_code, township_name, include_cleared, approximate, as_of, generated,
    county_name, selection
        As in `xlsx_township`.

    Returns
    -------
    data
        The GeoJSON text, encoded UTF-8; strict JSON (no ``NaN``/``Infinity``).

    Raises
    ------
    TownshipNotFoundError
        When `township_code` is not 9 digits.
    """
    code = _check_code(township_code)
    listed = listed_features(layers, code, include_cleared=include_cleared, selection=selection)
    features: list[dict[str, Any]] = []
    for lid, gdf in listed.items():
        if gdf.empty:
            continue
        spec = layers[lid].spec
        out = gdf.assign(layer=lid, layer_name=spec.name)
        if spec.geometry == "Polygon":
            frame = list_frame(layers[lid], gdf, code)
            out = out.assign(
                township_area_ha=frame[AREA_HEADER].to_numpy(),
                township_share=(frame[SHARE_HEADER] / 100).round(3).to_numpy(),
            )
        features.extend(json.loads(geojson_text(out, drop_columns=("join_flag",)))["features"])
    as_of = as_of or data_as_of(layers)
    collection = {
        "type": "FeatureCollection",
        "title": f"{county_name}{township_name}安全风险点位清单",
        "township": {"code": code, "name": township_name},
        "approximate_boundaries": bool(approximate),
        "demo": _any_demo(listed),
        "public_release": public_note(layers),
        "selection": selection_note(layers, selection),
        "as_of": None if as_of is None else as_of.isoformat(),
        "generated": (generated or dt.date.today()).isoformat(),
        "features": features,
    }
    text = json.dumps(collection, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.encode("utf-8")
