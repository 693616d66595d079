"""Shared fixtures: the real catalog plus a minimal test layer, tiny townships, a county box."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

import geopandas as gpd
from shapely.geometry import box

from riskmap.catalog import Catalog, catalog_from_dict

# Property tests: 50 examples each, no deadline (a loaded 2-core CI machine makes timings
# meaningless); HYPOTHESIS_PROFILE=thorough runs 500 each (before a release, or after changing a
# reader or the importer). A test's own ``@settings(max_examples=…)`` below 50 is kept.
hypothesis_settings.register_profile("suite", max_examples=50, deadline=None)
hypothesis_settings.register_profile("thorough", max_examples=500, deadline=None)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "suite"))

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
CASES = DATA / "cases"

P_LON, P_LAT = 108.6640, 31.9460
"""Reference point P (WGS84), inside 葛城街道."""


def catalog_raw() -> dict:
    return tomllib.loads((ROOT / "layers" / "catalog.toml").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    """The real catalog plus ``survey``: common fields only (uid and name required)."""
    raw = catalog_raw()
    raw["layers"]["survey"] = {
        "name": "测试点位",
        "file": "survey.geojson",
        "geometry": "Point",
        "class_field": "status",
        "colors": {"在册": "#000000"},
    }
    return catalog_from_dict(raw)


@pytest.fixture(scope="session")
def gdf_townships() -> gpd.GeoDataFrame:
    """Two township boxes: 葛城街道 around P, 复兴街道 east of it (EPSG:4326)."""
    return gpd.GeoDataFrame(
        {
            "adcode": ["500229001", "500229002"],
            "adcode12": ["500229001000", "500229002000"],
            "name": ["葛城街道", "复兴街道"],
            "level": ["街道", "街道"],
            "approximate": [True, True],
            "also_covers": ["", ""],
        },
        geometry=[box(108.60, 31.90, 108.70, 31.99), box(108.70, 31.90, 108.80, 31.99)],
        crs="EPSG:4326",
    )


@pytest.fixture(scope="session")
def gdf_county(gdf_townships) -> gpd.GeoDataFrame:
    """County polygon = union of the two township boxes."""
    return gdf_townships.dissolve()[["geometry"]]


@pytest.fixture(scope="session")
def settings():
    """Settings of the checkout (bundled data, approximate townships)."""
    from riskmap.settings import Settings

    return Settings()


@pytest.fixture
def gdf_two_townships() -> gpd.GeoDataFrame:
    """Two boxes sharing the meridian 108.66 (甲, west: 500229001; 乙, east: 500229002)."""
    return gpd.GeoDataFrame(
        {
            "adcode": ["500229001", "500229002"],
            "adcode12": ["500229001000", "500229002000"],
            "name": ["甲街道", "乙街道"],
            "level": ["街道", "街道"],
            "approximate": [True, True],
            "also_covers": ["", ""],
        },
        geometry=[box(108.60, 31.90, 108.66, 32.00), box(108.66, 31.90, 108.72, 32.00)],
        crs="EPSG:4326",
    )


# --- stores: the file store and the PostGIS store behind one fixture ----------------------------

PG_TABLES = ("heads", "versions", "features", "history", "attachments")


def _pg_unavailable(reason: str):
    """Skip PostGIS tests with `reason`, or fail under RISKMAP_REQUIRE_POSTGIS=1 (CI)."""
    import os

    if os.environ.get("RISKMAP_REQUIRE_POSTGIS") == "1":
        pytest.fail(f"PostGIS required (RISKMAP_REQUIRE_POSTGIS=1) but unavailable: {reason}")
    pytest.skip(f"PostGIS unavailable: {reason}")


@pytest.fixture(scope="session")
def pg_url() -> str:
    """
    URL of a PostGIS database for tests, schema initialised (``riskmap db init``).

    ``RISKMAP_TEST_DATABASE_URL`` when set (`.ci/run` starts a server and sets it); else a
    throwaway server started here with Debian's binaries (`scripts/pg_test_server.py`) and
    stopped at the end of the session; else the test is skipped (failed under
    ``RISKMAP_REQUIRE_POSTGIS=1``).
    """
    import importlib.util
    import os
    import sys

    missing = [m for m in ("sqlalchemy", "psycopg", "geoalchemy2", "alembic")
               if importlib.util.find_spec(m) is None]
    if missing:
        _pg_unavailable(f"packages missing: {', '.join(missing)} (pip install -e '.[postgis]')")
    url = os.environ.get("RISKMAP_TEST_DATABASE_URL", "")
    folder = None
    if not url:
        sys.path.insert(0, str(ROOT / "scripts"))
        try:
            import pg_test_server
        finally:
            sys.path.pop(0)
        bindir = pg_test_server.find_bindir()
        if bindir is None or not pg_test_server.postgis_available(bindir):
            _pg_unavailable("no PostgreSQL/PostGIS binaries and RISKMAP_TEST_DATABASE_URL not set")
        try:
            # in the system temp folder: pytest's own is private to root, and the server
            # runs as the ``postgres`` user when the tests run as root
            url, folder = pg_test_server.start(None)
        except Exception as exc:  # noqa: BLE001 - any failure to start means: unavailable
            detail = getattr(exc, "stderr", "") or ""
            _pg_unavailable(f"could not start a throwaway server: {exc} {detail}")
    from riskmap.store.postgis import dispose_engines, init_db

    init_db(url)
    yield url
    dispose_engines()
    if folder is not None:
        pg_test_server.stop(folder)


def reset_pg(url: str) -> None:
    """Empty every table of the store and drop the per-layer views (a clean database)."""
    import sqlalchemy as sa

    from riskmap.store.postgis import SCHEMA, engine_for

    with engine_for(url).begin() as conn:
        views = conn.execute(
            sa.text("SELECT table_name FROM information_schema.views WHERE table_schema = :s"),
            {"s": SCHEMA},
        ).scalars().all()
        for view in views:
            conn.execute(sa.text(f'DROP VIEW {SCHEMA}."{view}"'))
        tables = ", ".join(f"{SCHEMA}.{t}" for t in PG_TABLES)
        conn.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


def _store_settings(tmp_path: Path, database_url: str = ""):
    import shutil

    from riskmap.settings import Settings

    layers = tmp_path / "layers"
    layers.mkdir(exist_ok=True)
    shutil.copy(ROOT / "layers" / "catalog.toml", layers / "catalog.toml")
    return Settings.from_env({}, root=tmp_path, data_dir=ROOT / "data",
                             database_url=database_url)


@pytest.fixture
def pg_settings(pg_url, tmp_path):
    """Settings of an empty PostGIS store (catalog from a copied ``layers/catalog.toml``)."""
    reset_pg(pg_url)
    return _store_settings(tmp_path, pg_url)


@pytest.fixture(params=["files", "postgis"])
def store_settings(request, tmp_path):
    """Settings of an empty store, once per backend: files in `tmp_path`, then PostGIS."""
    if request.param == "postgis":
        return request.getfixturevalue("pg_settings")
    return _store_settings(tmp_path)


@pytest.fixture
def store(store_settings):
    """An empty store, once per backend (`riskmap.store.open_store` chooses by settings)."""
    from riskmap.store import open_store

    return open_store(store_settings)


# --- browser tests: one Chromium for the session, one server for the modules that only read ----


def _module_of(item: pytest.Item) -> str:
    return item.nodeid.split("::", 1)[0]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """
    Run the modules that use the session's Chromium (``chromium``) last, in their own order.

    Playwright's sync API keeps an asyncio loop marked as running in the main thread while it is
    open, so ``asyncio.run`` (and another ``sync_playwright``) would fail in any test that runs
    while the session's browser is up. Other browser modules (their own Playwright, closed with
    the module) come just before. The sort is stable: file order within each group is kept.
    """
    del config
    shared = {_module_of(i) for i in items if "chromium" in getattr(i, "fixturenames", ())}

    def rank(item: pytest.Item) -> int:
        if _module_of(item) in shared:
            return 2
        return 1 if item.get_closest_marker("browser") else 0

    items.sort(key=rank)


@pytest.fixture(scope="session")
def chromium():
    """
    Debian's headless Chromium (Playwright), launched once for every browser test module.

    Skipped without Chromium or Playwright (failed under ``RISKMAP_REQUIRE_BROWSER=1``). At the
    end, the figures the browser tests recorded (`tests.browser_support.TIMINGS`) are written
    to ``tests/artifacts/timings.json``.
    """
    import json
    import os

    from tests.browser_support import ARGS, ARTIFACTS, CHROMIUM, TIMINGS, browser_missing

    reason = browser_missing()
    if reason is not None:
        if os.environ.get("RISKMAP_REQUIRE_BROWSER") == "1":
            pytest.fail(f"RISKMAP_REQUIRE_BROWSER=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()
    if TIMINGS:
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "timings.json").write_text(json.dumps(TIMINGS, indent=2), "utf-8")


@pytest.fixture(scope="session")
def shared_server(tmp_path_factory):
    """
    A live app on a private copy of the bundled layers, shared by the browser modules that only
    read data (`tests.browser_support.Server`). Its one editor may sign in (that writes only the
    sign-in counters); a module that imports, edits or undoes starts its own server.
    """
    from tests.browser_support import copy_layers, running_server

    tmp = tmp_path_factory.mktemp("shared_server")
    with running_server(tmp, copy_layers(tmp / "layers"), name="shared") as server:
        yield server
