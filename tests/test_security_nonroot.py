"""Re-run the write tests as a non-root user (the suite itself runs as root in CI).

Root ignores permission bits, so a read-only data folder and files created by one user and
written by another are only really tested by an ordinary user. Under root this test starts
pytest again as ``nobody`` (uid 65534) with ``setpriv`` (util-linux) against a private temp
folder. The child keeps only CAP_DAC_READ_SEARCH (it may *read* the interpreter, which lives
under root's 0700 home in CI, and the checkout) but no CAP_DAC_OVERRIDE: every *write* obeys
the permission bits exactly as for an ordinary user.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WRITE_TESTS = [
    "tests/test_security_readonly.py",
    "tests/test_security_history.py",
    "tests/test_auth_lockout.py",
    "tests/test_writes.py",
]
"""Every test module that writes data files, secrets or state."""
NOBODY = 65534


@pytest.mark.skipif(os.geteuid() != 0, reason="already non-root: the modules run as they are")
@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) not installed")
def test_write_tests_pass_as_a_non_root_user(tmp_path):
    home = tmp_path / "nobody"
    home.mkdir()
    os.chown(home, NOBODY, NOBODY)
    cmd = [
        "setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
        "--inh-caps=-all,+dac_read_search", "--ambient-caps=-all,+dac_read_search",
        "--bounding-set=-all,+dac_read_search",
        sys.executable, "-m", "pytest", *WRITE_TESTS, "-q", "-rs", "-p", "no:cacheprovider",
        f"--basetemp={home / 'pytest'}",
        # SIGKILL timing test: covered by the root run; too slow to run twice on 2 cores
        "-k", "not sigkill",
    ]  # fmt: skip
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "PYTHONPATH": str(ROOT),
        "PYTHONDONTWRITEBYTECODE": "1",
        "LANG": "C.UTF-8",
    }
    proc = subprocess.run(
        cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "root ignores permissions" not in out  # the permission tests really ran
    summary = out.strip().splitlines()[-1]
    assert " passed" in summary
    assert "skipped" not in summary
    assert "failed" not in summary
