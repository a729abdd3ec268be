"""The classification window and the cheap text features the head sees beside the embedding.

Window (`classification_text`): the first `SYSTEM_CHARS` characters of the system prompt(s),
then the last user message; a user message longer than `USER_CHARS` keeps its first and last
`USER_CHARS // 2` characters joined by " … ", since long prompts put context first and the
question last. The embedder truncates again at its own token limit (256 word pieces for
MiniLM); the features are computed on the window.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from router.vocab.upstream import Message

SYSTEM_CHARS = 200
USER_CHARS = 2000
MAX_TEXT_CHARS = SYSTEM_CHARS + USER_CHARS + 8

FEATURE_NAMES: tuple[str, ...] = (
    "log_chars",
    "log_words",
    "digit_share",
    "latex_markers",
    "code_markers",
    "questions",
    "lines",
    "upper_start",
)

_LATEX = re.compile(r"\$|\\[a-zA-Z]+|\^|_\{")
_CODE = re.compile(r"```|\bdef |\bclass |\breturn\b|[{};]|==|\bint\b|Input|Output")


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]} … {text[-half:]}"


def window(text: str) -> str:
    """Bound a raw text to the classification window (for `classify(texts)` callers)."""
    return _clip(text, MAX_TEXT_CHARS)


def classification_text(messages: Sequence[Message]) -> str:
    """System prompt (truncated) + last user message (head and tail kept). Never raises."""
    try:
        system = " ".join(m.content for m in messages if m.role == "system" and m.content)
        users = [m.content for m in messages if m.role == "user"]
        last = users[-1] if users else (messages[-1].content if messages else "")
        parts = []
        if system.strip():
            parts.append(system.strip()[:SYSTEM_CHARS])
        parts.append(_clip(str(last).strip(), USER_CHARS))
        return "\n\n".join(p for p in parts if p)
    except Exception:  # a malformed message list still gets classified (as empty text)
        return ""


def text_features(texts: Sequence[str]) -> npt.NDArray[np.float32]:
    """One row of `FEATURE_NAMES` per text (unscaled; the head standardises them)."""
    import numpy as np

    out = np.zeros((len(texts), len(FEATURE_NAMES)), dtype=np.float32)
    for i, t in enumerate(texts):
        out[i] = feature_row(t)
    return out


def feature_row(t: str) -> tuple[float, ...]:
    """`FEATURE_NAMES` of one text, as floats."""
    return (
        math.log1p(len(t)),
        math.log1p(len(t.split())),
        sum(map(str.isdigit, t)) / max(len(t), 1),
        math.log1p(len(_LATEX.findall(t))),
        math.log1p(len(_CODE.findall(t))),
        math.log1p(t.count("?")),
        math.log1p(t.count("\n")),
        1.0 if t[:1].isupper() else 0.0,
    )
