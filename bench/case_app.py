"""Case 4: app rerun after a filter change with 100k points (Streamlit AppTest, server side)."""

from __future__ import annotations

import os
import pickle
import shutil
import statistics
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import gen
from bench.timing import fmt_s, median_s, print_table
from riskmap import aggregate
from riskmap.layers import filter_features
from riskmap.project import load_project

if TYPE_CHECKING:
    from riskmap.settings import Settings

APP = Path(__file__).resolve().parent.parent / "app.py"


def _layers_dir(n: int, settings: Settings, work: Path) -> Path:
    """A layers folder: the bundled catalog and layers, geohazard replaced by `n` points."""
    layers = work / f"layers_{n}"
    layers.mkdir()
    for src in settings.layers_dir.glob("*"):
        if src.is_file():
            shutil.copy2(src, layers / src.name)
    gen.write_geojson(gen.geohazard_layer(n, settings), layers / "geohazard.geojson")
    return layers


def _timers(layers: Path, settings: Settings, repeat: int) -> dict[str, float]:
    """What a rerun costs besides the page itself: the cache's copy, filtering, figures."""
    from dataclasses import replace  # noqa: PLC0415

    project = load_project(replace(settings, layers_dir=layers))
    # "cache copy": what st.cache_data would add to every rerun (an unpickled copy of the
    # layers); app.py caches the project with st.cache_resource instead, for this reason.
    try:
        pickle.dumps(project)
        picklable = True
    except TypeError:
        picklable = False
    data = {lid: (layer.gdf, layer.shares) for lid, layer in project.layers.items()}
    blob = pickle.dumps(data)
    t_copy, _ = median_s(lambda: pickle.loads(blob), repeat=repeat)  # noqa: S301 - own data
    layer = project.layers["geohazard"]
    code = project.township_codes["adcode"].iloc[3]
    t_filter, _ = median_s(
        lambda: filter_features(layer, township_codes=[code], statuses=["在册", "监测中"]),
        repeat=repeat,
    )
    t_sum, _ = median_s(
        lambda: aggregate.summarize_townships(
            project.layers, project.gdf_townships, project.township_codes
        ),
        repeat=repeat,
    )
    return {
        "project_picklable": picklable,
        "cache_copy_s": t_copy,
        "filter_s": t_filter,
        "summarize_s": t_sum,
    }


def _apptest(app: Path, repeat: int) -> dict[str, Any]:
    """First run, then reruns after a township change and a status-filter change."""
    from streamlit.testing.v1 import AppTest  # noqa: PLC0415

    res: dict[str, Any] = {}
    at = AppTest.from_file(str(app), default_timeout=600)
    t0 = time.perf_counter()
    at.run()
    res["first_run_s"] = time.perf_counter() - t0
    if at.exception:
        res["apptest"] = f"exception: {at.exception[0].message.splitlines()[0]}"
        return res
    towns = at.sidebar.selectbox[0].options
    times = []
    for k in range(repeat):
        at.sidebar.selectbox[0].select(towns[1 + k % (len(towns) - 1)])
        t0 = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - t0)
    res["rerun_township_s"] = statistics.median(times)
    times = []
    for k in range(repeat):
        at.sidebar.multiselect[0].set_value(["在册"] if k % 2 else ["在册", "监测中"])
        t0 = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - t0)
    res["rerun_status_s"] = statistics.median(times)
    res["apptest"] = f"exception: {at.exception[0].message}" if at.exception else "ok"
    return res


def run(n: int, repeat: int, settings: Settings, work: Path) -> dict[str, Any]:
    """Time the first run and reruns after changing the township and the status filter."""
    layers = _layers_dir(n, settings, work)
    res: dict[str, Any] = {"n": n, **_timers(layers, settings, repeat)}
    if not (Path(__file__).resolve().parent.parent / "riskmap" / "mapview").is_dir():
        print("(case 4 AppTest skipped: riskmap.mapview has not landed in this branch yet)")
        res["apptest"] = "skipped: riskmap.mapview missing"
    else:
        old = os.environ.get("RISKMAP_LAYERS_DIR")
        os.environ["RISKMAP_LAYERS_DIR"] = str(layers)
        try:
            res.update(_apptest(APP, repeat))
            if "Cannot serialize" in res["apptest"]:
                # app.py caches `Project` with st.cache_data, which must pickle it. Measure
                # what the page costs once the loader is cached as a shared resource.
                patched = work / "app_cache_resource.py"
                text = APP.read_text(encoding="utf-8")
                patched.write_text(
                    text.replace(
                        "@st.cache_data(show_spinner=", "@st.cache_resource(show_spinner="
                    ),
                    encoding="utf-8",
                )
                alt = _apptest(patched, repeat)
                res.update({f"cache_resource_{k}": v for k, v in alt.items()})
        finally:
            if old is None:
                os.environ.pop("RISKMAP_LAYERS_DIR", None)
            else:
                os.environ["RISKMAP_LAYERS_DIR"] = old
    print_table(
        f"4. app rerun, {n:,} geohazard points (median)",
        [
            {
                "first run": fmt_s(res.get("first_run_s")),
                "rerun: township": fmt_s(res.get("rerun_township_s")),
                "rerun: status": fmt_s(res.get("rerun_status_s")),
                "cache copy": fmt_s(res["cache_copy_s"]),
                "filter": fmt_s(res["filter_s"]),
                "summarize": fmt_s(res["summarize_s"]),
                "AppTest": res["apptest"][:60],
            },
            *(
                [
                    {
                        "first run": fmt_s(res.get("cache_resource_first_run_s")),
                        "rerun: township": fmt_s(res.get("cache_resource_rerun_township_s")),
                        "rerun: status": fmt_s(res.get("cache_resource_rerun_status_s")),
                        "cache copy": "(none)",
                        "filter": "",
                        "summarize": "",
                        "AppTest": "app.py with st.cache_resource: "
                        + res["cache_resource_apptest"][:40],
                    }
                ]
                if "cache_resource_apptest" in res
                else []
            ),
        ],
    )
    return res
