"""Request bodies of the public API: OpenAI Chat Completions and Anthropic Messages.

Types are checked strictly enough that a wrong type is a 400 naming the field; unknown extra
fields are accepted and ignored (clients send many optional fields we do not use).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from router.unsupported import text_parts_only
from router.upstreams.base import Message


def _valid_unicode(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text must be valid Unicode (no lone surrogate escapes)") from None
    return value


Text = Annotated[str, AfterValidator(_valid_unicode)]


class TextPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["text"]
    text: Text


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant"]
    content: Text | list[TextPart] | None = None
    name: str | None = None

    @field_validator("content", mode="before")
    @classmethod
    def _text_only(cls, value: Any) -> Any:
        return text_parts_only(value)

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


PositiveTokens = Annotated[int, Field(ge=1)]


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str  # required, as by the OpenAI API (see README "API")
    messages: list[ChatMessage] = Field(min_length=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: PositiveTokens | None = None
    max_completion_tokens: PositiveTokens | None = None
    n: int = Field(1, ge=1)
    stop: Text | list[Text] | None = None
    seed: int | None = None
    user: str | None = None
    reasoning_effort: Literal["minimal", "low", "medium", "high"] | None = None
    metadata: dict[str, str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None

    @field_validator("stop")
    @classmethod
    def _stop_list(cls, v: str | list[str] | None) -> str | list[str] | None:
        if isinstance(v, list) and len(v) > 4:
            raise ValueError("at most 4 stop sequences")
        return v

    def stops(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)

    def token_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    def to_messages(self) -> tuple[Message, ...]:
        out: list[Message] = []
        for m in self.messages:
            role = "system" if m.role == "developer" else m.role
            out.append(Message(role=role, content=m.text()))
        return tuple(out)


class AnthropicTextBlock(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["text"]
    text: Text


class AnthropicMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["user", "assistant"]
    content: Text | list[AnthropicTextBlock]

    @field_validator("content", mode="before")
    @classmethod
    def _text_only(cls, value: Any) -> Any:
        return text_parts_only(value, "content block")

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(b.text for b in self.content)


class ThinkingConfig(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["enabled", "disabled", "adaptive"]
    budget_tokens: int | None = Field(None, ge=1)


class MessagesRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str  # required, as by the Anthropic API
    messages: list[AnthropicMessage] = Field(min_length=1)
    max_tokens: PositiveTokens
    system: Text | list[AnthropicTextBlock] | None = None
    temperature: float | None = Field(None, ge=0, le=1)
    top_p: float | None = Field(None, gt=0, le=1)
    stop_sequences: list[Text] | None = None
    thinking: ThinkingConfig | None = None
    metadata: dict[str, Any] | None = None
    stream: bool = False

    @field_validator("system", mode="before")
    @classmethod
    def _text_system(cls, value: Any) -> Any:
        return text_parts_only(value, "system block")

    def to_messages(self) -> tuple[Message, ...]:
        out: list[Message] = []
        if self.system:
            system = (
                self.system
                if isinstance(self.system, str)
                else "".join(b.text for b in self.system)
            )
            out.append(Message(role="system", content=system))
        out.extend(Message(role=m.role, content=m.text()) for m in self.messages)
        return tuple(out)


class RouteRequest(BaseModel):
    """`POST /v1/route`: either chat `messages` or a plain `input` text."""

    model_config = ConfigDict(extra="forbid")
    model: str = "ttc-auto"
    messages: list[ChatMessage] | None = Field(None, min_length=1)
    input: Text | None = Field(None, min_length=1)

    def to_messages(self) -> tuple[Message, ...]:
        if self.messages:
            return ChatCompletionRequest(model=self.model, messages=self.messages).to_messages()
        return (Message(role="user", content=self.input or ""),)
