"""The map's folium elements: the runtime, layer data, areas, finishing touches, assets.

Each element emits one call into the JS runtime (``window.riskmap``, `RUNTIME_JS`). Data
elements are added to the page verbatim, never re-parsed as Jinja templates (`_DataElement`).
"""

from __future__ import annotations

from branca.element import Element, MacroElement
from jinja2 import Template

import folium

from riskmap import assets


class _RawText(Element):
    """Already-rendered text, emitted verbatim (never compiled as a Jinja template)."""

    _template = Template("{{ this.text }}")

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class _DataElement(MacroElement):
    """
    A script-only element whose rendered script is NOT re-parsed as a Jinja template.

    `branca.element.MacroElement.render` wraps each rendered macro in ``Element(text)``,
    which compiles the text as a template again: slow for megabytes of data, and a way for
    ``{{ ... }}`` in user data to be evaluated. Here the script goes in as `_RawText`.
    (`js_json` escaping keeps the data safe for streamlit-folium's own single render too.)
    """

    def render(self, **kwargs: object) -> None:
        """Add this element's script to the figure verbatim, then render children."""
        figure = self.get_root()
        script = self._template.module.__dict__["script"]
        figure.script.add_child(_RawText(script(self, kwargs)), name=self.get_name())
        for child in self._children.values():
            child.render(**kwargs)


class Runtime(MacroElement):
    """The shared JS runtime (``window.riskmap``) and CSS; first child of the map."""

    _template = Template(
        "{% macro header(this, kwargs) %}{{ this.css }}{% endmacro %}"
        "{% macro script(this, kwargs) %}{{ this.js }}\n"
        "riskmap.panes({{ this._parent.get_name() }});{% endmacro %}"
    )

    def __init__(self, js: str, css: str) -> None:
        super().__init__()
        self._name = "RiskmapRuntime"
        self.js = js
        self.css = css


class _GroupData(_DataElement):
    """Data (embedded once) handed to ``riskmap.<function>(map, group, data)`` for its group."""

    _template = Template(
        "{% macro script(this, kwargs) %}"
        "riskmap.{{ this.function }}({{ this._parent._parent.get_name() }}, "
        "{{ this._parent.get_name() }}, {{ this.data }});{% endmacro %}"
    )
    function = ""

    def __init__(self, data: str) -> None:
        super().__init__()
        self._name = type(self).__name__
        self.data = data


class RiskLayer(_GroupData):
    """One risk layer's data (embedded once) added to its parent `folium.FeatureGroup`."""

    function = "addLayer"


class Areas(_GroupData):
    """Non-interactive polygons with optional labels (county, townships, choropleth)."""

    function = "addAreas"


class Finish(_DataElement):
    """Legend and warning boxes, scale, initial view and highlight; last child of the map."""

    _template = Template(
        "{% macro script(this, kwargs) %}(function (map) {\n"
        "{% for box in this.boxes %}riskmap.box(map, {{ box }});{% endfor %}"
        "L.control.scale({imperial: false}).addTo(map);"
        "riskmap.initView(map, {{ this.view }});"
        "})({{ this._parent.get_name() }});{% endmacro %}"
    )

    def __init__(self, boxes: list[str], view: str) -> None:
        super().__init__()
        self._name = "RiskFinish"
        self.boxes = boxes
        self.view = view


class InlineAsset(Element):
    """A vendored JS or CSS file put inline in the page header (standalone HTML)."""

    _template = Template(
        "{% if this.kind == 'js' %}<script>{{ this.text }}</script>"
        "{% else %}<style>{{ this.text }}</style>{% endif %}"
    )

    def __init__(self, asset: assets.Asset) -> None:
        super().__init__()
        self._name = f"inline_{asset.name}"
        self.kind = asset.kind
        self.text = assets.asset_text(asset)


class AssetLinks(folium.elements.JSCSSMixin, MacroElement):
    """
    Links to vendored assets in served mode.

    ``st_folium`` collects ``default_js``/``default_css`` from every element and loads them
    in its iframe; folium puts them in the page header.
    """

    _template = Template("")

    def __init__(self, wanted: tuple[assets.Asset, ...], url_prefix: str) -> None:
        super().__init__()
        self._name = "RiskAssetLinks"
        self.default_js = [
            (a.name, assets.asset_url(a, url_prefix=url_prefix)) for a in wanted if a.kind == "js"
        ]
        self.default_css = [
            (a.name, assets.asset_url(a, url_prefix=url_prefix)) for a in wanted if a.kind == "css"
        ]
