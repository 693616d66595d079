"""Roles: local editor list (scrypt hashes), OIDC configuration, the session API, the CLI."""

from __future__ import annotations

import os
import stat
import tomllib

import pytest
from click.testing import CliRunner

from riskmap import auth
from riskmap.auth import (
    SESSION_EDITOR,
    AuthConfigError,
    current_editor,
    editors_from_secrets,
    hash_password,
    local_sign_in,
    oidc_configured,
    oidc_editor_allowed,
    oidc_provider,
    upsert_editor,
    verify_password,
)
from riskmap.cli import main

FAST = {"n": 2**10, "r": 8, "p": 1}  # tests only: production default is n = 2**17
PW = "correct horse battery"


@pytest.fixture(scope="module")
def stored() -> str:
    return hash_password(PW, **FAST)


def test_hash_format_salted_and_verifies(stored):
    assert stored.startswith("scrypt$1024$8$1$")
    assert len(stored.split("$")) == 6
    again = hash_password(PW, **FAST)
    assert again != stored  # fresh salt each time
    assert verify_password(PW, stored)
    assert verify_password(PW, again)
    assert not verify_password(PW + "x", stored)
    assert not verify_password("", stored)
    assert PW not in stored


def test_default_cost_is_owasp():
    s = hash_password("a long enough password")
    assert s.startswith("scrypt$131072$8$1$")
    assert verify_password("a long enough password", s)


@pytest.mark.parametrize("bad", ["short", "x" * 2000])
def test_password_length_limits(bad):
    with pytest.raises(AuthConfigError, match="密码"):
        hash_password(bad, **FAST)


@pytest.mark.parametrize(
    "value",
    [
        PW,  # plain text: refused, never compared
        "plain$text",
        "scrypt$1024$8$1$notbase64!$AAAA",
        # n not a power of two
        "scrypt$1000$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "scrypt$2147483648$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAA",  # huge n (memory DoS)
        "pbkdf2_sha256$600000$abc$def",
        "",
    ],
)
def test_plaintext_and_malformed_entries_refused(value):
    with pytest.raises(AuthConfigError):
        verify_password(PW, value)
    with pytest.raises(AuthConfigError, match="alice") as info:
        editors_from_secrets({"editors": {"alice": value}})
    if value:
        assert value not in str(info.value)  # the message never repeats the secret


def test_plaintext_equal_to_password_is_not_accepted(tmp_path):
    """A plain-text entry equal to the typed password must not let anyone in."""
    guard = auth.SignInGuard(tmp_path / "signin.json")
    with pytest.raises(AuthConfigError):
        local_sign_in({"editors": {"alice": PW}}, {}, "alice", PW, guard=guard)


def test_editors_from_secrets(stored):
    assert editors_from_secrets({}) == {}
    assert editors_from_secrets({"editors": {"alice": stored, "王科长": stored}}) == {
        "alice": stored,
        "王科长": stored,
    }
    with pytest.raises(AuthConfigError, match="用户名"):
        editors_from_secrets({"editors": {"a b": stored}})
    with pytest.raises(AuthConfigError, match="表"):
        editors_from_secrets({"editors": "alice"})


OIDC = {
    "redirect_uri": "http://riskmap.cq.gov.cn/oauth2callback",
    "cookie_secret": "x" * 40,
    "client_id": "riskmap",
    "client_secret": "s",
    "server_metadata_url": "https://idp.local/.well-known/openid-configuration",
}


def test_oidc_configured_default_and_named_provider():
    assert oidc_configured({"auth": OIDC})
    assert oidc_provider({"auth": OIDC}) == "default"
    named = {
        "redirect_uri": OIDC["redirect_uri"],
        "cookie_secret": OIDC["cookie_secret"],
        "county": {k: OIDC[k] for k in ("client_id", "client_secret", "server_metadata_url")},
    }
    assert oidc_provider({"auth": named}) == "county"
    for missing in ("redirect_uri", "cookie_secret", "client_secret", "server_metadata_url"):
        cfg = {k: v for k, v in OIDC.items() if k != missing}
        assert not oidc_configured({"auth": cfg}), missing
    assert not oidc_configured({})
    assert not oidc_configured({"auth": "nonsense"})


def test_oidc_allow_list():
    assert oidc_editor_allowed("a@x.gov.cn", {"auth": OIDC})  # no list: any signed-in user
    listed = {"auth": {**OIDC, "editors": ["A@x.gov.cn"]}}
    assert oidc_editor_allowed("a@X.gov.cn", listed)
    assert not oidc_editor_allowed("b@x.gov.cn", listed)
    assert not oidc_editor_allowed(None, listed)
    assert not oidc_editor_allowed("", {"auth": OIDC})
    with pytest.raises(AuthConfigError):
        oidc_editor_allowed("a@x", {"auth": {**OIDC, "editors": "a@x"}})


def test_current_editor_oidc():
    secrets = {"auth": {**OIDC, "editors": ["a@x.gov.cn"]}}
    viewer = current_editor(secrets, {}, {"is_logged_in": False})
    assert (viewer.editor, viewer.mode, viewer.can_edit) == (None, "oidc", False)
    signed = current_editor(secrets, {}, {"is_logged_in": True, "email": "a@x.gov.cn"})
    assert signed.editor == "a@x.gov.cn"
    assert signed.can_edit
    other = current_editor(secrets, {}, {"is_logged_in": True, "email": "z@x.gov.cn"})
    assert not other.can_edit
    # a session-state value does not grant OIDC editing
    assert not current_editor(secrets, {SESSION_EDITOR: "a@x.gov.cn"}, None).can_edit


def test_local_sign_in_flow(stored, tmp_path):
    secrets = {"editors": {"alice": stored}}
    session: dict = {}
    guard = auth.SignInGuard(tmp_path / "signin.json")
    assert current_editor(secrets, session).editor is None
    assert current_editor(secrets, session).mode == "local"
    wrong = local_sign_in(secrets, session, "alice", "wrong password", guard=guard)
    assert wrong == "用户名或密码错误"
    assert local_sign_in(secrets, session, "mallory", PW, guard=guard) == "用户名或密码错误"
    assert current_editor(secrets, session).editor is None
    assert local_sign_in(secrets, session, " alice ", PW, guard=guard) is None
    assert current_editor(secrets, session).editor == "alice"
    # removed from the list: loses editing on the next run
    assert current_editor({"editors": {"bob": stored}}, session).editor is None
    auth.sign_out(session)
    assert current_editor(secrets, session).editor is None


def test_forged_session_name_not_in_list(stored):
    secrets = {"editors": {"alice": stored}}
    assert current_editor(secrets, {SESSION_EDITOR: "mallory"}).editor is None
    assert current_editor(secrets, {SESSION_EDITOR: ["alice"]}).editor is None


def test_no_editors_configured_nobody_edits():
    who = current_editor({}, {SESSION_EDITOR: "alice"})
    assert (who.editor, who.mode) == (None, "none")


def test_upsert_editor_keeps_other_sections_and_comments(stored):
    text = (
        "# county secrets\n[auth]\n"
        + "".join(f'{k} = "{v}"\n' for k, v in OIDC.items())
        + '\n[editors]\nbob = "'
        + stored
        + '"  # bob\n\n[other]\nx = 1\n'
    )
    new = upsert_editor(text, "alice", stored)
    parsed = tomllib.loads(new)
    assert parsed["editors"] == {"bob": stored, "alice": stored}
    assert parsed["auth"] == OIDC
    assert parsed["other"] == {"x": 1}
    assert "# county secrets" in new
    assert "# bob" in new
    other = hash_password("another password", **FAST)
    newer = upsert_editor(new, "alice", other)
    assert tomllib.loads(newer)["editors"]["alice"] == other
    assert newer.count("alice") == 1
    assert tomllib.loads(upsert_editor("", "王科长", stored)) == {"editors": {"王科长": stored}}


def test_upsert_editor_refuses_what_it_cannot_edit(stored):
    with pytest.raises(AuthConfigError, match="手工"):
        upsert_editor(f'editors = {{ bob = "{stored}" }}\n', "alice", stored)
    with pytest.raises(AuthConfigError, match="TOML"):
        upsert_editor("[editors\n", "alice", stored)
    with pytest.raises(AuthConfigError):
        upsert_editor("", "alice", "plain text")
    with pytest.raises(AuthConfigError):
        upsert_editor("", 'a"] = 1 #', stored)


def test_cli_editor_add_and_list(tmp_path, monkeypatch):
    monkeypatch.setattr(auth, "SCRYPT_N", 2**10)
    monkeypatch.setattr(auth.hash_password, "__kwdefaults__", {"n": 2**10, "r": 8, "p": 1})
    secrets = tmp_path / ".streamlit" / "secrets.toml"
    secrets.parent.mkdir()
    secrets.write_text('[auth]\nredirect_uri = "http://x/oauth2callback"\n', encoding="utf-8")
    os.chmod(secrets, 0o644)
    runner = CliRunner()
    res = runner.invoke(
        main, ["editor", "add", "alice", "--secrets", str(secrets)], input=f"{PW}\n{PW}\n"
    )
    assert res.exit_code == 0, res.output
    assert PW not in res.output
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    parsed = tomllib.loads(secrets.read_text(encoding="utf-8"))
    assert parsed["auth"] == {"redirect_uri": "http://x/oauth2callback"}
    assert verify_password(PW, parsed["editors"]["alice"])
    assert PW not in secrets.read_text(encoding="utf-8")
    mismatch = runner.invoke(
        main, ["editor", "add", "bob", "--secrets", str(secrets)], input=f"{PW}\nother pass 1\n"
    )
    assert mismatch.exit_code != 0
    assert "bob" not in secrets.read_text(encoding="utf-8")
    short = runner.invoke(
        main, ["editor", "add", "bob", "--secrets", str(secrets)], input="abc\nabc\n"
    )
    assert short.exit_code == 2
    assert "密码至少" in short.output
    listed = runner.invoke(main, ["editor", "list", "--secrets", str(secrets)])
    assert listed.exit_code == 0
    assert "alice" in listed.output
    assert "scrypt$" not in listed.output
    assert not list(secrets.parent.glob("*.tmp"))


def test_cli_editor_list_refuses_plaintext(tmp_path):
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('[editors]\nalice = "hunter2hunter2"\n', encoding="utf-8")
    res = CliRunner().invoke(main, ["editor", "list", "--secrets", str(secrets)])
    assert res.exit_code == 2
    assert "明文" in res.output
    assert "hunter2" not in res.output


def test_secrets_example_is_valid_and_holds_no_secret():
    from tests.conftest import ROOT

    example = ROOT / ".streamlit" / "secrets.example.toml"
    parsed = tomllib.loads(example.read_text(encoding="utf-8"))
    assert "editors" in parsed or "auth" in parsed
    assert (ROOT / ".gitignore").read_text(encoding="utf-8").count(".streamlit/secrets.toml")
