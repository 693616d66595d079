"""Case 3: the folium map for 10k / 100k points: build time, HTML size, load and zoom in Chromium.

The page is written with ``inline_assets=True`` (no server, no network) to a temp file and
opened through ``file://`` in headless Debian Chromium driven by Playwright.

* **load**: ``performance.now()`` (ms since navigation start) at the second
  ``requestAnimationFrame`` after the ``load`` event: the first frame painted once every
  script has run.
* **zoom**: ``map.setZoom(z, {animate: false})`` → ``zoomend`` → one ``requestAnimationFrame``;
  median over zooming in and out between the start zoom and two levels deeper.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import gen
from bench.timing import fmt_s, median_s, print_table
from riskmap import io
from riskmap.layers import prepare_layer

if TYPE_CHECKING:
    from riskmap.settings import Settings

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
_LOAD_JS = """() => new Promise(done => {
  const fire = () => requestAnimationFrame(() => requestAnimationFrame(
      () => done(performance.now())));
  if (document.readyState === "complete") { fire(); } else { addEventListener("load", fire); }
})"""
_ZOOM_JS = """([name, z]) => new Promise(done => {
  const map = window[name];
  const t0 = performance.now();
  map.once("zoomend", () => requestAnimationFrame(() => done(performance.now() - t0)));
  map.setZoom(z, {animate: false});
})"""


def _has_mapview() -> bool:
    return (Path(__file__).resolve().parent.parent / "riskmap" / "mapview").is_dir()


def _browser_times(html: Path, map_name: str, repeat: int) -> dict[str, float]:
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    loads, zooms = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            for _ in range(repeat):
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.goto(html.as_uri(), wait_until="load", timeout=120_000)
                loads.append(page.evaluate(_LOAD_JS) / 1000)
                z0 = page.evaluate(f"() => window['{map_name}'].getZoom()")
                zooms.extend(
                    page.evaluate(_ZOOM_JS, [map_name, z]) / 1000
                    for z in (z0 + 1, z0 + 2, z0 + 1, z0)
                )
                page.close()
        finally:
            browser.close()
    return {"load_s": statistics.median(loads), "zoom_s": statistics.median(zooms)}


def run(sizes: list[int], repeat: int, settings: Settings, work: Path) -> dict[str, Any]:
    """Build, save and open the map for each size."""
    if not _has_mapview():
        print("\n== 3. map: skipped (riskmap.mapview has not landed in this branch yet)")
        return {"skipped": "riskmap.mapview missing"}
    from riskmap import mapview  # noqa: PLC0415

    catalog = io.read_catalog(settings)
    spec = catalog.get("geohazard")
    gdf_towns = io.read_townships(settings)
    gdf_county = io.read_county(settings)
    results, rows = [], []
    for n in sizes:
        layer = prepare_layer(
            gen.geohazard_layer(n, settings), spec, gdf_towns, metric_crs=settings.metric_crs
        )

        def build(layer: Any = layer) -> Any:  # noqa: ANN401 - folium.Map
            return mapview.build_map(
                {"geohazard": layer}, gdf_towns, gdf_county, settings=settings,
                inline_assets=True,
            )  # fmt: skip

        t_build, fmap = median_s(build, repeat=max(1, repeat // 2))
        t_render, html_text = median_s(lambda: fmap.get_root().render(), repeat=1)  # noqa: B023
        html = work / f"map_{n}.html"
        html.write_text(html_text, encoding="utf-8")
        res: dict[str, Any] = {
            "n": n,
            "build_s": t_build,
            "render_s": t_render,
            "build_render_s": t_build + t_render,
            "html_mb": round(html.stat().st_size / 1e6, 2),
        }
        if n <= 1_000_000:
            try:
                res.update(_browser_times(html, fmap.get_name(), max(1, repeat // 2)))
            except Exception as exc:  # noqa: BLE001 - report, do not abort the benchmark
                res["browser_error"] = str(exc)[:300]
        results.append(res)
        rows.append(
            {
                "n": f"{n:,}",
                "build": fmt_s(t_build),
                "render HTML": fmt_s(t_render),
                "HTML MB": res["html_mb"],
                "load": fmt_s(res.get("load_s")),
                "zoom": fmt_s(res.get("zoom_s")),
            }
        )
        html.unlink()
    print_table("3. map (median; load = first idle frame after `load`)", rows)
    return {"sizes": results}
