"""The shared vocabulary: leaf modules that import nothing of ours.

    router.vocab.upstream          Message, Usage, Capabilities, Price, GenerationRequest,
                                   Generation, the `Upstream` protocol
    router.vocab.errors            the `RouterError` tree
    router.vocab.prompting         prompt formats for raw-completion models
    router.vocab.anthropic_limits  the Anthropic API's own limits
    router.vocab.metrics           what lower layers record, as protocols

`classifier`, `strategies` and `policies` import these and nothing else of `router`; the
import contract in `pyproject.toml` (checked by `tests/test_layers.py`) keeps it so. Importing
this package imports none of the service.
"""
