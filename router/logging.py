"""structlog configuration: JSON (or console) lines with request id and tenant from contextvars."""

from __future__ import annotations

import hashlib
import logging
import sys
from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:
    from router.planning import Call


def configure_logging(level: str = "info", fmt: str = "json") -> None:
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=numeric, stream=sys.stderr, format="%(message)s")


_requests = structlog.get_logger("router.pipeline")


def log_request(call: Call, *, log_prompts: bool) -> None:
    """The `request_received` line. Prompts are logged only with TTC_LOG_PROMPTS; otherwise a
    hash and a length. Costs nothing (no join, no hash) when the info level is off."""
    if not _requests.is_enabled_for(logging.INFO):
        return
    text = "\n".join(f"{m.role}: {m.content}" for m in call.messages)
    fields: dict[str, Any] = {
        "endpoint": call.endpoint,
        "model": call.model,
        "messages": len(call.messages),
        "prompt_sha256": hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16],
        "prompt_chars": len(text),
        "stream": call.stream,
    }
    if log_prompts:
        fields["prompt"] = text
    _requests.info("request_received", **fields)
