"""Issue 15: ``riskmap summary`` on unchanged data prints from a cache, never from a stale one.

Each command runs as its own process on a copy of the bundled layers (the cache lives in
``layers/.cache``), as a user runs it. The expected change after an edit is worked out from
the edit itself (one 监测中 point of the geohazard layer marked 已销号).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from riskmap import outputcache
from riskmap.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
C27 = ROOT / "tests" / "data" / "cases" / "c27_townships_xian80.gpkg"
RUN = """
import sys
from riskmap.cli import main
try:
    main(sys.argv[1:], standalone_mode=False)
finally:
    print("geopandas imported" if "geopandas" in sys.modules else "no geopandas", file=sys.stderr)
"""


@pytest.fixture
def layers(tmp_path):
    out = tmp_path / "layers"
    shutil.copytree(Settings().layers_dir, out, ignore=shutil.ignore_patterns(".*"))
    return out


def _summary(layers: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RISKMAP_LAYERS_DIR": str(layers), "PYTHONPATH": str(ROOT)}
    env.pop("RISKMAP_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-c", RUN, "summary", *args],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        cwd=ROOT,
    )


def test_second_run_prints_the_same_without_geopandas(layers):
    first = _summary(layers, "--format", "json")
    assert "geopandas imported" in first.stderr
    assert (layers / ".cache" / "output.summary-json.json").is_file()
    second = _summary(layers, "--format", "json")
    assert second.stdout == first.stdout
    assert "no geopandas" in second.stderr
    # the table format has its own entry: computed once, then cached too
    table = _summary(layers)
    assert "geopandas imported" in table.stderr
    assert "全县合计" in table.stdout
    again = _summary(layers)
    assert (again.stdout, "no geopandas" in again.stderr) == (table.stdout, True)


def test_an_edited_layer_is_never_served_from_the_cache(layers):
    before = json.loads(_summary(layers, "--format", "json").stdout)
    path = layers / "geohazard.geojson"
    doc = json.loads(path.read_text(encoding="utf-8"))
    feature = next(f for f in doc["features"] if f["properties"].get("status") == "监测中")
    feature["properties"]["status"] = "已销号"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    after_run = _summary(layers, "--format", "json")
    assert "geopandas imported" in after_run.stderr  # recomputed, not read
    after = json.loads(after_run.stdout)
    old, new = before["county"]["layers"]["geohazard"], after["county"]["layers"]["geohazard"]
    assert new["cleared"] == old["cleared"] + 1
    assert new["active"] == old["active"] - 1
    assert new["total"] == old["total"]
    # and the new figures are now what is cached
    assert json.loads(_summary(layers, "--format", "json").stdout) == after


def test_an_entry_under_another_key_is_not_used(layers):
    real = _summary(layers).stdout
    entry = layers / ".cache" / "output.summary-table.json"
    data = json.loads(entry.read_text(encoding="utf-8"))
    data["stdout"] = "篡改"
    entry.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    assert _summary(layers).stdout == "篡改\n"  # same key: served (the key is the contract)
    data["key"] = "0" * 64
    entry.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    assert _summary(layers).stdout == real


def test_the_datum_warning_is_shown_again_from_the_cache(layers):
    first = _summary(layers, "--townships", str(C27))
    second = _summary(layers, "--townships", str(C27))
    for run in (first, second):
        assert "警告:" in run.stderr
        assert "Xian 1980" in run.stderr
    assert "no geopandas" in second.stderr
    assert second.stdout == first.stdout


def test_key_covers_settings_code_and_date(layers):
    import datetime as dt

    settings = Settings.from_env(layers_dir=layers)
    day = dt.date(2026, 11, 30)
    key = outputcache.output_key(settings, "summary", "json", today=day)
    assert key == outputcache.output_key(settings, "summary", "json", today=day)
    assert key != outputcache.output_key(settings, "summary", "table", today=day)
    assert key != outputcache.output_key(settings, "summary", "json", today=dt.date(2026, 12, 1))
    other = Settings.from_env(layers_dir=layers, county_name="某县")
    assert key != outputcache.output_key(other, "summary", "json", today=day)
    catalog = layers / "catalog.toml"
    catalog.write_text(catalog.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    assert key != outputcache.output_key(settings, "summary", "json", today=day)
