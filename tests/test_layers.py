"""The imports show the layers (STYLE 14): the import contract in pyproject.toml holds, the
shared vocabulary `router.vocab` imports nothing of ours, and importing it imports none of the
service. Also lint and type checks, so the README's test command fails on them."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).parents[1]
PACKAGES = ("router", "policies", "strategies", "classifier")


def run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          check=False)


def test_import_contracts_are_kept() -> None:
    out = run(sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command"
              " as c; sys.exit(c(['--no-cache']))")
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "0 broken" in out.stdout


def test_vocabulary_imports_nothing_of_ours() -> None:
    graph = grimp.build_graph(*PACKAGES)
    for module in graph.find_descendants("router.vocab") | {"router.vocab"}:
        ours = {m for m in graph.find_modules_directly_imported_by(module)
                if m.split(".")[0] in PACKAGES}
        assert all(m.startswith("router.vocab") for m in ours), (module, ours)


def test_importing_the_vocabulary_imports_none_of_the_service() -> None:
    code = ("import sys, router.vocab.upstream, router.vocab.errors, router.vocab.metrics, "
            "router.vocab.prompting, router.vocab.anthropic_limits; print(sorted(m for m in "
            "sys.modules if m.split('.')[0] in ('router', 'policies', 'strategies', "
            "'classifier')))")
    out = run(sys.executable, "-c", code)
    assert out.returncode == 0, out.stderr
    loaded = ast.literal_eval(out.stdout)
    assert loaded and all(m in ("router", "router.vocab") or m.startswith("router.vocab.")
                          for m in loaded), loaded


def test_ruff_is_clean() -> None:
    out = run(sys.executable, "-m", "ruff", "check", ".")
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]


def test_mypy_strict_is_clean() -> None:
    """mypy --strict (the config in pyproject.toml) over ~130 modules: a minute or two."""
    out = run(sys.executable, "-m", "mypy", timeout=1200)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
