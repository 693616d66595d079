"""Sign-in lockout shared by sessions and processes: by user name, by address, with back-off."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from riskmap import auth
from riskmap.auth import (
    ADDRESS_LOCK_AFTER,
    FAILURE_WINDOW_S,
    LOCK_BASE_S,
    LOCK_MAX_S,
    USER_LOCK_AFTER,
    SignInGuard,
    hash_password,
    local_sign_in,
)

PW = "correct horse battery"
WRONG = "wrong password!"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def secrets() -> dict:
    return {"editors": {"alice": hash_password(PW, n=2**10), "bob": hash_password(PW, n=2**10)}}


@pytest.fixture(autouse=True)
def fast_dummy(monkeypatch):
    """Unknown names cost one scrypt of the dummy hash: a cheap one in tests."""
    monkeypatch.setattr(auth, "_DUMMY_HASH", hash_password("dummy password", n=2**10))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def guard(tmp_path, clock) -> SignInGuard:
    return SignInGuard(tmp_path / ".state" / "signin.json", clock=clock)


@pytest.fixture
def scrypt_calls(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = auth._scrypt  # noqa: SLF001 - count the hashes

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(auth, "_scrypt", counting)
    return calls


def _try(secrets, guard, name, password, address="10.0.0.7", session=None):
    return local_sign_in(secrets, {} if session is None else session, name, password,
                         guard=guard, address=address)


def test_new_sessions_share_the_count_and_lock_needs_no_scrypt(secrets, guard, scrypt_calls):
    # every attempt in a fresh session (a new browser tab): the count is not per session
    for _ in range(USER_LOCK_AFTER):
        assert _try(secrets, guard, "alice", WRONG) == "用户名或密码错误"
    assert len(scrypt_calls) == USER_LOCK_AFTER
    message = _try(secrets, guard, "alice", PW)  # even the right password waits
    assert "次数过多" in message
    assert "1 分钟" in message  # LOCK_BASE_S = 60 s, said in Chinese
    assert len(scrypt_calls) == USER_LOCK_AFTER  # refused before any hashing (no CPU lever)
    session: dict = {}
    _try(secrets, guard, "alice", PW, session=session)
    assert auth.SESSION_EDITOR not in session
    # another name from another address is not affected
    assert _try(secrets, guard, "bob", PW, address="10.0.0.8") is None


def test_back_off_doubles_then_caps_and_expires(secrets, guard, clock):
    for _ in range(USER_LOCK_AFTER):
        _try(secrets, guard, "alice", WRONG)
    waits = [guard.wait_s("alice", "10.0.0.7")]
    for _ in range(6):
        clock.now += waits[-1] + 1  # the pause is over: one more wrong guess
        assert _try(secrets, guard, "alice", WRONG) == "用户名或密码错误"
        waits.append(guard.wait_s("alice", "10.0.0.7"))
    expected = [min(LOCK_BASE_S * 2**k, LOCK_MAX_S) for k in range(7)]
    assert waits == pytest.approx(expected)  # 60, 120, 240, 480, 900, 900, 900 s
    # quiet for the window after the last pause: forgotten, all attempts again
    clock.now += waits[-1] + FAILURE_WINDOW_S + 1
    assert guard.wait_s("alice", "10.0.0.7") == 0
    assert _try(secrets, guard, "alice", PW) is None


def test_success_clears_the_name(secrets, guard):
    for _ in range(USER_LOCK_AFTER - 1):
        _try(secrets, guard, "alice", WRONG)
    assert _try(secrets, guard, "alice", PW) is None
    for _ in range(USER_LOCK_AFTER - 1):  # a fresh allowance, not one left
        assert _try(secrets, guard, "alice", WRONG) == "用户名或密码错误"
    assert _try(secrets, guard, "alice", PW) is None


def test_address_lock_across_names(secrets, guard, scrypt_calls):
    """One address guessing many names (each below its own limit) is paused as an address."""
    names = [f"user{i}" for i in range(ADDRESS_LOCK_AFTER)]
    for name in names:
        assert _try(secrets, guard, name, WRONG, address="203.0.113.9") == "用户名或密码错误"
    hashed = len(scrypt_calls)
    assert "次数过多" in _try(secrets, guard, "bob", PW, address="203.0.113.9")
    assert len(scrypt_calls) == hashed
    assert _try(secrets, guard, "bob", PW, address="203.0.113.10") is None


def test_ipv6_counts_by_slash64():
    assert auth.address_key("2001:db8::1") == auth.address_key("2001:db8::ffff:1")
    assert auth.address_key("2001:db8::1") != auth.address_key("2001:db8:0:1::1")
    assert auth.address_key("::ffff:10.0.0.7") == auth.address_key("10.0.0.7")
    assert auth.address_key(None) == "ip:local"


def test_owner_from_a_known_address_is_not_locked_out(secrets, guard):
    """Someone guessing alice's name elsewhere cannot keep alice out (known-address rule)."""
    assert _try(secrets, guard, "alice", PW, address="10.0.0.7") is None  # alice's PC
    for _ in range(USER_LOCK_AFTER + 3):
        _try(secrets, guard, "alice", WRONG, address="198.51.100.1")
    assert "次数过多" in _try(secrets, guard, "alice", PW, address="198.51.100.2")
    assert _try(secrets, guard, "alice", PW, address="10.0.0.7") is None


def test_unlock_and_unknown_names_look_the_same(secrets, guard):
    for _ in range(USER_LOCK_AFTER):
        _try(secrets, guard, "alice", WRONG)
        _try(secrets, guard, "nobody", WRONG, address="10.0.0.9")
    # a name that does not exist is paused exactly like one that does: no enumeration
    assert _try(secrets, guard, "nobody", PW, address="10.0.0.9") == _try(
        secrets, guard, "alice", PW)
    assert guard.unlock("alice")
    assert _try(secrets, guard, "alice", PW) is None


def test_state_file_keeps_no_typed_name_and_is_private(secrets, guard):
    _try(secrets, guard, PW + "-typed-as-name", WRONG)
    text = guard.path.read_text(encoding="utf-8")
    assert "typed-as-name" not in text
    assert "alice" not in text
    assert stat.S_IMODE(guard.path.stat().st_mode) == 0o600
    json.loads(text)


def test_corrupt_or_unwritable_state(secrets, guard, tmp_path):
    guard.path.parent.mkdir(parents=True)
    guard.path.write_text("{not json", encoding="utf-8")
    with pytest.warns(UserWarning, match="状态文件已损坏"):
        assert _try(secrets, guard, "alice", PW) is None
    ro = SignInGuard(tmp_path / "ro" / ".state" / "signin.json")
    (tmp_path / "ro").mkdir()
    os.chmod(tmp_path / "ro", 0o555)  # noqa: S103 - read-only folder
    try:
        if os.geteuid() == 0:
            pytest.skip("root ignores permissions: run as non-root by test_security_nonroot")
        message = _try(secrets, ro, "alice", PW)
        assert "无法记录登录尝试" in message
    finally:
        os.chmod(tmp_path / "ro", 0o755)  # noqa: S103


CHILD = """
import sys
from pathlib import Path
from riskmap.auth import SignInGuard
guard = SignInGuard(Path(sys.argv[1]))
print(sum(guard.begin("alice", "10.0.0.7") is None for _ in range(int(sys.argv[2]))))
"""


def test_processes_agree(tmp_path):
    """Four app processes guessing at once: exactly USER_LOCK_AFTER attempts get through."""
    path = tmp_path / "signin.json"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(path), "4"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )
        for _ in range(4)
    ]
    allowed = 0
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        allowed += int(out)
    assert allowed == USER_LOCK_AFTER
    state = json.loads(path.read_text(encoding="utf-8"))
    assert state["keys"][auth.user_key("alice")]["failures"] == USER_LOCK_AFTER


def test_cli_unlock(tmp_path, monkeypatch, secrets):
    from click.testing import CliRunner

    from riskmap.cli import main

    monkeypatch.setenv("RISKMAP_LAYERS_DIR", str(tmp_path))
    guard = SignInGuard(tmp_path / ".state" / "signin.json")
    for _ in range(USER_LOCK_AFTER):
        _try(secrets, guard, "alice", WRONG)
    assert guard.wait_s("alice", "10.0.0.7") > 0
    result = CliRunner().invoke(main, ["editor", "unlock", "alice"])
    assert result.exit_code == 0, result.output
    assert "已解除" in result.output
    assert guard.wait_s("alice", "10.0.0.7") == 0
