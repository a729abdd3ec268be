"""In-process implementations of our seams for unit tests (no SDK patching)."""

from __future__ import annotations

from dataclasses import dataclass

from router.upstreams.base import GenerationRequest
from router.upstreams.scripted import Handler
from router.upstreams.scripted import ScriptedUpstream as _Scripted


@dataclass
class ScriptedUpstream(_Scripted):
    """The package's scripted upstream (`router.upstreams.scripted`) with a fixed 10-token
    prompt, which the usage assertions of these tests count on."""

    def prompt_tokens(self, request: GenerationRequest) -> int:
        return 10


__all__ = ["Handler", "ScriptedUpstream"]
