"""Request features the router does not serve: refused by name, never dropped silently.

- Content parts other than text (images, audio, files; Anthropic images, documents, tool
  blocks): the strategies compare and verify text answers, and the upstream a tier picks may
  not read images. A request carrying one gets 400 naming the part and its type.
- Tool calling (`tools`, `tool_choice`, the legacy `functions` / `function_call`; Anthropic
  `tools` / `tool_choice`): sampling, voting and search would select among tool calls as if
  they were answers. A request that asks for tools gets 400 naming the field; a value that
  asks for none (`tools: []`, `tool_choice: "none"`) is accepted.

Imports only pydantic and `router.errors`, so the request schemas can use it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic_core import PydanticCustomError

from router.errors import InvalidRequest

OPENAI_TOOL_FIELDS = ("tools", "tool_choice", "functions", "function_call")
ANTHROPIC_TOOL_FIELDS = ("tools", "tool_choice")


def text_parts_only(value: Any, kind: str = "content part") -> Any:
    """A `mode="before"` validator for message content: refuse non-text parts by type."""
    if not isinstance(value, list):
        return value
    for i, part in enumerate(value):
        part_type = part.get("type") if isinstance(part, Mapping) else None
        if isinstance(part_type, str) and part_type != "text":
            raise PydanticCustomError(
                "unsupported_content",
                "{kind} {index} has type '{part_type}': only text is supported "
                "(send images, audio, files and tool blocks to a model directly)",
                {"kind": kind, "index": i, "part_type": part_type},
            )
    return value


def refuse_tools(extra: Mapping[str, Any] | None, fields: Iterable[str]) -> None:
    """400 naming the field when a request asks for tool use."""
    field = requested_tool_field(extra, fields)
    if field is not None:
        raise InvalidRequest(
            f"'{field}' is not supported: the router selects among text answers and does not "
            "run tool calls; send tool-using requests to a model directly",
            param=field,
        )


def requested_tool_field(extra: Mapping[str, Any] | None, fields: Iterable[str]) -> str | None:
    """The first of `fields` in the request's extra fields that asks for tool use."""
    for field in fields:
        value = (extra or {}).get(field)
        if value is None or value == [] or value == {} or value == "none":
            continue
        if isinstance(value, Mapping) and value.get("type") == "none":
            continue
        return field
    return None


__all__ = [
    "ANTHROPIC_TOOL_FIELDS",
    "OPENAI_TOOL_FIELDS",
    "refuse_tools",
    "requested_tool_field",
    "text_parts_only",
]
