"""Command line: ``riskmap map | summary | export | validate | import | undo | serve | db …``.

Thin click commands over the library. Any `RiskmapError` becomes one clear line on stderr
and exit code 2 (no traceback); other exceptions are bugs and crash loudly.

This module holds the ``main`` group (the ``riskmap`` script's entry point), the shared
options and helpers; the commands live in one module per group and register themselves on
import: `riskmap.cli.lists` (map, summary, export, validate), `riskmap.cli.importing`
(import, undo), `riskmap.cli.closure` (status, progress, targets, completeness, diff),
`riskmap.cli.warning` (预警), `riskmap.cli.paper` (report, card, poster) and
`riskmap.cli.admin` (editors, serve, db, history). Each command imports its library lazily
so ``riskmap --help`` stays fast.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from riskmap.errors import RiskmapError
from riskmap.settings import Settings

if TYPE_CHECKING:
    from riskmap.project import Project

EXIT_USAGE = 2


class RiskmapClickError(click.ClickException):
    """A `RiskmapError` shown as one line, exit code 2."""

    exit_code = EXIT_USAGE

    def show(self, file: Any = None) -> None:  # noqa: ANN401 - click's signature
        """Print ``错误：<message>`` to stderr."""
        click.echo(f"错误：{self.format_message()}", err=True, file=file)


class InputFile(click.Path):
    """An existing, readable file given on the command line; a missing one is one Chinese line.

    click's own check prints an English usage block ("Invalid value for 'FILE'…"); county
    staff get ``错误：找不到文件 …`` instead, with exit code 2 like every other input error.
    """

    def __init__(self) -> None:
        super().__init__(dir_okay=False, path_type=Path)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:  # noqa: ANN401 - click's signature
        """Return the path, or raise `RiskmapClickError` naming it and what is wrong."""
        path = Path(value)
        if not path.exists():
            msg = f"找不到文件：{path}（请检查路径和文件名）"
            raise RiskmapClickError(msg)
        if path.is_dir():
            msg = f"{path} 是文件夹，应为一个文件"
            raise RiskmapClickError(msg)
        if not os.access(path, os.R_OK):
            msg = f"无法读取文件：{path}（没有读取权限）"
            raise RiskmapClickError(msg)
        return super().convert(value, param, ctx)


class RiskmapGroup(click.Group):
    """Group that turns `RiskmapError` from any command into `RiskmapClickError`."""

    def invoke(self, ctx: click.Context) -> Any:  # noqa: ANN401 - click's signature
        """Run the command, converting domain errors."""
        try:
            return super().invoke(ctx)
        except RiskmapError as exc:
            raise RiskmapClickError(str(exc)) from None


overwrite_opt = click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
pdf_out_opt = click.option(
    "--out",
    "out_text",
    required=True,
    help="Output .pdf, or a folder (existing, or with a trailing /).",
)
townships_opt = click.option(
    "--townships",
    "townships_path",
    type=InputFile(),
    help="Official township boundary file (乡镇界) replacing the approximate partition.",
)


def _settings(townships_path: Path | None) -> Settings:
    if townships_path is not None:
        return Settings.from_env(townships_path=townships_path)
    return Settings.from_env()


def _load(townships_path: Path | None) -> Project:
    from riskmap.project import load_project  # noqa: PLC0415 - keep `--help` fast

    return _warned(load_project, _settings(townships_path))


def _warned(fn: Any, *args: Any) -> Any:  # noqa: ANN401 - passes any call through
    """Call `fn`, showing each warning it raises as one plain ``警告:`` line on stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn(*args)
    for w in caught:
        click.echo(f"警告: {w.message}", err=True)
    return result


def _mark_overdue(project: Project, layers: dict) -> dict:
    """Mark 逾期 features for the map (outlined), as of today."""
    from riskmap.lifecycle import lifecycle_spec  # noqa: PLC0415
    from riskmap.progress import with_overdue  # noqa: PLC0415

    return with_overdue(layers, lifecycle_spec(project.catalog))


def _out_target(text: str, extensions: tuple[str, ...]) -> tuple[Path, bool]:
    """
    Resolve ``--out``: ``(path, is_folder)``.

    A folder is an existing directory, any text ending in ``/``, or a name without an
    extension that does not exist yet (every file riskmap writes has one, so ``--out lists``
    means the folder ``lists/``, never an extension-less file named ``lists``); a missing
    folder is created. A file name must end in one of `extensions` (``.zip`` for
    ``export --all``, ``.xlsx`` for ``--format xlsx``...): a ZIP named ``清单.xlsx`` would
    not open.

    Raises
    ------
    RiskmapError
        The folder cannot be created, or the file name has another extension.
    """
    path = Path(text)
    folder = text.endswith(("/", os.sep)) or path.is_dir()
    if not folder and not path.suffix and not path.exists():
        folder = True
    if folder:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            msg = f"{text}: 无法创建输出文件夹 (cannot create folder): {exc.strerror or exc}"
            raise RiskmapError(msg) from None
        return path, True
    if path.suffix.lower() not in extensions:
        want = " 或 ".join(extensions)
        msg = (
            f"{text}: 输出文件的扩展名应为 {want}（写到文件夹请以 / 结尾，如 {path.stem}/）"
            f" (extension should be {'/'.join(extensions)})"
        )
        raise RiskmapError(msg)
    return path, False


def _check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not overwrite:
        msg = f"{out} 已存在；加 --overwrite 覆盖 (file exists; use --overwrite)"
        raise RiskmapError(msg)


@click.group(cls=RiskmapGroup)
@click.version_option(package_name="riskmap")
def main() -> None:
    """Riskmap — 城口县安全风险点位“一张图” (county risk points on one map)."""


def _shell_user() -> str:
    """Return the account running the CLI (the editor on the county server), or ``""``."""
    import getpass  # noqa: PLC0415

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no USER/LOGNAME and no passwd entry (containers)
        return ""


user_opt = click.option(
    "--user", default=_shell_user, help="Editor recorded in the audit log (default: login name)."
)


# The commands register themselves on `main` when their modules are imported.
from riskmap.cli import admin, closure, importing, lists, paper, warning  # noqa: E402, F401
from riskmap.cli.lists import data_flags, export  # noqa: E402, F401 - public names kept here
