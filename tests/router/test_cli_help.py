"""Every `ttc-router` command's `--help` shows its option names whole at 80 columns."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from router.cli import app


def _commands(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    for name, sub in getattr(group, "commands", {}).items():
        yield from _commands(sub, (*path, name))


def _command(path: tuple[str, ...]) -> Any:
    cmd: Any = typer.main.get_command(app)
    for name in path:
        cmd = cmd.commands[name]
    return cmd


PATHS = list(_commands(typer.main.get_command(app)))


def test_walks_the_nested_commands() -> None:
    assert ("calibrate",) in PATHS and ("policy", "explain") in PATHS
    assert ("classifier", "train") in PATHS


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "ttc-router")
def test_help_keeps_option_names_whole(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "80"}, terminal_width=80)
    assert result.exit_code == 0, result.output
    assert "…" not in result.output
    for param in _command(path).params:
        for opt in param.opts:
            if opt.startswith("--"):
                assert opt in result.output, (opt, result.output)
