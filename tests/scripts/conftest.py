"""Load a file of ``scripts/`` as a module: they are run by path, not installed."""

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


@pytest.fixture(scope="module")
def load_script():
    """Return a loader of ``scripts/<name>.py``; its modules leave sys.modules after the module."""
    loaded = []

    def load(name):
        key = f"{name}_script"
        spec = importlib.util.spec_from_file_location(key, SCRIPTS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module  # dataclasses look their module up
        loaded.append(key)
        spec.loader.exec_module(module)
        return module

    yield load
    for key in loaded:
        del sys.modules[key]
