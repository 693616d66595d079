"""The app's cached map (`riskmap.ui.caching`): what `st_folium` sends, built once per key."""

from __future__ import annotations

import itertools

import pytest
import streamlit_folium
from branca.element import Element

from riskmap.mapview import build_map
from riskmap.project import load_project
from riskmap.settings import Settings
from riskmap.ui import caching


@pytest.fixture(scope="module")
def project():
    return load_project(Settings())


@pytest.fixture
def fixed_ids(monkeypatch):
    """folium/branca element ids from a counter (reset per map), so two builds are identical."""
    counter = {"ids": itertools.count()}

    def reset() -> None:
        counter["ids"] = itertools.count()

    monkeypatch.setattr(
        Element, "_generate_id", classmethod(lambda _cls: f"{next(counter['ids']):032x}")
    )
    return reset


@pytest.fixture
def sent(monkeypatch):
    """The keyword arguments of every call of streamlit-folium's component."""
    calls: list[dict] = []
    monkeypatch.setattr(streamlit_folium, "_component_func", lambda **kw: calls.append(kw))
    return calls


def _map(project, township: str | None = None):
    code = project.township(township)[0] if township else None
    return build_map(
        project.layers,
        project.gdf_townships,
        project.gdf_county,
        settings=project.settings,
        selected_township=code,
        demo=project.demo,
        view_key=code or "county",
        layer_control=False,
    )


@pytest.mark.parametrize("township", [None, "巴山镇"])
def test_show_map_sends_exactly_what_st_folium_sends(project, fixed_ids, sent, township):
    fixed_ids()
    streamlit_folium.st_folium(
        _map(project, township),
        key="map",
        height=600,
        use_container_width=True,
        returned_objects=["last_active_drawing"],
    )
    fixed_ids()
    args = caching.render_map_args(_map(project, township), key="map")
    caching.show_map(args, key="map", height=600, returned_objects=["last_active_drawing"])
    theirs, ours = sent
    assert set(ours) == set(theirs)
    for name in set(theirs) - {"on_change"}:
        assert ours[name] == theirs[name], name
    assert len(ours["script"]) > 100_000  # the county's layers are in it, not elsewhere
    assert args.html_bytes == sum(len(ours[k].encode()) for k in ("script", "header", "html"))


def test_a_map_is_built_once_per_key(project):
    caching._map_args.clear()  # noqa: SLF001 - the cache under test
    builds: list[str] = []

    def build(township):
        def make():
            builds.append(township)
            return _map(project, township)

        return make

    first = caching.map_args(build("巴山镇"), ("v1", "巴山镇"), widget_key="map")
    again = caching.map_args(build("巴山镇"), ("v1", "巴山镇"), widget_key="map")
    other = caching.map_args(build("庙坝镇"), ("v1", "庙坝镇"), widget_key="map")
    newer = caching.map_args(build("巴山镇"), ("v2", "巴山镇"), widget_key="map")
    assert builds == ["巴山镇", "庙坝镇", "巴山镇"]  # a new data version builds again
    assert again is first  # the same object: identical arguments, so an identical message
    assert other.hash_key != first.hash_key  # another map: another component key (new iframe)
    assert newer.hash_key == first.hash_key  # same data drawn: same script, same key
    assert first.build_s > 0
