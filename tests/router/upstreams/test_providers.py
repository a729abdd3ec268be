"""The provider registry: every provider a policy may name has a builder, and nothing else."""

from __future__ import annotations

import typing

from policies.schema import ModelSpec
from router.upstreams.pool import PROVIDERS


def test_every_policy_provider_has_a_builder() -> None:
    names = typing.get_args(ModelSpec.model_fields["provider"].annotation)
    assert names and set(names) == set(PROVIDERS)
