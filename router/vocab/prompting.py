"""How a conversation becomes a raw prompt for a completion-only upstream, and where its
answer ends.

Chat upstreams get messages; a model served only through `/v1/completions` (a base model, or a
step-level search continuing a partial solution) gets one string. A `PromptFormat` renders the
conversation and names the stop sequences that end the model's turn, so a base model neither
invents the next `User:` turn nor runs on past its answer. Formats are registered by name in
`PROMPT_FORMATS`; a policy model picks one with `prompt_format`.

- `transcript` (default for remote servers): a lone user message is sent verbatim; anything
  else is a `User:` / `Assistant:` transcript ending in `Assistant:`. Generation stops before
  the model writes the next turn's label.
- `qa` (default for the embedded base model): the answer is one line. A lone user message that
  ends open (`56+27=`, `...\\nA:`, `The capital of France is`) is continued verbatim, so
  few-shot prompts work; a question or instruction (ending in `.`, `?` or `!`), a system
  message or several turns become a `Q:` / `A:` transcript ending in `A:`, the format base
  models have seen most. Generation stops at the end of the line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from router.vocab.upstream import Message

SENTENCE_END = (".", "?", "!")


@dataclass(frozen=True)
class PromptFormat:
    name: str
    system: str  # turn labels; an empty system label makes the system text a preamble
    user: str
    assistant: str
    separator: str  # between turns
    stop: tuple[str, ...]  # end of the model's turn
    open_prompts_only: bool  # a lone user message goes verbatim only when it ends open

    def verbatim(self, messages: Sequence[Message]) -> bool:
        """Is this a single continuation prompt that goes to the model as it is?"""
        if len(messages) != 1 or messages[0].role != "user":
            return False
        if not self.open_prompts_only:
            return True
        return not messages[0].content.rstrip().endswith(SENTENCE_END)

    def render(self, messages: Sequence[Message]) -> str:
        if self.verbatim(messages):
            return messages[0].content
        parts = []
        for m in messages:
            label = {"system": self.system, "user": self.user}.get(m.role, self.assistant)
            parts.append(f"{label} {m.content.strip()}" if label else m.content.strip())
        return self.separator.join([*parts, self.assistant])


PROMPT_FORMATS: dict[str, PromptFormat] = {
    "transcript": PromptFormat(
        name="transcript",
        system="System:",
        user="User:",
        assistant="Assistant:",
        separator="\n\n",
        stop=("\nUser:", "\nSystem:", "\nAssistant:"),
        open_prompts_only=False,
    ),
    "qa": PromptFormat(
        name="qa",
        system="",
        user="Q:",
        assistant="A:",
        separator="\n",
        stop=("\n",),
        open_prompts_only=True,
    ),
}
DEFAULT_FORMAT = "transcript"


def prompt_format(name: str | None) -> PromptFormat:
    """The registered format `name` (the default when None)."""
    return PROMPT_FORMATS[name or DEFAULT_FORMAT]


__all__ = ["DEFAULT_FORMAT", "PROMPT_FORMATS", "PromptFormat", "prompt_format"]
