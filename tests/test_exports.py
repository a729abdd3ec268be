"""Every public name each package exports through `__all__` imports."""

import importlib

import pytest

PACKAGES = [
    "router",
    "router.upstreams",
    "classifier",
    "strategies",
    "policies",
    "router.calibrate",
]


@pytest.mark.parametrize("package", PACKAGES)
def test_exported_names_import(package: str) -> None:
    module = importlib.import_module(package)
    names = module.__all__
    assert names, f"{package} exports nothing"
    missing = [n for n in names if not hasattr(module, n)]
    assert not missing, f"{package}.__all__ names that do not exist: {missing}"
