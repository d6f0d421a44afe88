"""Each component package imports alone, without the engine, methods, models or data."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("ssdkd.engine", "ssdkd.methods", "ssdkd.models", "ssdkd.data", "ssdkd.cli")


def _loaded_after(statement: str) -> list[str]:
    """The ``ssdkd`` modules a fresh interpreter holds after running ``statement``."""
    code = (
        f"{statement}\n"
        "import json, sys\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('ssdkd'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded: list[str] = json.loads(done.stdout.splitlines()[-1])
    return loaded


@pytest.mark.parametrize("package", ["sampling", "hooks", "losses", "generators"])
def test_component_package_imports_without_the_engine(package: str) -> None:
    """Prevents ``from ssdkd.sampling import PriorityBuffer`` loading the whole library.

    ``ssdkd/__init__.py`` used to import the engine eagerly, so importing one component
    pulled in the engine and every method.
    """
    loaded = _loaded_after(f"import ssdkd.{package}")
    assert f"ssdkd.{package}" in loaded
    heavy = [name for name in loaded if name.startswith(HEAVY)]
    assert heavy == []


def test_distill_is_imported_on_first_use() -> None:
    """``ssdkd.distill`` still works as an attribute, loading the engine only then."""
    assert not any(m.startswith(HEAVY) for m in _loaded_after("import ssdkd"))
    assert "ssdkd.engine.distill" in _loaded_after("import ssdkd; ssdkd.distill")
    assert "ssdkd.engine.distill" in _loaded_after("from ssdkd import distill")


def test_unknown_attribute_is_an_attribute_error() -> None:
    import ssdkd

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        ssdkd.nope  # noqa: B018
    assert "distill" in dir(ssdkd)
