"""A broken or slow plugin costs its own entry only: whatever it raises (SystemExit, KeyboardInterrupt, a
BaseException of its own) or however long it hangs, ``lmu.backends()`` returns within the bound, lists it as failed
with the reason, and every other backend keeps building."""

import importlib
import itertools
import sys
import textwrap
import time

import numpy as np
import pytest

import lmu
from lmu import discovery, registry

SPEC = lmu.LMUSpec(memory_d=1, order=4, theta=10, input_d=1)
BOUND = 1.5
_names = itertools.count()


@pytest.fixture
def install(tmp_path, monkeypatch):
    """Write an installed-looking distribution declaring one backend whose module has the given source."""
    monkeypatch.setattr(discovery, "PLUGIN_TIMEOUT", BOUND)
    written = []

    def write(source):
        module = f"_lmu_robust_plugin_{next(_names)}"
        name = "robust" + module.removeprefix("_lmu_robust_plugin_")
        root = tmp_path / module
        info = root / f"{module}-1.0.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n")
        (info / "entry_points.txt").write_text(f"[lmu.backends]\n{name} = {module}:Plugin\n")
        (root / f"{module}.py").write_text(textwrap.dedent(source).replace("NAME", name))
        monkeypatch.syspath_prepend(str(root))
        importlib.invalidate_caches()
        written.append(module)
        return name

    lmu.refresh()
    yield write
    lmu.refresh()
    for module in written:
        sys.modules.pop(module, None)


GOOD = """
    from lmu.reference import NumpyBackend

    class Plugin(NumpyBackend):
        name = "NAME"
"""

AT_IMPORT = {
    "sys.exit": "import sys\nsys.exit(3)\n",
    "KeyboardInterrupt": "raise KeyboardInterrupt\n",
    "its own BaseException": "class Doom(BaseException):\n    pass\nraise Doom('no way')\n",
    "a hang": "import time\ntime.sleep(3600)\n",
    "a constructor that exits": GOOD + "\n        def __init__(self):\n            raise SystemExit('bye')\n",
}


def _listed(name):
    started = time.monotonic()
    with pytest.warns(RuntimeWarning):
        rows = {b.name: b for b in lmu.backends()}
    return rows, time.monotonic() - started


@pytest.mark.parametrize("what", AT_IMPORT)
def test_a_plugin_that_fails_at_import_costs_its_entry_only(install, what):
    name = install(AT_IMPORT[what])
    rows, seconds = _listed(name)
    assert seconds < BOUND + 3, f"lmu.backends() took {seconds:.1f} s with a plugin that has {what}"
    assert not rows[name].available and "failed to load" in rows[name].reason
    if what == "a hang":
        assert "did not finish within 1.5 s" in rows[name].reason
    with pytest.raises(lmu.BackendUnavailable, match=f"'{name}'"):
        lmu.build(SPEC, backend=name)
    model = lmu.build(SPEC, backend="numpy")  # everything else works
    assert lmu.run(model, np.ones((1, 5, 1))).shape == (1, 4)


CALLS = {  # methods of the plugin's class (indented as in GOOD)
    "unavailable() hangs": "\n        def unavailable(self):\n            import time\n            time.sleep(3600)\n",
    "unavailable() exits": "\n        def unavailable(self):\n            raise SystemExit(2)\n",
    "version() exits": "\n        def version(self):\n            raise SystemExit(2)\n",
}


@pytest.mark.parametrize("what", CALLS)
def test_a_plugin_whose_methods_hang_or_exit_costs_its_row_only(install, what):
    name = install(GOOD + CALLS[what])
    started = time.monotonic()
    rows = {b.name: b for b in lmu.backends()}
    assert time.monotonic() - started < BOUND + 3
    if what.startswith("unavailable"):
        assert not rows[name].available and "unavailable()" in rows[name].reason
    else:
        assert rows[name].available and rows[name].version is None
    assert rows["numpy"].available


def test_a_check_that_returns_a_string_breaks_the_contract_by_name(install):
    name = install(GOOD + "\n        def check(self, spec):\n            return 'no'\n")
    with pytest.raises(lmu.BackendUnavailable, match=rf"backend '{name}' breaks the contract: check\(spec\) must "
                                                     r"return a list of reasons .*got 'no'"):
        lmu.build(SPEC, backend=name)


def test_a_registered_backend_is_held_to_the_same_contract():
    from lmu.reference import NumpyBackend

    class Stringly(NumpyBackend):
        name = "stringly"

        def check(self, spec):
            return "not a list"

    lmu.register(Stringly)
    try:
        with pytest.raises(lmu.BackendUnavailable, match="breaks the contract"):
            lmu.build(SPEC, backend="stringly")
    finally:
        registry.unregister("stringly")
