"""Pytest configuration for the whole repository: tests/, and the docstring examples of lmu/ and plugins/.

Tests run under pytest-xdist with one worker per core: each worker keeps its math libraries to one thread, or the
threads of the workers fight over the cores (torch's OpenMP threads spin, and small ops slow down tenfold).

The examples in a plugin's docstrings run like lmu's own (``--doctest-modules``); a plugin whose framework is not
installed here has its modules reported as skipped, with the missing modules named, instead of failing to import.
What a plugin needs is what its backend declares (``requires``), read without importing the framework.
"""

import importlib
import os
import pathlib

import pytest

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

collect_ignore = ["lmu/__main__.py", "docs/conf.py", "benchmarks", "examples",
                  # deprecated aliases of lmu 0.4's module names (importing them warns)
                  "plugins/lmu_nengo/learning.py", "plugins/lmu_nengo_dl/training.py"]

_PLUGINS = pathlib.Path(__file__).resolve().parent / "plugins"
#: plugin package → the backend class whose ``requires`` says what its modules need
_BACKENDS = {"lmu_torch": "TorchBackend", "lmu_keras": "KerasBackend", "lmu_nengo": "NengoBackend",
             "lmu_loihi": "LoihiBackend", "lmu_nengo_dl": "NengoDLBackend"}


def _missing(package: str) -> list[str]:
    from lmu.backend import missing_modules

    backend = getattr(importlib.import_module(package), _BACKENDS[package])
    missing = missing_modules(backend.requires)
    if package == "lmu_nengo_dl" and not missing:
        reason = backend().unavailable()  # installed, but nengo-dl cannot import with this TensorFlow
        missing = [reason] if reason else []
    return missing


class _Skipped(pytest.File):
    """A plugin module whose framework is missing: collected as one skip naming what is missing."""

    def collect(self):
        pytest.skip(self.reason)


@pytest.hookimpl(hookwrapper=True)
def pytest_collect_file(file_path, parent):
    outcome = yield
    path = pathlib.Path(file_path)
    if path.suffix != ".py" or _PLUGINS not in path.parents:
        return
    package = path.relative_to(_PLUGINS).parts[0]
    missing = _missing(package) if package in _BACKENDS else []
    if missing and outcome.get_result():
        skipped = _Skipped.from_parent(parent, path=path)
        skipped.reason = f"{package} needs {', '.join(missing)}"
        outcome.force_result([skipped])
