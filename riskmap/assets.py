"""Offline front-end assets: Leaflet and Leaflet.markercluster from the installed XStatic packages.

No page riskmap produces may load anything from a CDN. The map uses the files shipped in
``xstatic-leaflet`` and ``xstatic-leaflet-markercluster`` in one of two ways:

* inline (`asset_text`): the file's text goes into the page, for a standalone HTML file that
  works from disk on an intranet;
* served (`install_static_assets` + `asset_url`): the files are copied under the Streamlit
  app's ``static/vendor/`` directory and loaded from ``/app/static/vendor/...`` (Streamlit
  option ``server.enableStaticServing = true``).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from pathlib import Path

STATIC_URL_PREFIX = "/app/static/vendor"
"""URL under which Streamlit serves ``<app dir>/static/vendor`` (enableStaticServing)."""

_CSS_URL_RE = re.compile(r"url\((['\"]?)(images/[A-Za-z0-9_.\-]+\.png)\1\)")


@dataclass(frozen=True)
class Asset:
    """
    One vendored front-end file.

    Attributes
    ----------
    name
        Name used by folium for the link (``"leaflet"``, ``"leaflet_css"``...).
    package
        XStatic package module name under ``xstatic.pkg`` (``"leaflet"``).
    file
        File path inside the package's ``BASE_DIR``.
    kind
        ``"js"`` or ``"css"``.
    extra
        Further files the asset needs at run time (images referenced by CSS).
    """

    name: str
    package: str
    file: str
    kind: str
    extra: tuple[str, ...] = ()


LEAFLET: tuple[Asset, ...] = (
    Asset("leaflet", "leaflet", "leaflet.js", "js"),
    Asset(
        "leaflet_css",
        "leaflet",
        "leaflet.css",
        "css",
        extra=(
            "images/layers.png",
            "images/layers-2x.png",
            "images/marker-icon.png",
            "images/marker-icon-2x.png",
            "images/marker-shadow.png",
        ),
    ),
)
"""Leaflet core (JS + CSS and the images its CSS refers to)."""

MARKERCLUSTER: tuple[Asset, ...] = (
    Asset("markercluster", "leaflet_markercluster", "leaflet.markercluster.js", "js"),
    Asset("markercluster_css", "leaflet_markercluster", "MarkerCluster.css", "css"),
    Asset("markercluster_default_css", "leaflet_markercluster", "MarkerCluster.Default.css", "css"),
)
"""Leaflet.markercluster plugin (loaded only when a layer is large enough to cluster)."""

VENDOR_DIR = Path(__file__).resolve().parent / "vendor"
"""Front-end packages vendored from the npm registry (no XStatic package exists for them)."""

LEAFLET_DRAW: tuple[Asset, ...] = (
    Asset("leaflet_draw_js", "leaflet_draw", "leaflet.draw.js", "js"),
    Asset(
        "leaflet_draw_css",
        "leaflet_draw",
        "leaflet.draw.css",
        "css",
        extra=("images/spritesheet.png", "images/spritesheet-2x.png", "images/spritesheet.svg"),
    ),
)
"""Leaflet.draw 1.0.4 (npm ``leaflet-draw``, MIT; ``riskmap/vendor/leaflet_draw/VENDORED.md``):
the polygon tool of the warning view. Names match `folium.plugins.Draw`'s asset names."""

ALL_ASSETS: tuple[Asset, ...] = LEAFLET + MARKERCLUSTER + LEAFLET_DRAW
"""Everything the app serves from ``static/vendor``."""


def _package(package: str) -> tuple[Path, str]:
    """Return ``(BASE_DIR, VERSION)`` of ``xstatic.pkg.<package>`` or of a vendored package."""
    if package == "leaflet_draw":
        import json  # noqa: PLC0415

        base = VENDOR_DIR / "leaflet_draw"
        version = json.loads((base / "package.json").read_text(encoding="utf-8"))["version"]
        return base, str(version)
    if package == "leaflet":
        import xstatic.pkg.leaflet as pkg  # noqa: PLC0415 - optional heavy import kept local
    elif package == "leaflet_markercluster":
        import xstatic.pkg.leaflet_markercluster as pkg  # noqa: PLC0415
    else:
        msg = f"unknown XStatic package {package!r}"
        raise ValueError(msg)
    return Path(pkg.BASE_DIR), str(pkg.VERSION)


def asset_path(asset: Asset, file: str | None = None) -> Path:
    """
    Path of `asset` (or of one of its `extra` files) inside the installed XStatic package.

    Raises
    ------
    FileNotFoundError
        When the package is installed without the file (broken install).
    """
    base, _ = _package(asset.package)
    path = base / (file or asset.file)
    if not path.is_file():
        msg = f"{path} missing: reinstall xstatic-{asset.package.replace('_', '-')}"
        raise FileNotFoundError(msg)
    return path


def _vendor_rel(asset: Asset, file: str | None = None) -> str:
    """Relative path under ``vendor/``: ``leaflet/1.9.3/leaflet.js``."""
    _, version = _package(asset.package)
    return f"{asset.package}/{version}/{file or asset.file}"


def asset_url(asset: Asset, *, url_prefix: str = STATIC_URL_PREFIX) -> str:
    """URL of `asset` once `install_static_assets` has copied it (served mode)."""
    return f"{url_prefix.rstrip('/')}/{_vendor_rel(asset)}"


def asset_text(asset: Asset) -> str:
    """
    Text of `asset` for inlining into a page.

    CSS ``url(images/x.png)`` references are replaced by ``data:`` URIs so an inlined
    stylesheet needs no file beside the page. ``</`` is broken up so the text cannot close
    the ``<script>``/``<style>`` element that holds it.
    """
    text = asset_path(asset).read_text(encoding="utf-8")
    if asset.kind == "css":

        def to_data_uri(match: re.Match[str]) -> str:
            data = asset_path(asset, match.group(2)).read_bytes()
            return f"url(data:image/png;base64,{base64.b64encode(data).decode('ascii')})"

        text = _CSS_URL_RE.sub(to_data_uri, text)
        return text.replace("</", "<\\/")
    return text.replace("</script", "<\\/script").replace("<!--", "<\\!--")


def _copy_atomic(src: Path, dst: Path) -> None:
    """Copy `src` to `dst` with `riskmap.io.write_bytes_atomic`; an identical file is left alone."""
    from riskmap import io  # noqa: PLC0415 - io imports heavy geo modules; assets stays light

    data = src.read_bytes()
    if dst.is_file() and dst.read_bytes() == data:
        return
    io.write_bytes_atomic(dst, data)


def install_static_assets(static_dir: Path, *, assets: tuple[Asset, ...] = ALL_ASSETS) -> None:
    """
    Copy the vendored files under ``static_dir / "vendor"`` for Streamlit static serving.

    Idempotent (an identical file is left alone) and safe against concurrent runs: each file
    is written to a temporary name in its final directory and renamed over the target.

    Parameters
    ----------
    static_dir
        The app's static directory, ``Path(app.py).parent / "static"``; Streamlit serves it
        at ``/app/static/`` when ``server.enableStaticServing = true``.
    assets
        Assets to install; default all (`ALL_ASSETS`: Leaflet, markercluster, Leaflet.draw).
    """
    vendor = Path(static_dir) / "vendor"
    for asset in assets:
        for file in (asset.file, *asset.extra):
            _copy_atomic(asset_path(asset, file), vendor / _vendor_rel(asset, file))


def static_assets_installed(static_dir: Path, *, assets: tuple[Asset, ...] = ALL_ASSETS) -> bool:
    """Return True when every file of `assets` is present under ``static_dir / "vendor"``."""
    vendor = Path(static_dir) / "vendor"
    return all(
        (vendor / _vendor_rel(asset, file)).is_file()
        for asset in assets
        for file in (asset.file, *asset.extra)
    )
