"""Every name `policies` exports imports."""

import policies


def test_exported_names_import() -> None:
    for name in policies.__all__:
        assert getattr(policies, name) is not None, name
