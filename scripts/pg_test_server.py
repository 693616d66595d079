"""Throwaway PostgreSQL + PostGIS server for tests, CI and a local try-out (one command).

Usage::

    python scripts/pg_test_server.py start [--dir DIR]   # prints the database URL, exits
    python scripts/pg_test_server.py stop --dir DIR

`start` creates a new cluster with Debian's PostgreSQL binaries (``initdb``; as the
``postgres`` user when run as root, because initdb refuses root) in a temporary folder,
listening only on a unix socket inside that folder (no TCP port, so no clash with another
server), starts it, creates the database ``riskmap`` with ``CREATE EXTENSION postgis`` and
prints its URL (``postgresql://postgres@/riskmap?host=<dir>&port=<port>``) on stdout. The
folder holds everything: `stop` stops the server and deletes it.

The pytest fixture in ``tests/conftest.py`` imports `start`/`stop` from here.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DB_NAME = "riskmap"


def find_bindir() -> Path | None:
    """Return the newest ``/usr/lib/postgresql/<v>/bin`` holding initdb and pg_ctl, or None."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name)
    )
    for cand in reversed(candidates):
        if (Path(cand) / "initdb").exists() and (Path(cand) / "pg_ctl").exists():
            return Path(cand)
    found = shutil.which("pg_ctl")
    return Path(found).parent if found else None


def postgis_available(bindir: Path) -> bool:
    """Return True when the PostGIS extension is installed for the server in `bindir`."""
    share = Path("/usr/share/postgresql") / bindir.parent.name / "extension"
    return (share / "postgis.control").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_as(cmd: list[str], user: str | None) -> subprocess.CompletedProcess:
    if user is None:
        return subprocess.run(cmd, check=True, capture_output=True, text=True)  # noqa: S603 - fixed argv
    pw = pwd.getpwnam(user)

    def demote() -> None:
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)

    env = {**os.environ, "HOME": pw.pw_dir, "USER": user}
    return subprocess.run(  # noqa: S603 - fixed argv, PostgreSQL's own binaries
        cmd, check=True, capture_output=True, text=True, preexec_fn=demote, env=env
    )


def start(base: Path | None = None) -> tuple[str, Path]:
    """
    Create, start and prepare a throwaway cluster; return ``(url, folder)``.

    Raises
    ------
    RuntimeError
        When the binaries or PostGIS are missing, or the server does not start (with its log).
    """
    bindir = find_bindir()
    if bindir is None:
        msg = "PostgreSQL binaries not found (apt-get install postgresql postgresql-15-postgis-3)"
        raise RuntimeError(msg)
    if not postgis_available(bindir):
        msg = f"PostGIS extension not installed for {bindir} (apt-get install postgresql-*-postgis-3)"
        raise RuntimeError(msg)
    user = "postgres" if os.geteuid() == 0 else None
    folder = Path(tempfile.mkdtemp(prefix="riskmap-pg-", dir=base))
    folder.chmod(0o755)
    data = folder / "data"
    if user is not None:
        pw = pwd.getpwnam(user)
        os.chown(folder, pw.pw_uid, pw.pw_gid)
    db_user = user or pwd.getpwuid(os.geteuid()).pw_name
    _run_as(
        [str(bindir / "initdb"), "-D", str(data), "-U", db_user, "-A", "trust", "-E", "UTF8",
         "--locale=C.UTF-8", "--no-sync"],
        user,
    )
    port = _free_port()
    opts = (
        f"-c listen_addresses='' -c unix_socket_directories='{folder}' -c port={port} "
        "-c fsync=on -c max_connections=60 -c shared_buffers=64MB"
    )
    try:
        _run_as(
            [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(folder / "server.log"), "-o",
             opts, "-w", "-t", "60", "start"],
            user,
        )
    except subprocess.CalledProcessError as exc:
        log = (folder / "server.log").read_text(errors="replace") if (folder / "server.log").exists() else ""
        msg = f"PostgreSQL did not start: {exc.stderr}\n{log}"
        raise RuntimeError(msg) from None
    psql = [str(bindir.parent / "bin" / "psql")]
    if not Path(psql[0]).exists():
        psql = ["psql"]
    conn = ["-h", str(folder), "-p", str(port), "-U", db_user, "-v", "ON_ERROR_STOP=1", "-q"]
    _run_as([*psql, *conn, "-d", "postgres", "-c", f"CREATE DATABASE {DB_NAME}"], user)
    _run_as([*psql, *conn, "-d", DB_NAME, "-c", "CREATE EXTENSION postgis"], user)
    url = f"postgresql://{db_user}@/{DB_NAME}?host={folder}&port={port}"
    (folder / "url").write_text(url + "\n")
    return url, folder


def stop(folder: Path) -> None:
    """Stop the server of `folder` (immediate shutdown) and delete the folder."""
    bindir = find_bindir()
    data = folder / "data"
    if bindir is not None and data.exists():
        user = "postgres" if os.geteuid() == 0 else None
        with contextlib.suppress(subprocess.CalledProcessError):
            _run_as([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                    user)
    for _ in range(20):
        try:
            shutil.rmtree(folder)
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.1)
        else:
            return


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["start", "stop"])
    parser.add_argument("--dir", type=Path, default=None,
                        help="start: parent of the new folder; stop: the folder to remove")
    args = parser.parse_args()
    if args.command == "start":
        try:
            url, _folder = start(args.dir)
        except (RuntimeError, subprocess.CalledProcessError) as exc:
            print(getattr(exc, "stderr", "") or exc, file=sys.stderr)
            return 1
        print(url)
        return 0
    if args.dir is None:
        print("stop needs --dir", file=sys.stderr)
        return 2
    stop(args.dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
