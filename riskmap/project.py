"""Everything one riskmap installation holds, loaded once: catalog, townships, prepared layers.

`load_project` is the edge that the CLI and the app call (the app caches it). It reads layers
through the store (`riskmap.store.open_store`), reference data through `riskmap.io`, and
prepares each layer with `riskmap.layers.prepare_layer`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from riskmap import io
from riskmap.errors import TownshipNotFoundError
from riskmap.layers import LayerData, prepare_layer
from riskmap.store import open_store

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    import pandas as pd

    import geopandas as gpd

    from riskmap.catalog import Catalog
    from riskmap.settings import Settings
    from riskmap.store import Store


@dataclass(frozen=True)
class Project:
    """
    A loaded installation.

    Attributes
    ----------
    settings
        Where it was loaded from.
    catalog
        The layer catalog.
    gdf_county
        County outline, 1 row, EPSG:4326.
    gdf_townships
        Township polygons (contract of `riskmap.io.read_townships`), EPSG:4326.
    township_codes
        The code table: ``adcode`` (9-digit text), ``adcode12``, ``name``, ``level``; every
        township, including any without a polygon of its own.
    layers
        Prepared layers by id, catalog order.
    """

    settings: Settings
    catalog: Catalog
    gdf_county: gpd.GeoDataFrame
    gdf_townships: gpd.GeoDataFrame
    township_codes: pd.DataFrame
    layers: Mapping[str, LayerData]

    @property
    def approximate(self) -> bool:
        """True when township boundaries are the approximate partition (示意边界)."""
        return bool(self.gdf_townships["approximate"].any())

    @property
    def demo(self) -> bool:
        """True when any feature of any layer is demo data (演示数据)."""
        return any(
            bool(layer.gdf["demo"].fillna(value=False).astype(bool).any())
            for layer in self.layers.values()
            if "demo" in layer.gdf.columns
        )

    def township(self, name_or_code: str) -> tuple[str, str]:
        """
        Resolve a township by Chinese name (with or without 街道/镇/乡) or 9/12-digit code.

        Returns
        -------
        code, name
            9-digit code and full name.

        Raises
        ------
        TownshipNotFoundError
            When nothing matches; the message lists the townships.
        """
        text = name_or_code.strip()
        for row in self.township_codes.itertuples():
            short = row.name.removesuffix("街道").removesuffix("镇").removesuffix("乡")
            if text in {row.adcode, row.adcode12, row.name, short}:
                return row.adcode, row.name
        names = "、".join(self.township_codes["name"])
        msg = f"找不到乡镇 {text!r} (unknown township)；可用: {names}"
        raise TownshipNotFoundError(msg)

    def with_layer(self, layer: LayerData) -> Project:
        """Return a copy with one layer replaced (after an import or undo)."""
        layers = dict(self.layers)
        layers[layer.spec.id] = layer
        return Project(
            self.settings,
            self.catalog,
            self.gdf_county,
            self.gdf_townships,
            self.township_codes,
            layers,
        )


def load_layer(
    layer_id: str,
    settings: Settings,
    catalog: Catalog,
    gdf_townships: gpd.GeoDataFrame,
    *,
    store: Store | None = None,
) -> LayerData:
    """
    Read and prepare one layer.

    Raises
    ------
    LayerNotFoundError
        When `layer_id` is not in the catalog.
    DataFileError
        When its file is malformed.
    """
    spec = catalog.get(layer_id)
    store = open_store(settings) if store is None else store
    return prepare_layer(
        store.read_layer(spec),
        spec,
        gdf_townships,
        metric_crs=settings.metric_crs,
        county_name=settings.county_name,
    )


def load_project(settings: Settings, *, layer_ids: Iterable[str] | None = None) -> Project:
    """
    Read the catalog, reference data and layers, and prepare every layer.

    Parameters
    ----------
    settings
        Paths and CRSs.
    layer_ids
        Only these layers (default: all in the catalog).

    Returns
    -------
    project
        A `Project`.

    Raises
    ------
    RiskmapError
        Any catalog, reference-data or layer-file problem, naming the file.
    """
    store = open_store(settings)
    catalog = store.read_catalog()
    gdf_townships = io.read_townships(settings)
    ids = catalog.ids if layer_ids is None else tuple(layer_ids)
    layers = {
        lid: load_layer(lid, settings, catalog, gdf_townships, store=store) for lid in ids
    }
    return Project(
        settings=settings,
        catalog=catalog,
        gdf_county=io.read_county(settings),
        gdf_townships=gdf_townships,
        township_codes=io.read_township_codes(settings),
        layers=layers,
    )
