"""Frozen run-time settings: paths, CRSs, limits. Pass a `Settings` in; no mutable globals.

Every field can be overridden from the environment with ``RISKMAP_<FIELD>`` (upper case),
see `Settings.from_env`, so the CLI, the app and the tests share one way to configure.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from riskmap.errors import CRSError

PROJECT_ROOT = Path(__file__).resolve().parent.parent

STORAGE_CRS = "EPSG:4326"
"""CRS of every stored layer and of everything shown: WGS84 longitude/latitude, which RFC 7946
fixes for GeoJSON (CGCS2000 geographic coordinates agree with it to well under a metre)."""
METRIC_CRS = "EPSG:4545"
"""Default local metric CRS: CGCS2000 3-degree Gauss-Krüger zone, central meridian 108°E."""
COUNTY_NAME = "城口县"
"""Default county name (the first user, Chongqing Chengkou County)."""
COUNTY_ADCODE = "500229"
"""Default 6-digit county code (GB/T 2260) of 城口县."""
NOTE_APPROXIMATE = "乡镇界线为示意边界（非官方），归属仅供参考"
"""The one note every output (map, page, lists) carries while township lines are the bundled
approximate partition (`riskmap.project.Project.approximate`)."""
NOTE_DEMO = "演示数据（非真实点位）"
"""The one note every output carries while any shown feature is demo data (``demo: true``)."""


@dataclass(frozen=True)
class Settings:
    """
    Paths, coordinate systems and limits for one riskmap installation.

    Attributes
    ----------
    root
        Project directory; default: the checkout holding this package.
    data_dir
        Reference data (county outline, townships); default ``root / "data"``.
    layers_dir
        Risk layers (one GeoJSON per layer) and ``catalog.toml``; default ``root / "layers"``.
    townships_path
        Township polygons. ``None`` (default) = the bundled approximate partition
        ``data/townships_approx.geojson``. Point it at the county's official 乡镇界 file
        (GeoJSON, GeoPackage or Shapefile, CGCS2000/WGS84 geographic or Gauss-Krüger)
        to replace it.
    county_name
        Chinese name of the county, used in titles; default ``"城口县"``.
    county_adcode
        6-digit county code; default ``"500229"``.
    storage_crs
        CRS of stored layers and of everything shown: `STORAGE_CRS` (``"EPSG:4326"``, fixed
        by RFC 7946; any other value is refused). Code without a `Settings` at hand reads
        the module constant `STORAGE_CRS`.
    metric_crs
        Local metric CRS for areas and distances: ``"EPSG:4545"`` (CGCS2000 3-degree
        Gauss-Krüger, central meridian 108°E, metres), whose central meridian crosses the
        county, so scale error stays below 1e-4 inside it.
    tile_url
        Optional XYZ tile URL template of an intranet tile server; empty = no basemap.
    tianditu_key
        天地图 key; empty = 天地图 basemap unavailable (the map says so in Chinese).
    basemap
        Optional offline tile file (``.mbtiles`` or ``.pmtiles``, raster) shown under the data,
        served by the app itself (`riskmap.basemap`); None (default) = no such basemap.
    basemap_crs
        Declared CRS of `basemap`'s pictures: ``"wgs84"`` or ``"cgcs2000"`` (GCJ-02 refused);
        required with `basemap` (tile files do not record it).
    upload_max_mb
        Largest survey file accepted, in MiB; default 20.
    history_keep
        How many previous versions of each layer to keep in ``layers/.history``; default 20.
    database_url
        ``postgresql://user:pass@host/db`` = keep layers, records and history in PostGIS
        (`riskmap.store.open_store`); empty (default) = files in `layers_dir`.
    """

    root: Path = PROJECT_ROOT
    data_dir: Path = field(default=PROJECT_ROOT / "data")
    layers_dir: Path = field(default=PROJECT_ROOT / "layers")
    townships_path: Path | None = None
    county_name: str = COUNTY_NAME
    county_adcode: str = COUNTY_ADCODE
    storage_crs: str = STORAGE_CRS
    metric_crs: str = METRIC_CRS
    tile_url: str = ""
    tianditu_key: str = ""
    basemap: Path | None = None
    basemap_crs: str = ""
    upload_max_mb: float = 20.0
    history_keep: int = 20
    database_url: str = ""

    def __post_init__(self) -> None:
        """Refuse a storage CRS other than `STORAGE_CRS` (GeoJSON can store no other)."""
        if self.storage_crs != STORAGE_CRS:
            msg = (
                f"storage_crs 只能是 {STORAGE_CRS}（GeoJSON, RFC 7946）: {self.storage_crs!r}；"
                "其他坐标系的数据请在导入时转换 (riskmap import --crs)"
            )
            raise CRSError(msg)

    @property
    def catalog_path(self) -> Path:
        """Path of the layer catalog, ``layers_dir / "catalog.toml"``."""
        return self.layers_dir / "catalog.toml"

    @property
    def secrets_path(self) -> Path:
        """Streamlit secrets of the app (editors, OIDC): ``root/.streamlit/secrets.toml``."""
        return self.root / ".streamlit" / "secrets.toml"

    @property
    def county_path(self) -> Path:
        """Path of the county outline (WGS84 GeoJSON)."""
        return self.data_dir / "county.geojson"

    @property
    def township_codes_path(self) -> Path:
        """Path of the township code table (CSV, codes as text)."""
        return self.data_dir / "townships.csv"

    @property
    def township_polygons_path(self) -> Path:
        """Township polygons in use: `townships_path` or the bundled approximate partition."""
        if self.townships_path is not None:
            return self.townships_path
        return self.data_dir / "townships_approx.geojson"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: object) -> Settings:
        """
        Build settings from ``RISKMAP_*`` environment variables, then `overrides`.

        Parameters
        ----------
        environ
            Mapping to read; default `os.environ`.
        **overrides
            Field values that win over the environment.

        Returns
        -------
        settings
            A new frozen `Settings`.
        """
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(f"RISKMAP_{f.name.upper()}")
            if raw is None or raw == "":
                continue
            if f.name in {"root", "data_dir", "layers_dir", "townships_path", "basemap"}:
                values[f.name] = Path(raw)
            elif f.name == "upload_max_mb":
                values[f.name] = float(raw)
            elif f.name == "history_keep":
                values[f.name] = int(raw)
            else:
                values[f.name] = raw
        values.update(overrides)
        base = cls()
        if "root" in values and "data_dir" not in values:
            values["data_dir"] = Path(str(values["root"])) / "data"
        if "root" in values and "layers_dir" not in values:
            values["layers_dir"] = Path(str(values["root"])) / "layers"
        return replace(base, **values)  # type: ignore[arg-type]
