"""The print section of the app (riskmap.ui.paper) without a browser (AppTest)."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parent.parent / "app.py")


def _labels(at: AppTest) -> list[str]:
    return [d.proto.label for d in at.get("download_button")]


def test_print_buttons_follow_the_township_and_the_selected_point():
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["tab"] = "下载清单"  # app.py's TAB_KEY: only the open tab is built
    at.run()
    assert not at.exception
    labels = _labels(at)
    assert "下载全县总图（A3，PDF）" in labels
    assert not any(label.endswith("图表（PDF）") for label in labels)
    infos = [i.value for i in at.info]
    assert "在左侧选择一个乡镇/街道后可下载其图表。" in infos
    assert "在地图或清单中选中一个点位后可下载其明白卡。" in infos

    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["tab"] = "下载清单"  # app.py's TAB_KEY: only the open tab is built
    at.query_params["township"] = "巴山镇"
    at.run()
    at.session_state["sel"] = ("geohazard", "DZ-500229-001")
    at.run()
    assert not at.exception
    labels = [label.replace("\\", "") for label in _labels(at)]  # md-escaped source text
    assert "下载巴山镇图表（PDF）" in labels
    assert "下载明白卡 DZ-500229-001（PDF）" in labels


def test_a_selected_point_that_no_longer_exists_offers_no_card():
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["tab"] = "下载清单"  # app.py's TAB_KEY: only the open tab is built
    at.run()
    at.session_state["sel"] = ("geohazard", "DZ-NOT-THERE")
    at.run()
    assert not at.exception
    assert not any(label.startswith("下载明白卡") for label in _labels(at))
