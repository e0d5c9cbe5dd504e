"""Tests of lmu.registry's entry-point discovery, through real dist-info directories: broken, abstract and
conflicting plugins, caching until refresh. Registering by hand, LMU_BACKEND, dispatch, the lazy-import rule and
the options are in ``test_registry_use.py``; the fixtures in ``_registry.py``.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

import lmu
from lmu import registry
from lmu.reference import NumpyBackend, ReferenceLMU

from _registry import GOOD_PLUGIN, SPEC, _scan, clean_registry, plugins  # noqa: F401 (fixtures)


# ------------------------------------------------------------------------------------------------ discovery
def test_numpy_backend_is_discovered_from_our_distribution():
    row = _scan()["numpy"]
    assert row.available and row.reason is None
    assert row.provider.split()[0] == "lmu"
    assert row.provider.split()[1] == lmu.__version__
    assert row.version == np.__version__
    assert row.to_dict()["name"] == "numpy"


def test_plugin_discovered_through_a_real_entry_point(plugins):
    module = plugins.module_name("good")
    plugins.write("fake-plugin", {"fakeback": f"{module}:Plugin"}, module, GOOD_PLUGIN.format(name="fakeback"))
    assert module not in sys.modules
    rows = _scan()
    row = rows["fakeback"]
    assert row.available and row.reason is None
    assert row.provider == "fake-plugin 1.0"
    assert "numpy" in rows  # ours are still there
    model = lmu.build(SPEC, backend="fakeback")
    assert isinstance(model, ReferenceLMU) and model.lmu_backend == "fakeback"
    assert type(registry.get_backend("fakeback")).__module__ == module
    x = np.random.default_rng(0).normal(size=(2, 12, 1))
    reference = lmu.build(SPEC, backend="numpy")
    np.testing.assert_allclose(lmu.run(model, x), lmu.run(reference, x))


def test_discovery_is_cached_until_refresh(plugins):
    lmu.backends()  # scan now, before the plugin exists
    module = plugins.module_name("late")
    plugins.write("late-plugin", {"lateback": f"{module}:Plugin"}, module, GOOD_PLUGIN.format(name="lateback"))
    assert "lateback" not in {b.name for b in lmu.backends()}
    assert "lateback" in _scan()


def test_broken_plugin_warns_is_listed_and_raises_chained_on_request(plugins):
    module = plugins.module_name("broken")
    plugins.write("broken-plugin", {"brokenback": f"{module}:Plugin"}, module,
                  "raise ZeroDivisionError('plugin exploded on import')\n")
    rows = _scan(match=r"brokenback.*broken-plugin 1\.0.*ZeroDivisionError: plugin exploded on import")
    row = rows["brokenback"]
    assert not row.available
    assert "ZeroDivisionError" in row.reason and "plugin exploded on import" in row.reason
    assert row.provider == "broken-plugin 1.0"
    assert rows["numpy"].available  # one broken plugin breaks nothing else
    lmu.build(SPEC)
    with pytest.raises(lmu.BackendUnavailable, match=r"'brokenback'.*failed to load.*plugin exploded") as info:
        lmu.build(SPEC, backend="brokenback")
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    assert str(info.value.__cause__) == "plugin exploded on import"
    assert isinstance(info.value, ImportError)


def test_plugin_pointing_at_a_missing_attribute_is_broken(plugins):
    module = plugins.module_name("noattr")
    plugins.write("noattr-plugin", {"noattr": f"{module}:Nothing"}, module, "X = 1\n")
    row = _scan(match="noattr")["noattr"]
    assert not row.available and "AttributeError" in row.reason
    with pytest.raises(lmu.BackendUnavailable) as info:
        lmu.build(SPEC, backend="noattr")
    assert isinstance(info.value.__cause__, AttributeError)


def test_plugin_class_lacking_methods_is_broken_not_fatal(plugins):
    module = plugins.module_name("lacking")
    source = """
        class Plugin:
            name = "lacking"
            extra = None
            def unavailable(self):
                return None
            def check(self, spec):
                return []
            def build(self, spec, weights, **options):
                raise AssertionError("never called")
            # no get_weights, set_weights, run, owns
    """
    plugins.write("lacking-plugin", {"lacking": f"{module}:Plugin"}, module, source)
    row = _scan(match=r"lacking.*does not implement the backend contract")["lacking"]
    assert not row.available and "get_weights()" in row.reason
    with pytest.raises(lmu.BackendUnavailable) as info:
        lmu.build(SPEC, backend="lacking")
    assert isinstance(info.value.__cause__, TypeError)


def test_plugin_declaring_another_name_is_broken_not_fatal(plugins):
    module = plugins.module_name("misnamed")
    plugins.write("misnamed-plugin", {"entryname": f"{module}:Plugin"}, module,
                  GOOD_PLUGIN.format(name="classname"))
    rows = _scan(match=r"entryname.*declares name 'classname'")
    assert "classname" not in rows
    row = rows["entryname"]
    assert not row.available and "'classname'" in row.reason and "'entryname'" in row.reason
    with pytest.raises(lmu.BackendUnavailable) as info:
        lmu.build(SPEC, backend="entryname")
    assert isinstance(info.value.__cause__, TypeError)


def test_plugin_whose_constructor_raises_is_broken_not_fatal(plugins):
    module = plugins.module_name("ctor")
    source = GOOD_PLUGIN.format(name="ctorback") + """
        def __init__(self):
            raise RuntimeError("no constructor for you")
    """
    plugins.write("ctor-plugin", {"ctorback": f"{module}:Plugin"}, module, source)
    row = _scan(match="no constructor for you")["ctorback"]
    assert not row.available


@pytest.mark.parametrize("order", ["alpha first on sys.path", "beta first on sys.path"])
def test_two_plugins_claiming_one_name_resolve_deterministically(plugins, monkeypatch, order):
    mod_a, mod_b = plugins.module_name("dup_a"), plugins.module_name("dup_b")
    source = GOOD_PLUGIN.format(name="dupback") + "        origin = {origin!r}\n"
    root_a = plugins.write("dup-alpha", {"dupback": f"{mod_a}:Plugin"}, mod_a, source.format(origin="alpha"),
                           on_path=False)
    root_b = plugins.write("dup-beta", {"dupback": f"{mod_b}:Plugin"}, mod_b, source.format(origin="beta"),
                           on_path=False)
    first, second = (root_a, root_b) if order.startswith("alpha") else (root_b, root_a)
    monkeypatch.syspath_prepend(str(second))
    monkeypatch.syspath_prepend(str(first))
    assert sys.path.index(str(first)) < sys.path.index(str(second))
    rows = _scan(match=r"(?s)'dupback'.*dup-alpha 1\.0.*dup-beta 1\.0")
    assert rows["dupback"].available
    assert rows["dupback"].provider == "dup-alpha 1.0"
    assert registry.get_backend("dupback").origin == "alpha"
    assert lmu.build(SPEC, backend="dupback").lmu_backend == "dupback"
    assert mod_b not in sys.modules  # the loser is never imported


def test_third_party_claiming_numpy_loses_to_ours(plugins):
    module = plugins.module_name("hijack")
    plugins.write("aaa-hijack", {"numpy": f"{module}:Plugin"}, module, GOOD_PLUGIN.format(name="numpy"))
    row = _scan(match=r"(?s)'numpy'.*lmu .*aaa-hijack 1\.0")["numpy"]
    assert row.provider.split()[0] == "lmu"
    assert type(registry.get_backend("numpy")) is NumpyBackend


def test_plugin_whose_unavailable_raises_is_reported_not_fatal(plugins):
    module = plugins.module_name("raising")
    source = GOOD_PLUGIN.format(name="raisingback") + """
        def unavailable(self):
            raise OSError("cannot probe the hardware")

        def owns(self, obj):
            raise OSError("cannot probe the hardware")

        def version(self):
            raise OSError("no version either")
    """
    plugins.write("raising-plugin", {"raisingback": f"{module}:Plugin"}, module, source)
    row = _scan()["raisingback"]
    assert not row.available
    assert "unavailable()" in row.reason and "cannot probe the hardware" in row.reason
    assert row.version is None
    with pytest.raises(lmu.BackendUnavailable, match="cannot probe the hardware") as info:
        lmu.build(SPEC, backend="raisingback")
    assert isinstance(info.value.__cause__, OSError)
    # dispatch on other objects is not disturbed by it
    model = lmu.build(SPEC)
    assert lmu.spec_of(model) == SPEC
    with pytest.raises(TypeError, match="not built by an lmu backend"):
        lmu.spec_of(object())


def test_an_abstract_backend_is_broken_naming_what_it_lacks(plugins):
    module = plugins.module_name("abstract")
    source = """
        import lmu

        class Plugin(lmu.Backend):
            name = "abstractback"

            def build(self, spec, weights):
                return None
    """
    plugins.write("abstract-plugin", {"abstractback": f"{module}:Plugin"}, module, source)
    row = _scan(match=r"abstractback.*does not implement the backend contract")["abstractback"]
    assert not row.available and "get_weights(), run(), set_weights()" in row.reason
