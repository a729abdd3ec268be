"""`implements`: the planner's cached protocol check answers as `isinstance` does."""

from __future__ import annotations

import pytest

from strategies import (
    REGISTRY,
    SampleBound,
    StreamsTokens,
    TakesClientParams,
    implements,
)


@pytest.mark.parametrize("protocol", [SampleBound, StreamsTokens, TakesClientParams])
@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_implements_agrees_with_isinstance(name: str, protocol: type) -> None:
    strategy = REGISTRY[name]
    assert implements(strategy, protocol) is isinstance(strategy, protocol)
    assert implements(strategy, protocol) is isinstance(strategy, protocol)  # cached answer


def test_both_answers_occur() -> None:
    """The registry holds strategies on both sides of each check, so the test above can fail."""
    for protocol in (SampleBound, TakesClientParams):
        answers = {implements(s, protocol) for s in REGISTRY.values()}
        assert answers == {True, False}
