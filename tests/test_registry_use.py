"""Tests of lmu.registry in use: register()/unregister()/refresh(), LMU_BACKEND, dispatch on built objects, the
lazy-import rule, build's options, the error hierarchy and install hints. Discovery through entry points is in
``test_registry.py``; the fixtures in ``_registry.py``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import lmu
from lmu import registry
from lmu.reference import NumpyBackend

from _registry import SPEC, _row, _scan, clean_registry  # noqa: F401 (an autouse fixture)


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
