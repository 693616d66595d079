"""What a view shows: one filter spec, applied by the map, the figures and the lists alike. Pure.

The app builds a `FeatureFilter` from its widgets (township, layers, classes, statuses, search
text) and hands the same object to everything that shows or exports features, so a download
holds exactly what the screen shows and can say so (`FeatureFilter.describe`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from riskmap.catalog import STATUS_ORDER, UNCLASSED
from riskmap.layers import LayerData, filter_features

if TYPE_CHECKING:
    from collections.abc import Mapping


@dataclass(frozen=True)
class FeatureFilter:
    """
    A selection of features across layers.

    Attributes
    ----------
    township_code
        9-digit code of one township, or None for the whole county. A polygon with any share
        in the township is in, and its shares are cut to that township (so its area is the
        part inside it).
    layer_ids
        Layers shown, in order; None = every layer given.
    classes
        ``{layer_id: classes}`` of ``class_field`` values to keep (`riskmap.catalog.UNCLASSED`
        keeps features with none); a layer not in it keeps every class.
    statuses
        Lifecycle statuses to keep, None = all; a blank status counts as 在册
        (`riskmap.layers.filter_features`).
    text
        Case-insensitive part of the name or the key; "" = all.
    """

    township_code: str | None = None
    layer_ids: tuple[str, ...] | None = None
    classes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    statuses: tuple[str, ...] | None = None
    text: str = ""

    def apply(self, layers: Mapping[str, LayerData]) -> dict[str, LayerData]:
        """
        Restrict `layers` to this selection.

        Parameters
        ----------
        layers
            Prepared layers by id.

        Returns
        -------
        layers
            New `LayerData` per shown layer id (order of `layer_ids`, else of `layers`):
            the selected features (same CRS and index) and their township shares.
        """
        ids = list(layers) if self.layer_ids is None else [i for i in self.layer_ids if i in layers]
        codes = None if self.township_code is None else [self.township_code]
        out: dict[str, LayerData] = {}
        for lid in ids:
            layer = layers[lid]
            gdf = filter_features(
                layer,
                township_codes=codes,
                classes=self.classes.get(lid),
                statuses=self.statuses,
                text=self.text,
            )
            selected = layer.subset(gdf)
            if self.township_code is not None:
                shares = selected.shares
                mine = shares[shares["township_code"] == self.township_code]
                selected = LayerData(selected.spec, gdf, mine.reset_index(drop=True))
            out[lid] = selected
        return out

    def describe(self, layers: Mapping[str, LayerData], township_name: str | None = None) -> str:
        """
        Say in Chinese what this selection keeps, for a list's note row.

        Parameters
        ----------
        layers
            The layers the filter is applied to (for names and declared classes).
        township_name
            Name of `township_code`, shown instead of the code.

        Returns
        -------
        text
            E.g. ``"筛选条件：乡镇 巴山镇；图层 地质灾害隐患点、危旧桥梁；地质灾害隐患点险情等级
            大型、特大型；状态 在册、监测中；名称或编号含“滑坡”"``; ``"筛选条件：无（全部点位）"``
            when nothing is filtered.
        """
        parts = []
        if self.township_code is not None:
            parts.append(f"乡镇 {township_name or self.township_code}")
        ids = list(layers) if self.layer_ids is None else [i for i in self.layer_ids if i in layers]
        if self.layer_ids is not None and ids != list(layers):
            parts.append("图层 " + ("、".join(layers[i].spec.name for i in ids) or "无"))
        for lid in ids:
            spec = layers[lid].spec
            kept = self.classes.get(lid)
            if kept is not None and {*spec.classes, UNCLASSED} - set(kept):
                shown = [c for c in (*spec.classes, UNCLASSED) if c in kept]
                label = spec.label(spec.class_field)
                parts.append(f"{spec.name}{label} " + ("、".join(shown) or "无"))
        if self.statuses is not None and set(STATUS_ORDER) - set(self.statuses):
            shown = [s for s in STATUS_ORDER if s in self.statuses]
            parts.append("状态 " + ("、".join(shown) or "无"))
        if self.text.strip():
            parts.append(f"名称或编号含“{self.text.strip()}”")
        return "筛选条件：" + ("；".join(parts) if parts else "无（全部点位）")
