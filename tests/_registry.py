"""The registry tests' shared fixtures and helpers (``test_registry.py``, ``test_registry_use.py``).

Every test that imports ``clean_registry`` leaves the registry as it found it (the fixture is autouse where it is
imported), and every fake plugin lives in its own temporary directory with a module name unique to the test, so
the tests can run in any order and in parallel (pytest-xdist runs each worker in its own process).
"""

from __future__ import annotations

import importlib
import itertools
import sys
import textwrap
import warnings

import pytest

import lmu
from lmu import registry

SPEC = lmu.LMUSpec(memory_d=1, order=4, theta=10, input_d=1, hidden=lmu.Hidden("rnn", 3))

_counter = itertools.count()


# ------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(autouse=True)
def clean_registry():
    """Start from a fresh scan and restore the registered backends afterwards, even when the test fails."""
    saved = dict(registry._registered)
    lmu.refresh()
    try:
        yield
    finally:
        registry._registered.clear()
        registry._registered.update(saved)
        lmu.refresh()


class FakePlugins:
    """Writes installed-looking distributions (a dist-info with METADATA and entry_points.txt, plus a module)."""

    def __init__(self, tmp_path, monkeypatch):
        self.tmp_path = tmp_path
        self.monkeypatch = monkeypatch
        self.modules: list[str] = []

    def module_name(self, stem: str) -> str:
        name = f"_lmu_test_{stem}_{next(_counter)}"
        self.modules.append(name)
        return name

    def write(self, dist: str, entry_points: dict[str, str], module: str, source: str, *, version="1.0",
              on_path=True):
        """A distribution ``dist`` in its own directory, declaring ``entry_points`` (name -> "module:attr")."""
        root = self.tmp_path / f"site_{dist}"
        root.mkdir()
        info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
        (info / "entry_points.txt").write_text(f"[{registry.ENTRY_POINT_GROUP}]\n{lines}")
        (root / f"{module}.py").write_text(textwrap.dedent(source))
        if on_path:
            self.monkeypatch.syspath_prepend(str(root))
        importlib.invalidate_caches()
        return root

    def cleanup(self):
        for name in self.modules:
            sys.modules.pop(name, None)


@pytest.fixture
def plugins(tmp_path, monkeypatch):
    fake = FakePlugins(tmp_path, monkeypatch)
    try:
        yield fake
    finally:
        fake.cleanup()
        lmu.refresh()  # sys.path is restored by monkeypatch after this; the next scan happens lazily, later


def _row(name):
    rows = {b.name: b for b in lmu.backends()}
    assert name in rows, f"{name!r} not in {sorted(rows)}"
    return rows[name]


def _scan(match=None):
    """Re-scan and return the rows; with ``match``, require a RuntimeWarning matching it during the scan."""
    lmu.refresh()
    if match is None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            rows = {b.name: b for b in lmu.backends()}
        ours = [str(w.message) for w in caught if "_lmu_test_" in str(w.message)]
        assert not ours, ours
        return rows
    with pytest.warns(RuntimeWarning, match=match):
        return {b.name: b for b in lmu.backends()}


GOOD_PLUGIN = """
    from lmu.reference import NumpyBackend

    class Plugin(NumpyBackend):
        name = {name!r}
"""
