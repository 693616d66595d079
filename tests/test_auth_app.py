"""Sign-in panel in a real Streamlit run (AppTest, no browser): viewers get no import controls."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from riskmap.auth import hash_password

PW = "correct horse battery"


def _page() -> None:
    import streamlit as st

    from riskmap.auth import sign_in_panel

    who = sign_in_panel()
    if who.can_edit:
        st.file_uploader("导入调查表", key="import_upload")
        st.button("撤销上次导入", key="undo")
    else:
        st.info("查看模式")


def _app(secrets: dict) -> AppTest:
    at = AppTest.from_function(_page)
    for k, v in secrets.items():
        at.secrets[k] = v
    return at.run(timeout=30)


def test_viewer_sees_no_import_controls_until_signed_in(tmp_path, monkeypatch):
    monkeypatch.setenv("RISKMAP_LAYERS_DIR", str(tmp_path))  # sign-in counters go there
    at = _app({"editors": {"alice": hash_password(PW, n=2**10)}})
    assert not at.exception
    assert not at.get("file_uploader")
    assert [b.label for b in at.button] == ["登录"]  # the sign-in form only, no 撤销
    at.text_input(key="riskmap_login_user").input("alice")
    at.text_input(key="riskmap_login_password").input("wrong password!")
    at = at.button[0].click().run(timeout=30)
    assert not at.get("file_uploader")
    assert "riskmap_editor" not in at.session_state
    at.text_input(key="riskmap_login_user").input("alice")
    at.text_input(key="riskmap_login_password").input(PW)
    at = at.button[0].click().run(timeout=30)
    assert at.session_state["riskmap_editor"] == "alice"
    assert at.get("file_uploader")
    assert "撤销上次导入" in [b.label for b in at.button]
    assert (tmp_path / ".state" / "signin.json").exists()  # shared counters, not the session


def test_a_new_session_does_not_start_again_at_zero(tmp_path, monkeypatch):
    """Failures in one browser session pause the name in the next one (AppTest sessions)."""
    monkeypatch.setenv("RISKMAP_LAYERS_DIR", str(tmp_path))
    secrets = {"editors": {"alice": hash_password(PW, n=2**10)}}
    for _ in range(5):
        at = _app(secrets)  # a fresh session each time
        at.text_input(key="riskmap_login_user").input("alice")
        at.text_input(key="riskmap_login_password").input("wrong password!")
        at = at.button[0].click().run(timeout=30)
        assert [e.value for e in at.sidebar.error] == ["用户名或密码错误"]
    at = _app(secrets)
    at.text_input(key="riskmap_login_user").input("alice")
    at.text_input(key="riskmap_login_password").input(PW)
    at = at.button[0].click().run(timeout=30)
    assert "riskmap_editor" not in at.session_state
    assert any("次数过多" in e.value for e in at.sidebar.error)


def test_no_editors_configured_means_view_only():
    at = _app({})
    assert not at.exception
    assert not at.get("file_uploader")


def test_plaintext_editor_entry_is_an_error_not_a_login():
    at = _app({"editors": {"alice": PW}})
    assert not at.get("file_uploader")
    assert any("明文" in e.value for e in at.sidebar.error)
