"""The README's "Talk to it" examples, run as written against the embedded defaults.

The snippets are read from README.md itself, so the README cannot drift from what the router
does: each Python snippet runs (with the server's address in place of 127.0.0.1:8080) and must
print exactly the `text` block that follows it; a line of that block that starts with a tier
name shows an example routing decision, so it must name a tier and that tier's strategy in the
default policy. The shell examples (`curl`, `ttc-router route`) run too and must succeed.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.stub_upstream import ServerThread
from classifier.base import TIERS
from policies.loader import load_policy

pytestmark = pytest.mark.model

README = Path(__file__).resolve().parent.parent / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.S | re.M)


@dataclass(frozen=True)
class Snippet:
    code: str
    expected: str | None  # the `text` block after a Python snippet


def talk_to_it() -> tuple[list[Snippet], list[str]]:
    """(Python snippets with their printed output, shell commands) of "### Talk to it"."""
    text = README.read_text("utf-8")
    section = text.split("### Talk to it", 1)[1].split("\n## ", 1)[0]
    blocks = [(m.group(1), m.group(2)) for m in FENCE.finditer(section)]
    snippets: list[Snippet] = []
    commands: list[str] = []
    for i, (lang, body) in enumerate(blocks):
        if lang == "python":
            following = blocks[i + 1] if i + 1 < len(blocks) else ("", "")
            snippets.append(Snippet(body, following[1] if following[0] == "text" else None))
        elif lang == "sh":
            joined = re.sub(r"\n(?=\s+\")", " ", body)  # a curl -d '{...}' spread over lines
            commands += [c for c in re.split(r"\n(?=\S)", joined) if c.strip()]
    return snippets, commands


def test_readme_snippets_are_found() -> None:
    snippets, commands = talk_to_it()
    assert len(snippets) >= 2 and all(s.expected for s in snippets), snippets
    assert any("openai" in s.code for s in snippets)
    assert any("anthropic" in s.code for s in snippets)
    assert all("print(" in s.code for s in snippets)
    assert any(c.startswith("curl") for c in commands)
    assert any(c.startswith("ttc-router route") for c in commands)


@pytest.fixture(scope="module")
def readme_router(
    redis_url: str, model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The router as `ttc-router serve` runs it: packaged policy, classifier, local model."""
    from router.app import create_app
    from router.settings import Settings

    settings = Settings(
        redis_url=redis_url,
        redis_prefix=f"ttc-test-{uuid.uuid4().hex[:8]}:",
        data_dir=model_dir,
        local_parallel=8,
        local_ctx_per_slot=1024,
    )
    with ServerThread(create_app(settings)) as server:
        yield server.url


def _check_line(expected: str, printed: str) -> None:
    words = expected.split()
    if words and words[0] in {t.value for t in TIERS}:  # an example routing decision
        tier, strategy = printed.split()
        policy = load_policy().policy
        planned = policy.tiers[next(t for t in TIERS if t.value == tier)].strategy
        # a task-type override (policy `tasks:`) may replace the tier's strategy
        overrides = {o.strategy for o in policy.tasks.values() if o.strategy}
        assert strategy in {planned, *overrides}, (tier, strategy)
    else:
        assert printed == expected


@pytest.mark.parametrize("index", range(len(talk_to_it()[0])))
def test_python_snippet_prints_what_the_readme_says(readme_router: str, index: int) -> None:
    snippet = talk_to_it()[0][index]
    code = snippet.code.replace("http://127.0.0.1:8080", readme_router)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, f"README.md snippet {index}", "exec"), {"__name__": "readme"})
    assert snippet.expected is not None
    expected = snippet.expected.rstrip("\n").split("\n")
    printed = out.getvalue().rstrip("\n").split("\n")
    assert len(printed) == len(expected), (printed, expected)
    for want, got in zip(expected, printed, strict=True):
        _check_line(want, got)


def test_shell_examples_succeed(readme_router: str) -> None:
    _, commands = talk_to_it()
    host = readme_router.removeprefix("http://")
    for command in commands:
        if command.startswith("ttc-router"):
            args = shlex.split(command)[1:]
            cli = [sys.executable, "-c", "from router.cli import app; app()", *args]
            done = subprocess.run(cli, capture_output=True, text=True, timeout=120, check=False)
            assert done.returncode == 0, done.stderr
            assert json.loads(done.stdout)["tier"] in {t.value for t in TIERS}
            continue
        if shutil.which("curl") is None:
            pytest.skip("curl is not installed on this machine")
        args = shlex.split(command.replace("localhost:8080", host))
        done = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        # text mode turns the header block's CRLFs into newlines
        head, _, body = done.stdout.rpartition("\n\n") if "-D" in args else ("", "", done.stdout)
        payload = json.loads(body)
        assert "error" not in payload, payload
        if "/v1/chat/completions" in command:
            assert head.startswith("HTTP/1.1 200") and "x-ttc-tier" in head
            assert payload["choices"][0]["message"]["content"].strip() == "Paris"
        else:
            assert payload["tier"] in {t.value for t in TIERS}


def test_streamed_answer_matches_the_unstreamed_one(readme_router: str) -> None:
    """The streaming path formats the prompt and trims the answer as `sample()` does."""
    import openai

    client = openai.OpenAI(base_url=f"{readme_router}/v1", api_key="unused", max_retries=0)
    chunks = client.chat.completions.create(
        model="ttc-easy",
        max_tokens=16,
        stream=True,
        messages=[{"role": "user", "content": "What is the capital of France?"}],
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Paris"
