"""Thinking separated from the answer, whatever shape the upstream gives it.

Shapes: inline tags (`<think>reasoning</think>answer`), a chat template that opens `<think>` in
the prompt (the output is `reasoning</think>answer`), a separate field (`reasoning_content` from
vLLM/DeepSeek-style servers, Anthropic `thinking` blocks; these arrive as `Choice.reasoning` and
never touch the text). `split_thinking` handles the first two; `ThinkFilter` does the same on a
token stream; `reasoning_share` estimates how many of a choice's generated tokens were thinking
when the upstream does not say (by character share), so they are counted as reasoning tokens.
"""

from __future__ import annotations

THINK_START = "<think>"
THINK_END = "</think>"

# Our wording of the usual reasoning-model instruction (an option of the `thinking` strategy).
THINKING_PROMPT = (
    "Before answering, reason through the problem step by step inside {start} ... {end}. "
    "After {end}, write only the final answer."
)


def split_thinking(
    text: str, start: str = THINK_START, end: str = THINK_END
) -> tuple[str | None, str]:
    """(reasoning or None, answer). Text that opens with `start` and never closes it is all
    reasoning (cut at the budget): the answer is empty."""
    stripped = text.lstrip()
    opened = stripped.startswith(start)
    body = stripped[len(start) :] if opened else text
    if end in body:
        reasoning, answer = body.split(end, 1)
        return reasoning.strip(), answer.lstrip()
    if opened:
        return body.strip(), ""
    return None, text


def reasoning_share(answer: str, reasoning: str | None, tokens: int) -> int:
    """Tokens of a choice's `tokens` that were thinking, by character share."""
    if not reasoning or tokens <= 0:
        return 0
    total = len(reasoning) + len(answer)
    return round(tokens * len(reasoning) / total) if total else 0


class ThinkFilter:
    """Streams the answer only. `template=True` (the model's template opens the thinking in
    the prompt): everything up to the end tag is held back; if the stream ends without one,
    what was held is the answer. Otherwise only output that opens with the start tag is held,
    up to the end tag."""

    def __init__(
        self, *, template: bool = False, start: str = THINK_START, end: str = THINK_END
    ) -> None:
        self.start, self.end = start, end
        self.held = ""
        self.state = "hold" if template else "sniff"  # sniff | hold | think | pass
        self.reasoning = ""
        self.strip = False

    def feed(self, text: str) -> str:
        if self.state == "pass":
            if self.strip:  # whitespace right after the end tag is not part of the answer
                text = text.lstrip()
                self.strip = not text
            return text
        self.held += text
        if self.state == "sniff":
            head = self.held.lstrip()
            if head.startswith(self.start):
                self.state = "think"
            elif self.start.startswith(head):
                return ""  # could still become the start tag
            else:
                self.state = "pass"
                out, self.held = self.held, ""
                return out
        if self.end in self.held:
            reasoning, answer = self.held.split(self.end, 1)
            self.reasoning = reasoning.replace(self.start, "", 1).strip()
            self.state, self.held = "pass", ""
            answer = answer.lstrip()
            self.strip = not answer
            return answer
        return ""

    def finish(self) -> str:
        """What is still held when the stream ends: the answer, unless it was thinking."""
        out, self.held = self.held, ""
        if self.state == "think":
            self.reasoning = out.replace(self.start, "", 1).strip()
            return ""
        return out if self.state in ("hold", "sniff") else ""


__all__ = [
    "THINKING_PROMPT",
    "THINK_END",
    "THINK_START",
    "ThinkFilter",
    "reasoning_share",
    "split_thinking",
]
