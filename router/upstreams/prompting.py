"""Prompt formats (`router.vocab.prompting`), for the service's own modules."""

from router.vocab.prompting import (
    DEFAULT_FORMAT,
    PROMPT_FORMATS,
    PromptFormat,
    prompt_format,
)

__all__ = [
    "DEFAULT_FORMAT",
    "PROMPT_FORMATS",
    "PromptFormat",
    "prompt_format",
]
