"""The offline basemap served by the app itself (RISKMAP_BASEMAP), seen in a real Chromium.

A tile file is made here (an MBTiles of solid-colour PNG tiles over the county, as in
``tests/test_basemap.py``); a server started with ``RISKMAP_BASEMAP`` must show its tiles from
its own static folder, with no tile server and no other host.
"""

from __future__ import annotations

import urllib.request

import pytest

from tests.browser_support import (
    LAPTOP,
    new_page,
    open_page,
    outside_requests,
    require_browser,
    running_server,
    shot,
)
from tests.test_basemap import _colour, _png, _write_mbtiles, _xyz_independent

pytestmark = pytest.mark.browser
require_browser()


@pytest.fixture(scope="module")
def basemap_server(tmp_path_factory):
    from riskmap import io
    from riskmap.settings import Settings

    tmp = tmp_path_factory.mktemp("basemap")
    left, bottom, right, top = io.read_county(Settings()).total_bounds
    tiles = {}
    for z in range(7, 11):
        x0, y0 = _xyz_independent(left - 0.1, top + 0.1, z)
        x1, y1 = _xyz_independent(right + 0.1, bottom - 0.1, z)
        for x in range(x0, x1 + 1):
            for y in range(y0, y1 + 1):
                tiles[(z, x, y)] = _png(_colour(z, x, y))
    mbtiles = tmp / "县域底图.mbtiles"
    _write_mbtiles(mbtiles, tiles)
    env = {"RISKMAP_BASEMAP": str(mbtiles), "RISKMAP_BASEMAP_CRS": "wgs84"}
    # reads only: the checkout's own layers, no editor
    with running_server(tmp, None, env=env, secrets=False) as server:
        yield server, tiles


def test_offline_basemap_tiles_come_from_the_app_itself(chromium, basemap_server):
    server, tiles = basemap_server
    requests: list[str] = []
    page = new_page(chromium, LAPTOP, requests=requests)
    try:
        frame = open_page(page, server)
        frame.wait_for_function(
            "() => Array.from(document.querySelectorAll('img.leaflet-tile'))"
            ".filter(i => i.complete && i.naturalWidth === 256).length >= 4",
            timeout=60_000,
        )
        srcs = frame.evaluate(
            "() => Array.from(document.querySelectorAll('img.leaflet-tile')).map(i => i.src)"
        )
        assert srcs
        assert all(s.startswith(f"{server.url}app/static/basemap/") for s in srcs)
        assert "测试瓦片" in frame.inner_text(".leaflet-control-attribution")
        shot(page, "layout_offline_basemap")
        # one tile fetched directly: the bytes of the file's tile at that XYZ address
        src = next(s for s in srcs if s.endswith(".png"))
        z, x, y = (int(v) for v in src.removesuffix(".png").rsplit("/", 3)[1:])
        with urllib.request.urlopen(src, timeout=10) as r:  # noqa: S310 - the test server
            assert r.headers["Content-Type"] == "image/png"
            assert r.read() == tiles[(z, x, y)]
    finally:
        page.close()
    assert outside_requests(requests, server.url) == []
