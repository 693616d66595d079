"""The layer catalog (图层目录): one declaration per risk layer, parsed into frozen specs.

The catalog lives in ``layers/catalog.toml`` (format documented at its top). A new layer is a
new table there plus a GeoJSON file: no code. This module is pure: `catalog_from_dict` takes
the parsed TOML; `riskmap.io.read_catalog` opens the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from riskmap.errors import CatalogError, LayerNotFoundError

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from pathlib import Path

FIELD_TYPES = frozenset({"str", "int", "float", "bool", "date", "datetime"})
GEOMETRY_TYPES = frozenset({"Point", "Polygon"})
SYMBOLS = frozenset({"circle", "square", "triangle", "diamond", "fill"})
ROLES = frozenset({"risk", "shelter", "team", "depot"})
"""Layer roles: risk points (default) and the emergency resources (应急资源) of a warning:
避难场所 (``shelter``, must declare an int ``capacity`` field), 应急队伍 (``team``),
物资储备点 (``depot``)."""
LAYER_ID_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
FILE_RE = re.compile(r"^[A-Za-z0-9_\-]+\.geojson$")
STATUS_CLEARED = "已销号"
"""Lifecycle status of a cleared hidden danger (隐患已销号); hidden on the map by default."""
STATUS_ORDER = ("在册", "监测中", "治理中", "已销号")
"""Lifecycle order (DOMAIN.md, 隐患动态清零): listed → monitored → being rectified → cleared."""
STATUS_DEFAULT = STATUS_ORDER[0]
"""What a blank status means: a feature with no status yet (a fresh survey import) is 在册."""
UNCLASSED = "未分级"
"""Label of features whose class field (``class_field``) is empty."""


@dataclass(frozen=True)
class FieldSpec:
    """
    One attribute of a layer.

    Attributes
    ----------
    key
        Property name in the GeoJSON (English, snake_case).
    label
        Chinese label users see (column header, popup, import mapping).
    type
        One of `FIELD_TYPES`.
    required
        Must be present and non-empty on import.
    values
        Allowed values (empty = any).
    min, max
        Inclusive numeric range, or None.
    unit
        Unit shown beside the label (``"人"``, ``"cm"``, ``"ha"``), or ``""``.
    personal
        Personal data (a person's name, phone number): dropped from public releases
        (`riskmap.exporters.public_layers`). Declared ``personal = true`` in the catalog.
    aliases
        Other column names surveys use for this field (``aliases = [...]`` in the catalog),
        matched by the importer before field keys and labels (`riskmap.importing.columns`).
    decimals
        ``float`` fields: decimals shown in tables and lists (``decimals = 1``); None
        (default) = as stored, cleared of binary noise (`riskmap.exporters.typed_table`).
    """

    key: str
    label: str
    type: str = "str"
    required: bool = False
    values: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None
    unit: str = ""
    personal: bool = False
    aliases: tuple[str, ...] = ()
    decimals: int | None = None

    @property
    def header(self) -> str:
        """Label with unit, e.g. ``"威胁人数(人)"``."""
        return f"{self.label}({self.unit})" if self.unit else self.label


@dataclass(frozen=True)
class Criterion:
    """One numeric criterion of a derived class: class index = number of `breaks` reached."""

    field: str
    breaks: tuple[float, ...]


@dataclass(frozen=True)
class DerivedSpec:
    """
    A class derived from numeric fields (e.g. 险情等级 from 威胁人数 / 威胁财产).

    Attributes
    ----------
    field
        Field receiving the class label.
    label
        Chinese label.
    labels
        Class labels, one more than each criterion's breaks; with several criteria the
        label of the highest index wins.
    criteria
        Numeric criteria; a value ``v`` maps to index ``sum(v >= b for b in breaks)``.
    authority
        ``"derived"``: the derived class replaces a stated one (disagreement flagged);
        ``"stated"``: the stated class is kept (disagreement flagged).
    source
        The standard or document the rule comes from.
    """

    field: str
    label: str
    labels: tuple[str, ...]
    criteria: tuple[Criterion, ...]
    authority: str = "derived"
    source: str = ""


@dataclass(frozen=True)
class FlagSpec:
    """A boolean field that is true when `when_field` takes one of the values `in_values`."""

    field: str
    label: str
    when_field: str
    in_values: tuple[str, ...]
    source: str = ""


@dataclass(frozen=True)
class LayerSpec:
    """
    Declaration of one risk layer.

    Attributes
    ----------
    id
        Layer id (``[a-z][a-z0-9_]*``), also used in CLI arguments and URLs.
    name
        Chinese name, e.g. ``"地质灾害隐患点"``.
    file
        GeoJSON file name inside the layers directory (no path separators).
    geometry
        ``"Point"`` or ``"Polygon"`` (Polygon layers may hold MultiPolygons).
    key
        Unique id field (``"uid"``).
    class_field
        Field whose values get distinct colours; its classes are the keys of `colors`.
    symbol
        Marker shape (points) or ``"fill"`` (polygons).
    colors
        ``{class: "#rrggbb"}`` in severity order, lowest first.
    popup, list_fields, sums
        Fields shown in popups, columns of township lists, fields subtotalled.
    fields
        All fields (common ones first), by key.
    derived, flags
        Derived classes and boolean flags.
    area_field
        For polygon layers, the field that receives the area in hectares, or ``""``.
    role
        One of `ROLES`: ``"risk"`` (default) or an emergency-resource role.
    people_field, households_field
        Fields holding the people / households at risk of a feature (``threat_people``),
        summed by warnings (`riskmap.alerts`); ``""`` when the layer records none.
    uid_prefix
        Prefix of uids generated on import (``DZ`` → ``DZ-500229001-3``); ``""`` = the id
        upper-cased.
    coordinate_aliases
        ``{role: (column names)}`` for the import's coordinate roles ``lon``, ``lat``
        (degrees), ``x``, ``y`` (projected metres) and ``lonlat`` (both in one cell), from
        the catalog's ``[import.coordinates]`` table (shared by every layer).
    """

    id: str
    name: str
    file: str
    geometry: str
    key: str
    class_field: str
    symbol: str
    colors: Mapping[str, str]
    popup: tuple[str, ...]
    list_fields: tuple[str, ...]
    sums: tuple[str, ...]
    fields: Mapping[str, FieldSpec]
    derived: tuple[DerivedSpec, ...] = ()
    flags: tuple[FlagSpec, ...] = ()
    area_field: str = ""
    role: str = "risk"
    people_field: str = ""
    households_field: str = ""
    uid_prefix: str = ""
    coordinate_aliases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def path(self, layers_dir: Path) -> Path:
        """Path of this layer's GeoJSON file inside `layers_dir`."""
        return layers_dir / self.file

    def label(self, key: str) -> str:
        """Chinese label of field `key` (the key itself when undeclared)."""
        spec = self.fields.get(key)
        return spec.label if spec else key

    def header(self, key: str) -> str:
        """Chinese label with unit of field `key`."""
        spec = self.fields.get(key)
        return spec.header if spec else key

    @property
    def classes(self) -> tuple[str, ...]:
        """Classes of `class_field` in severity order (lowest first)."""
        return tuple(self.colors)

    @property
    def required(self) -> tuple[str, ...]:
        """Keys of required fields."""
        return tuple(k for k, f in self.fields.items() if f.required)

    @property
    def personal(self) -> tuple[str, ...]:
        """Keys of fields declared ``personal = true`` (names, phone numbers)."""
        return tuple(k for k, f in self.fields.items() if f.personal)


@dataclass(frozen=True)
class Catalog:
    """All declared layers, in declaration order."""

    layers: Mapping[str, LayerSpec] = field(default_factory=dict)
    lifecycle: Mapping[str, Any] = field(default_factory=dict)
    """The ``[lifecycle]`` table as parsed (statuses, transitions, reasons, deadlines);
    `riskmap.lifecycle.lifecycle_spec` checks and interprets it."""

    def __iter__(self) -> Iterator[LayerSpec]:
        """Iterate over layer specs in declaration order."""
        return iter(self.layers.values())

    def __len__(self) -> int:
        """Return the number of layers."""
        return len(self.layers)

    def __contains__(self, layer_id: object) -> bool:
        """Return True when `layer_id` is declared."""
        return layer_id in self.layers

    @property
    def ids(self) -> tuple[str, ...]:
        """Layer ids in declaration order."""
        return tuple(self.layers)

    def with_role(self, role: str) -> tuple[LayerSpec, ...]:
        """Layers declared with ``role = <role>`` (``"risk"`` for risk layers), catalog order."""
        return tuple(spec for spec in self.layers.values() if spec.role == role)

    def get(self, layer_id: str) -> LayerSpec:
        """
        Return the spec of `layer_id`.

        Raises
        ------
        LayerNotFoundError
            When `layer_id` is not declared; the message lists the declared ids.
        """
        try:
            return self.layers[layer_id]
        except KeyError:
            msg = f"未知图层 {layer_id!r}；可用图层: {', '.join(self.layers)}"
            raise LayerNotFoundError(msg) from None


def _field_from_dict(key: str, raw: Mapping[str, Any], where: str) -> FieldSpec:
    problems = []
    ftype = raw.get("type", "str")
    if ftype not in FIELD_TYPES:
        problems.append(f"{where}.{key}: type {ftype!r} not in {sorted(FIELD_TYPES)}")
    if "label" not in raw:
        problems.append(f"{where}.{key}: missing label")
    if problems:
        raise CatalogError("; ".join(problems))
    return FieldSpec(
        key=key,
        label=str(raw["label"]),
        type=ftype,
        required=bool(raw.get("required", False)),
        values=tuple(str(v) for v in raw.get("values", ())),
        min=None if raw.get("min") is None else float(raw["min"]),
        max=None if raw.get("max") is None else float(raw["max"]),
        unit=str(raw.get("unit", "")),
        personal=bool(raw.get("personal", False)),
        aliases=tuple(str(a) for a in raw.get("aliases", ())),
        decimals=None if raw.get("decimals") is None else int(raw["decimals"]),
    )


def _layer_from_dict(
    layer_id: str,
    raw: Mapping[str, Any],
    common: Mapping[str, FieldSpec],
    coordinate_aliases: Mapping[str, tuple[str, ...]] | None = None,
) -> LayerSpec:
    where = f"layers.{layer_id}"
    problems: list[str] = []
    if not LAYER_ID_RE.match(layer_id):
        problems.append(f"{where}: id must match {LAYER_ID_RE.pattern}")
    required = ("name", "file", "geometry", "class_field", "colors")
    problems.extend(f"{where}: missing {r!r}" for r in required if r not in raw)
    if problems:
        raise CatalogError("; ".join(problems))
    if not FILE_RE.match(str(raw["file"])):
        problems.append(f"{where}.file: {raw['file']!r} must be a plain *.geojson file name")
    if raw["geometry"] not in GEOMETRY_TYPES:
        problems.append(f"{where}.geometry: {raw['geometry']!r} not in {sorted(GEOMETRY_TYPES)}")
    symbol = raw.get("symbol", "fill" if raw["geometry"] == "Polygon" else "circle")
    if symbol not in SYMBOLS:
        problems.append(f"{where}.symbol: {symbol!r} not in {sorted(SYMBOLS)}")
    own = {k: _field_from_dict(k, v, f"{where}.fields") for k, v in raw.get("fields", {}).items()}
    fields = {**common, **own}
    derived = tuple(
        DerivedSpec(
            field=d["field"],
            label=d.get("label", d["field"]),
            labels=tuple(d["labels"]),
            criteria=tuple(
                Criterion(c["field"], tuple(map(float, c["breaks"]))) for c in d["criteria"]
            ),
            authority=d.get("authority", "derived"),
            source=d.get("source", ""),
        )
        for d in raw.get("derived", ())
    )
    flags = tuple(
        FlagSpec(
            field=f["field"],
            label=f.get("label", f["field"]),
            when_field=f["when_field"],
            in_values=tuple(f["in"]),
            source=f.get("source", ""),
        )
        for f in raw.get("flags", ())
    )
    for d in derived:
        for c in d.criteria:
            if len(c.breaks) + 1 != len(d.labels):
                problems.append(
                    f"{where}.derived.{d.field}: {len(d.labels)} labels need "
                    f"{len(d.labels) - 1} breaks in {c.field}"
                )
            if list(c.breaks) != sorted(c.breaks):
                problems.append(f"{where}.derived.{d.field}: breaks of {c.field} must ascend")
        if d.authority not in {"derived", "stated"}:
            problems.append(f"{where}.derived.{d.field}: authority must be 'derived' or 'stated'")
    key = raw.get("key", "uid")
    popup = tuple(raw.get("popup", (key, "name")))
    list_fields = tuple(raw.get("list", popup))
    sums = tuple(raw.get("sums", ()))
    referenced = {key, raw["class_field"], *popup, *list_fields, *sums}
    referenced |= {d.field for d in derived} | {c.field for d in derived for c in d.criteria}
    referenced |= {f.field for f in flags} | {f.when_field for f in flags}
    area_field = str(raw.get("area_field", ""))
    if area_field:
        referenced.add(area_field)
    role = str(raw.get("role", "risk"))
    if role not in ROLES:
        problems.append(f"{where}.role: {role!r} not in {sorted(ROLES)}")
    people_field = str(raw.get("people", ""))
    households_field = str(raw.get("households", ""))
    referenced |= {f for f in (people_field, households_field) if f}
    if role == "shelter":
        capacity = fields.get("capacity")
        if capacity is None or capacity.type != "int":
            problems.append(f"{where}: role 'shelter' needs an int field 'capacity' (容纳人数)")
    if undeclared := sorted(referenced - set(fields)):
        problems.append(f"{where}: fields used but not declared: {undeclared}")
    if problems:
        raise CatalogError("; ".join(problems))
    return LayerSpec(
        id=layer_id,
        name=str(raw["name"]),
        file=str(raw["file"]),
        geometry=str(raw["geometry"]),
        key=key,
        class_field=str(raw["class_field"]),
        symbol=symbol,
        colors=dict(raw["colors"]),
        popup=popup,
        list_fields=list_fields,
        sums=sums,
        fields=fields,
        derived=derived,
        flags=flags,
        area_field=area_field,
        role=role,
        people_field=people_field,
        households_field=households_field,
        uid_prefix=str(raw.get("uid_prefix", "")),
        coordinate_aliases=dict(coordinate_aliases or {}),
    )


def catalog_from_dict(raw: Mapping[str, Any]) -> Catalog:
    """
    Build a `Catalog` from the parsed TOML of ``layers/catalog.toml``.

    Parameters
    ----------
    raw
        ``{"common": {"fields": {...}}, "layers": {id: {...}}}`` as `tomllib` returns it.

    Returns
    -------
    catalog
        Frozen catalog, layers in declaration order.

    Raises
    ------
    CatalogError
        When a layer is malformed; the message names the table and the problem.
    """
    common_raw = raw.get("common", {}).get("fields", {})
    common = {k: _field_from_dict(k, v, "common.fields") for k, v in common_raw.items()}
    layers_raw = raw.get("layers", {})
    if not layers_raw:
        msg = "catalog declares no [layers.<id>] table"
        raise CatalogError(msg)
    coords_raw = raw.get("import", {}).get("coordinates", {})
    coordinate_aliases = {role: tuple(map(str, names)) for role, names in coords_raw.items()}
    layers = {
        lid: _layer_from_dict(lid, lraw, common, coordinate_aliases)
        for lid, lraw in layers_raw.items()
    }
    files = [spec.file for spec in layers.values()]
    if len(set(files)) != len(files):
        msg = f"two layers share a file: {files}"
        raise CatalogError(msg)
    return Catalog(layers, lifecycle=dict(raw.get("lifecycle", {})))
