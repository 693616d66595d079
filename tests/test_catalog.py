import tomllib

import pytest

from riskmap.catalog import catalog_from_dict
from riskmap.errors import CatalogError, LayerNotFoundError


def test_bundled_catalog_declares_the_four_layers(settings):
    from riskmap import io

    catalog = io.read_catalog(settings)
    risk = catalog.with_role("risk")
    assert [spec.id for spec in risk] == ["geohazard", "waterlogging", "bridge", "firezone"]
    names = [spec.name for spec in risk]
    assert names == ["地质灾害隐患点", "内涝积水点", "危旧桥梁", "森林火险区"]
    assert catalog.get("firezone").geometry == "Polygon"
    assert catalog.get("geohazard").required == ("uid", "name", "hazard_type", "threat_people")


def test_common_fields_in_every_layer(catalog):
    for spec in catalog:
        for key in ("uid", "name", "township", "township_code", "status", "resp_phone", "demo"):
            assert key in spec.fields, (spec.id, key)


def test_header_has_unit(catalog):
    spec = catalog.get("geohazard")
    assert spec.header("threat_people") == "威胁人数(人)"
    assert spec.header("name") == "名称"


def test_unknown_layer_lists_available(catalog):
    with pytest.raises(LayerNotFoundError, match="geohazard"):
        catalog.get("shelter")


def _minimal(**layer):
    base = {
        "name": "应急避难场所",
        "file": "shelter.geojson",
        "geometry": "Point",
        "class_field": "kind",
        "colors": {"室内": "#1b9e77"},
        "fields": {"kind": {"label": "类型", "type": "str"}},
    }
    base.update(layer)
    return {
        "common": {"fields": {"uid": {"label": "统一编号"}, "name": {"label": "名称"}}},
        "layers": {"shelter": base},
    }


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ({"file": "../etc/passwd"}, "plain"),
        ({"geometry": "Line"}, "geometry"),
        ({"popup": ["nope"]}, "not declared"),
        ({"fields": {"kind": {"label": "类型", "type": "decimal"}}}, "type"),
        (
            {
                "derived": [
                    {
                        "field": "kind",
                        "labels": ["a", "b"],
                        "criteria": [{"field": "kind", "breaks": [1, 2]}],
                    }
                ]
            },
            "breaks",
        ),
    ],
)
def test_malformed_layers_are_refused(override, match):
    with pytest.raises(CatalogError, match=match):
        catalog_from_dict(_minimal(**override))


def test_bad_layer_id_refused():
    raw = _minimal()
    raw["layers"] = {"../x": raw["layers"]["shelter"]}
    with pytest.raises(CatalogError, match="id must match"):
        catalog_from_dict(raw)


def test_catalog_file_round_trip(settings):
    raw = tomllib.loads(settings.catalog_path.read_text(encoding="utf-8"))
    assert catalog_from_dict(raw).ids == tuple(raw["layers"])
