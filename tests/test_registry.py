"""Tests of lmu.registry: entry-point discovery (through real dist-info directories), broken and conflicting
plugins, register()/unregister()/refresh(), LMU_BACKEND, dispatch on built objects, and the lazy-import rule.

Every test leaves the registry as it found it (the ``clean_registry`` fixture is autouse), and every fake plugin
lives in its own temporary directory with a module name unique to the test, so the tests can run in any order
and in parallel (pytest-xdist runs each worker in its own process).
"""

from __future__ import annotations

import importlib
import itertools
import os
import re
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import lmu
from lmu import registry
from lmu.reference import NumpyBackend, ReferenceLMU

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


# ------------------------------------------------------------------------------------------------ register
class Second(NumpyBackend):
    """A second in-process backend: the numpy semantics under another name."""

    name = "second"


class Missing(NumpyBackend):
    name = "missingfw"
    extra = "missingfw"
    requires = ("numpy", "_lmu_surely_not_an_installed_module")
    framework = "_lmu_surely_not_an_installed_distribution"


def test_register_and_unregister():
    instance = lmu.register(Second)
    assert isinstance(instance, Second)
    row = _row("second")
    assert row.available and row.provider == "register()"
    assert lmu.build(SPEC, backend="second").lmu_backend == "second"
    registry.unregister("second")
    assert "second" not in {b.name for b in lmu.backends()}
    with pytest.raises(lmu.BackendUnavailable, match=r"unknown backend 'second'.*numpy.*lmu\.backends"):
        lmu.build(SPEC, backend="second")
    registry.unregister("second")  # a no-op now


def test_register_an_instance():
    backend = Second()
    assert lmu.register(backend) is backend
    assert registry.get_backend("second") is backend


def test_register_duplicate_needs_replace():
    first = lmu.register(Second)
    with pytest.raises(ValueError, match="'second'.*replace=True"):
        lmu.register(Second)
    assert registry.get_backend("second") is first
    second = lmu.register(Second, replace=True)
    assert second is not first and registry.get_backend("second") is second


def test_register_over_a_discovered_backend_needs_replace():
    with pytest.raises(ValueError, match="'numpy'"):
        lmu.register(NumpyBackend)

    class Shadow(NumpyBackend):
        pass

    shadow = lmu.register(Shadow, replace=True)
    assert registry.get_backend("numpy") is shadow and _row("numpy").provider == "register()"
    registry.unregister("numpy")  # the discovered one comes back
    assert type(registry.get_backend("numpy")) is NumpyBackend
    assert _row("numpy").provider.startswith("lmu ")


def test_refresh_keeps_registered_backends():
    lmu.register(Second)
    lmu.refresh()
    assert _row("second").provider == "register()"
    assert registry.get_backend("numpy").name == "numpy"


@pytest.mark.parametrize("bad", [object(), type("Nameless", (NumpyBackend,), {"name": ""})])
def test_register_refuses_what_is_not_a_backend(bad):
    with pytest.raises(TypeError, match="name"):
        lmu.register(bad)


def test_register_refuses_an_incomplete_backend():
    class Incomplete:
        name = "incomplete"

        def unavailable(self):
            return None

    with pytest.raises(TypeError, match="backend contract"):
        lmu.register(Incomplete)
    assert "incomplete" not in {b.name for b in lmu.backends()}


def test_missing_framework_message_names_the_install_command():
    lmu.register(Missing)
    row = _row("missingfw")
    assert not row.available and row.version is None and row.extra == "missingfw"
    # not one of lmu's extras: the hint names the modules to install (never the index's unrelated "lmu")
    assert "pip install _lmu_surely_not_an_installed_module" in row.reason and "lmu[" not in row.reason
    with pytest.raises(lmu.BackendUnavailable) as info:
        lmu.build(SPEC, backend="missingfw")
    message = str(info.value)
    assert re.fullmatch(r"backend 'missingfw' is not installed: pip install _lmu_surely_not_an_installed_module .*"
                        r"\(installed: [^)]*\bnumpy\b[^)]*\)", message), message
    assert "_lmu_surely_not_an_installed_module" in message
    assert "missingfw" not in message.split("(installed:")[1]


def test_unknown_backend_and_bad_backend_argument():
    with pytest.raises(lmu.BackendUnavailable, match=r"unknown backend 'nope'; known backends: .*numpy"):
        lmu.build(SPEC, backend="nope")
    with pytest.raises(TypeError, match="backend name"):
        lmu.build(SPEC, backend=3)
    with pytest.raises(TypeError, match="LMUSpec"):
        lmu.build({"order": 4}, backend="numpy")


def test_backend_instance_passes_through_build():
    model = lmu.build(SPEC, backend=Second())
    assert model.lmu_backend == "second"


# ------------------------------------------------------------------------------------------------ LMU_BACKEND
def test_default_backend_is_numpy(monkeypatch):
    monkeypatch.delenv("LMU_BACKEND", raising=False)
    assert lmu.build(SPEC).lmu_backend == "numpy"
    monkeypatch.setenv("LMU_BACKEND", "")
    assert lmu.build(SPEC).lmu_backend == "numpy"


def test_lmu_backend_env_var_selects_the_default(monkeypatch):
    lmu.register(Second)
    monkeypatch.setenv("LMU_BACKEND", "second")
    assert lmu.build(SPEC).lmu_backend == "second"
    assert lmu.build(SPEC, backend="numpy").lmu_backend == "numpy"  # an explicit backend wins
    monkeypatch.setenv("LMU_BACKEND", "nonexistent")
    with pytest.raises(lmu.BackendUnavailable, match="'nonexistent'"):
        lmu.build(SPEC)


# ------------------------------------------------------------------------------------------------ dispatch
@pytest.mark.parametrize("backend", ["numpy", "second"])
def test_dispatch_on_built_objects(backend):
    lmu.register(Second)
    weights = lmu.init_weights(SPEC, seed=3)
    model = lmu.build(SPEC, backend=backend, weights=weights)
    assert registry._owner(model).name == backend
    assert lmu.spec_of(model) == SPEC
    got = lmu.get_weights(model)
    assert set(got) == set(weights)
    for name in weights:
        np.testing.assert_array_equal(got[name], weights[name])

    other = lmu.init_weights(SPEC, seed=4)
    lmu.set_weights(model, dict(other))  # a plain mapping is checked and accepted
    for name in other:
        np.testing.assert_array_equal(lmu.get_weights(model)[name], other[name])
    with pytest.raises(lmu.SpecError):
        lmu.set_weights(model, lmu.init_weights(SPEC.replace(order=5)))

    x = np.random.default_rng(1).normal(size=(2, 20, 1))
    y, state = lmu.run(model, x, return_state=True)
    assert y.shape == (2, 3) and set(state) == {"memory", "hidden"}
    y_first, s = lmu.run(model, x[:, :7], return_state=True)
    np.testing.assert_allclose(lmu.run(model, x[:, 7:], state=s), y, atol=1e-10)

    for target in ("numpy", "second"):
        converted = lmu.convert(model, target)
        assert registry._owner(converted).name == target
        assert lmu.spec_of(converted) == SPEC
        np.testing.assert_allclose(lmu.run(converted, x), y, atol=1e-12)


def test_dispatch_refuses_foreign_objects():
    for foreign in (object(), np.zeros(3), "numpy"):
        for call in (lmu.spec_of, lmu.get_weights,
                     lambda o: lmu.set_weights(o, {}), lambda o: lmu.run(o, np.zeros((1, 2, 1))),
                     lambda o: lmu.convert(o, "numpy")):
            with pytest.raises(TypeError, match="not built by an lmu backend"):
                call(foreign)


def test_dispatch_after_the_owner_is_unregistered():
    lmu.register(Second)
    model = lmu.build(SPEC, backend="second")
    registry.unregister("second")
    with pytest.raises(TypeError, match="not built by an lmu backend"):
        lmu.spec_of(model)


def test_run_validates_input():
    model = lmu.build(SPEC)
    with pytest.raises(ValueError, match="input_d"):
        lmu.run(model, np.zeros((1, 5, 2)))


# ------------------------------------------------------------------------------------------------ lazy imports
def test_import_lmu_and_listing_backends_import_no_framework():
    code = textwrap.dedent("""
        import sys
        import lmu
        heavy = ("lmu.testing", "matplotlib", "torch", "tensorflow", "keras", "nengo", "nengo_dl")
        loaded = [m for m in heavy if m in sys.modules]
        assert not loaded, f"import lmu imported {loaded}"
        rows = lmu.backends()
        assert any(b.name == "numpy" and b.available for b in rows), rows
        frameworks = ("torch", "tensorflow", "keras", "nengo", "nengo_dl", "nengo_loihi", "matplotlib")
        loaded = [m for m in frameworks if m in sys.modules]
        assert not loaded, f"lmu.backends() imported {loaded}"
        print("ok")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


# ------------------------------------------------------------------------------------------------ options
def test_options_are_the_keyword_only_parameters_of_build():
    with pytest.raises(lmu.ArgumentError, match=r"unknown option 'mdoe' \(did you mean mode=\?\) for the numpy "
                                                r"backend; it takes only the option mode="):
        lmu.build(SPEC, mdoe="step")
    with pytest.raises(TypeError, match="unknown options 'a', 'b'"):  # an ArgumentError is also a TypeError
        lmu.build(SPEC, a=1, b=2)

    class NoOptions(NumpyBackend):
        name = "no_options"

        def build(self, spec, weights):
            return super().build(spec, weights)

    lmu.register(NoOptions)
    with pytest.raises(lmu.ArgumentError, match="it takes no options"):
        lmu.build(SPEC, backend="no_options", mode="step")

    class OpenEnded(NumpyBackend):  # a build with **options checks its own (lmu 0.4's style)
        name = "open_ended"

        def build(self, spec, weights, **options):
            return ("built", options)

    lmu.register(OpenEnded)
    assert lmu.build(SPEC, backend="open_ended", anything=1) == ("built", {"anything": 1})


def test_a_mode_is_checked_against_the_declared_modes_before_building():
    m2m = SPEC.replace(memory_to_memory=True)
    with pytest.raises(lmu.UnsupportedSpec, match=r"mode='fft' needs an LTI spec .*memory_to_memory=True: use "
                                                  r"mode='step' or 'auto'"):
        lmu.build(m2m, mode="fft")
    with pytest.raises(lmu.ArgumentError, match=r"mode must be one of auto, step, fft \(got 'fast'\)"):
        lmu.build(SPEC, mode="fast")


def test_an_unknown_backend_name_gets_the_closest_one():
    with pytest.raises(lmu.BackendUnavailable, match=r"unknown backend 'nunpy'; did you mean 'numpy'\?"):
        lmu.build(SPEC, backend="nunpy")


def test_the_numpy_backend_is_the_one_builtin():
    assert registry.BUILTINS == {"numpy": "lmu.reference:NumpyBackend"}
    assert _scan()["numpy"].provider == f"lmu {lmu.__version__} (built in)"


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


def test_lmu_04_modes_helper_still_works_with_a_warning():
    def check_mode(spec, mode):
        if mode == "fft" and not spec.is_lti:
            raise ValueError("no")

    with pytest.warns(DeprecationWarning, match="modes_that_apply is deprecated"):
        helper = registry.modes_that_apply
    assert helper(SPEC.replace(memory_to_memory=True), ("auto", "fft"), check_mode) == [{"mode": "auto"}]


@pytest.mark.parametrize("error, builtin", [
    (lmu.SpecError, ValueError), (lmu.UnsupportedSpec, ValueError), (lmu.BackendUnavailable, ImportError),
    (lmu.ArgumentError, TypeError), (lmu.ArgumentError, ValueError), (lmu.WeightsFileError, OSError),
    (lmu.WeightsFileError, ValueError), (lmu.DatasetError, OSError), (lmu.DatasetError, ValueError)])
def test_every_error_is_an_lmu_error_and_the_builtin_users_catch(error, builtin):
    assert issubclass(error, lmu.LMUError) and issubclass(error, builtin)
    assert isinstance(error("message"), builtin)


def test_install_hints_name_the_packages_of_the_extra_and_the_checkout_form():
    from lmu.install import checkout, extra_requirements, install_command

    torch_hint = install_command("torch")
    assert torch_hint.startswith('pip install "torch>=2.1"') and '"lmu[' not in torch_hint
    assert extra_requirements("loihi") == ("nengo>=4", "nengo-loihi>=1.1", "numpy<2")
    root = checkout()  # the tests run from a checkout (editable install or the source tree)
    assert root is not None and os.path.exists(os.path.join(root, "pyproject.toml"))
    assert f'pip install -e "{root}[torch]"' in torch_hint
    for row in lmu.backends():
        assert "lmu[" not in (row.reason or ""), row
