"""The app's import page: history in Chinese with local time and no None; undo asks first and
says what it restores; held rows offered with a tick each."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from riskmap import io
from riskmap.importing import commit_import, plan_import
from riskmap.importing.history import HISTORY_COLUMNS, history_frame, local_time, undo_description
from riskmap.settings import Settings
from riskmap.store.files import FileStore
from tests.conftest import CASES

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")


@pytest.mark.parametrize(
    ("iso", "local"),
    [
        ("2026-03-01T16:30:00+00:00", "2026-03-02 00:30:00"),  # UTC+8 crosses midnight
        ("2026-07-01T00:00:05Z", "2026-07-01 08:00:05"),  # no daylight saving in China
        ("2026-03-01T08:00:00", "2026-03-01 16:00:00"),  # naive = UTC (the log's own times)
        (None, ""),
        ("not a time", "not a time"),
    ],
)
def test_local_time_table(iso, local):
    assert local_time(iso) == local


def test_history_frame_is_chinese_and_has_no_none():
    entries = [
        {"time": "2026-03-01T02:00:00+00:00", "user": "甲", "action": "create", "source": "a.csv"},
        {"time": "2026-03-01T02:00:01+00:00", "user": "甲", "action": "import",
         "source": "a.csv", "added": 3, "updated": 0, "rejected": 1, "rows_before": 0,
         "rows_after": 3, "backup": "b1"},
        {"time": "2026-03-02T02:00:00+00:00", "user": None, "action": "status", "source": None,
         "updated": 1, "backup": "b2"},
    ]  # fmt: skip
    frame = history_frame(entries)
    assert list(frame.columns) == HISTORY_COLUMNS
    assert frame["操作"].tolist() == ["状态变更", "导入", "新建图层"]  # newest first
    assert frame["时间"].iloc[1] == "2026-03-01 10:00:01"
    assert not frame.isna().any().any()
    assert "None" not in frame.to_string()
    what = undo_description(entries)
    assert what.startswith("撤销 北京时间 2026-03-02 10:00:00 的状态变更")


def test_undo_description_names_file_counts_and_rows():
    entries = [
        {"time": "2026-03-01T02:00:01+00:00", "user": "甲", "action": "import",
         "source": "c28a.csv", "added": 1, "updated": 0, "rejected": 0, "rows_before": 60,
         "rows_after": 61, "backup": "b1"},
    ]  # fmt: skip
    what = undo_description(entries)
    assert "c28a.csv" in what
    assert "新增 1" in what
    assert "60 个要素" in what
    assert undo_description([]) is None
    undone = [*entries, {"action": "undo", "undoes": "b1", "backup": "b2"}]
    assert undo_description(undone) is None


@pytest.fixture
def layers_copy(tmp_path, monkeypatch) -> Path:
    target = tmp_path / "layers"
    shutil.copytree(ROOT / "layers", target, ignore=shutil.ignore_patterns(".history", ".cache"))
    monkeypatch.setenv("RISKMAP_LAYERS_DIR", str(target))
    return target


def _signed_in() -> AppTest:
    from riskmap.auth import hash_password

    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets["editors"] = {"alice": hash_password("correct horse battery", n=2**10)}
    at.session_state["tab"] = "导入调查表"  # app.py's TAB_KEY: only the open tab is built
    at.run()
    at.text_input(key="riskmap_login_user").input("alice")
    at.text_input(key="riskmap_login_password").input("correct horse battery")
    return next(b for b in at.button if b.label == "登录").click().run()


@pytest.mark.usefixtures("layers_copy")
def test_import_page_history_and_confirmed_undo():
    settings = Settings.from_env()
    store = FileStore(settings)
    spec = store.read_catalog().get("geohazard")
    before = len(store.read_layer(spec))
    plan = plan_import(
        (CASES / "c28a_first_import.csv").read_bytes(), "c28a_first_import.csv", spec,
        existing=store.read_layer(spec), gdf_townships=io.read_townships(settings),
        gdf_county=io.read_county(settings),
    )  # fmt: skip
    commit_import(plan, spec, store, user="甲")
    at = _signed_in()
    assert not at.exception
    history = next(d.value for d in at.dataframe if "操作人" in d.value.columns)
    assert history["操作"].iloc[0] == "导入"
    assert history["来源文件"].iloc[0] == "c28a_first_import.csv"
    assert "None" not in history.to_string()
    at = next(b for b in at.button if b.label == "撤销最近一次修改…").click().run()
    assert len(store.read_layer(spec)) == before + 1  # asked, not undone yet
    question = " ".join(w.value for w in at.warning)
    assert "确认要撤销" in question
    assert "c28a" in question
    at = next(b for b in at.button if b.label == "确认撤销").click().run()
    assert not at.exception
    assert len(store.read_layer(spec)) == before


def test_held_rows_offer_a_tick_per_conflict_and_duplicate(catalog, gdf_townships, gdf_county):
    from riskmap.ui.importing import held_rows

    spec = catalog.get("geohazard")
    kw = {"gdf_townships": gdf_townships, "gdf_county": gdf_county}
    first = plan_import(
        (CASES / "c28a_first_import.csv").read_bytes(),
        "a.csv",
        spec,
        existing=io.empty_layer(spec),
        **kw,
    )
    existing = first.gdf_result
    plan = plan_import(
        (CASES / "c29_resent_under_new_name.csv").read_bytes(),
        "c29.csv",
        spec,
        existing=existing,
        **kw,
    )
    none = {"conflict": frozenset(), "duplicate": frozenset()}
    frame = held_rows(plan, none)
    assert frame[["确认", "行号", "类型", "名称"]].values.tolist() == [
        [False, 2, "疑似重复", "甲村滑坡"]
    ]
    ticked = {"conflict": frozenset(), "duplicate": frozenset({2})}
    again = plan_import(
        (CASES / "c29_resent_under_new_name.csv").read_bytes(),
        "c29.csv",
        spec,
        existing=existing,
        add_duplicates={2},
        **kw,
    )
    assert held_rows(again, ticked)["确认"].tolist() == [True]  # still listed, can be unticked
