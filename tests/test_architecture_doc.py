"""docs/architecture.md stays true: every module it names exists and imports."""

import importlib
import re
from pathlib import Path

import pytest

import prefopt

DOC = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"
NAMED = sorted(set(re.findall(r"`(prefopt(?:\.\w+)*)`", DOC.read_text())))
PACKAGES = sorted(
    p.name for p in Path(prefopt.__file__).parent.iterdir() if (p / "__init__.py").exists()
)


def test_the_doc_names_every_package_of_prefopt():
    assert PACKAGES and set(f"prefopt.{name}" for name in PACKAGES) <= {
        ".".join(module.split(".")[:2]) for module in NAMED
    }


@pytest.mark.parametrize("module", NAMED)
def test_every_named_module_imports(module):
    assert importlib.import_module(module).__name__ == module
