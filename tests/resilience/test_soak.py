"""Load and soak through the router against the stub (bench/soak.py, own processes).

Default suite: `bench/soak.py --quick` (30 s at concurrency 8, the first 20 s warm-up). Full
run (3 minutes at 16):
`pytest -m slow tests/resilience/test_soak.py` or `python bench/soak.py --check`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO


def soak(tmp_path: Path, *args: str, timeout_s: float) -> dict[str, Any]:
    out = tmp_path / "soak.json"
    proc = subprocess.run([sys.executable, "bench/soak.py", *args, "--json", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=timeout_s)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    print(proc.stdout)
    return dict(json.loads(out.read_text()))


def check(result: dict[str, Any], requests: int) -> None:
    assert result["errors"] == 0, result
    assert result["requests"] >= requests, result
    assert set(result["by_kind"]) == {"chat", "stream", "repeat", "messages"}
    assert 0 < result["p50_ms"] <= result["p99_ms"] <= result["max_ms"]
    assert result["rss_growth_pct"] < 5.0, result


def test_quick_soak(tmp_path: Path) -> None:
    check(soak(tmp_path, "--quick", timeout_s=240), requests=200)


@pytest.mark.slow
def test_full_soak(tmp_path: Path) -> None:
    check(soak(tmp_path, "--check", timeout_s=600), requests=2000)
