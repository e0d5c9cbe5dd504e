"""The conformance kit's self-test: an independent loop passes it, and every deliberately broken backend fails."""

import numpy as np
import pytest
from _independent import FLAWS, LoopBackend

import lmu
import lmu.testing as kit
from lmu.backend import Accuracy

# Which battery cases each flaw must break (a flaw in the LSTM gates cannot show in a dense case).
MUST_CATCH = {
    "A_transposed": "memory-only-seq-float64",
    "gates_swapped": "lstm-seq-float64",
    "memory_late": "rnn-tanh-seq-float64",
    "bias_dropped": "bias-float64",
    "theta_off": "memory-only-float32",
    "state_ignored": "rnn-tanh-seq-float64",
    "theta_from_spec": "trainable-theta-float32",
    "hidden_bias_dropped": "dense-relu-float64",
}


def _case(case_id):
    return next(c for c in kit.cases() if c.id == case_id)


def test_battery_covers_every_field():
    specs = [c.spec for c in kit.cases()]
    kinds = {(s.hidden.kind, s.hidden.activation) for s in specs if s.hidden}
    assert {k for k, _ in kinds} == {"dense", "rnn", "lstm"} and any(s.hidden is None for s in specs)
    assert {a for _, a in kinds} == {"linear", "tanh", "relu", "sigmoid"}
    for flag in ("hidden_to_memory", "memory_to_memory", "input_to_hidden", "trainable_theta", "use_bias",
                 "return_sequences"):
        assert {getattr(s, flag) for s in specs} == {True, False}, flag
    assert {s.discretizer for s in specs} == {"zoh", "euler", "bilinear"}
    assert {s.dtype for s in specs} == {"float32", "float64"}
    assert any(s.kernel_initializer is None for s in specs)
    assert any(s.memory_d > 1 for s in specs) and any(s.dropout > 0 for s in specs)
    assert any(s.recurrent_dropout > 0 for s in specs)
    steps = {c.steps for c in kit.cases()}
    assert min(steps) == 1 and max(steps) == 2000
    assert any(c.spec.theta > c.steps for c in kit.cases())
    assert any(c.spec.theta * 100 < c.steps for c in kit.cases())
    assert any(c.spec.theta >= 784 for c in kit.cases())


def test_case_weights_exercise_every_parameter():
    case = _case("everything-float64")
    w = kit.case_weights(case.spec)
    assert np.all(w["bias"] != 0) and np.all(w["hidden/bias"] != 0)
    assert float(w["theta"]) == pytest.approx(case.spec.theta * 1.13)


def test_independent_loop_passes_the_whole_kit():
    """The reference (which the kit uses) agrees with code written separately from it, on every case."""
    report = kit.check_backend(LoopBackend())
    assert report.passed, "\n".join(map(str, report.failures))
    assert not report.refused


@pytest.mark.parametrize("flaw", FLAWS)
def test_each_broken_backend_is_caught(flaw):
    case = _case(MUST_CATCH[flaw])
    results = kit.check_case(LoopBackend(flaw), case)
    assert not all(r.passed for r in results), f"the kit missed the flaw {flaw!r} on {case.id}"
    with pytest.raises(AssertionError):
        kit.assert_conforms(LoopBackend(flaw), case)
    # and the same case passes without the flaw, so it is the flaw that was caught
    kit.assert_conforms(LoopBackend(), case)


@pytest.mark.parametrize("flaw", FLAWS)
def test_quick_battery_catches_each_flaw(flaw):
    report = kit.check_backend(LoopBackend(flaw), quick=True, checks=("outputs", "streaming"))
    assert not report.passed


def test_refusals_are_reported_not_failed():
    class Picky(LoopBackend):
        def check(self, spec):
            return ["no bilinear here"] if spec.discretizer == "bilinear" else []

    report = kit.check_backend(Picky(), quick=True, checks=("outputs",))
    assert report.passed
    assert report.refused == ["bilinear-float32", "bilinear-float64"]
    with pytest.raises(lmu.UnsupportedSpec, match="no bilinear"):
        kit.assert_conforms(Picky(), _case("bilinear-float64"))


def test_a_crashing_backend_fails_with_its_message():
    class Crashing(LoopBackend):
        def run(self, obj, x, state=None, return_state=False):
            raise RuntimeError("kaboom")

    results = kit.check_case(Crashing(), _case("memory-only-float64"), checks=("outputs",))
    assert not results[0].passed and "kaboom" in results[0].message


def test_wrong_output_shape_fails():
    class Flat(LoopBackend):
        def run(self, obj, x, state=None, return_state=False):
            out = super().run(obj, x, state, return_state)
            return (out[0].reshape(-1), out[1]) if return_state else out.reshape(-1)

    results = kit.check_case(Flat(), _case("rnn-tanh-seq-float64"), checks=("outputs",))
    assert not results[0].passed and "shape" in results[0].message


def _noisy_run(backend, obj, x, state=None, return_state=False):
    out = kit._lowpass(np.asarray(LoopBackend.run(backend, obj, x), np.float64), 5.0)
    rms = np.sqrt(np.nanmean(out**2))  # NaN input: NaN outputs where the reference has them, noise elsewhere
    return out + backend.noise * rms * np.random.default_rng(0).normal(size=out.shape)


NOISY_SPEC = lmu.LMUSpec(memory_d=1, order=4, theta=50.0, input_d=1, return_sequences=True)


class Noisy(LoopBackend):
    """An approximate backend: the exact outputs, smoothed like a spiking readout, plus noise of a given size."""

    accuracy = Accuracy(nrmse=0.2, readout_lowpass=5.0, battery=(("noisy-memory", NOISY_SPEC, 300, 2),))

    def __init__(self, noise):
        super().__init__()
        self.noise = noise

    run = _noisy_run


@pytest.mark.parametrize("noise,passes", [(0.05, True), (0.5, False)])
def test_approximate_backends_are_held_to_their_nrmse_limit(noise, passes):
    report = kit.check_backend(Noisy(noise))
    assert [r.check for r in report.results] == ["nrmse", "nan"]
    assert report.passed == passes, report.results
    assert report.nrmse_limit == 0.2
    assert abs(report.results[0].error - noise) < 0.02  # the NRMSE is the noise, once the readout filter is matched


class LegacyNoisy(LoopBackend):
    """The same backend declared with lmu 0.4's hooks, which still work (with a DeprecationWarning)."""

    approximate = 0.2

    def __init__(self, noise):
        super().__init__()
        self.noise = noise

    def readout_lowpass(self, spec, options):
        return 5.0

    def conformance_battery(self, quick=False):
        return [kit.Case("noisy-memory", NOISY_SPEC, 300, 2)]

    def conformance_options(self, spec):
        return [{}]

    run = _noisy_run


@pytest.mark.parametrize("noise,passes", [(0.05, True), (0.5, False)])
def test_lmu_04_hooks_still_work_with_a_deprecation_warning(noise, passes):
    with pytest.warns(DeprecationWarning, match="approximate, conformance_options, conformance_battery"):
        report = kit.check_backend(LegacyNoisy(noise), every_option_set=True)
    assert [r.check for r in report.results] == ["nrmse", "nan"]
    assert report.passed == passes, report.results
    assert abs(report.results[0].error - noise) < 0.02


def test_option_sets_come_from_the_declared_modes_and_test_options():
    m2m = lmu.LMUSpec(memory_d=1, order=4, theta=8, input_d=1, memory_to_memory=True)
    lti = m2m.replace(memory_to_memory=False)
    assert kit.option_sets("numpy", m2m) == [{"mode": "auto"}, {"mode": "step"}]
    assert kit.option_sets("numpy", lti) == [{"mode": "auto"}, {"mode": "step"}, {"mode": "fft"}]

    class Seeded(LoopBackend):
        test_options = ({"seed": 0}, {"seed": 1})

    assert kit.option_sets(Seeded(), lti) == [{"seed": 0}, {"seed": 1}]
    assert [c.id for c in kit.battery_of(Noisy(0.0))] == ["noisy-memory"]
    assert kit.battery_of("numpy", quick=True) == kit.cases(quick=True)


def test_relative_error_definition():
    assert kit.relative_error([1.0, 2.0], [1.0, 2.0]) == 0
    assert kit.relative_error([0.0, 4.0], [0.0, 2.0]) == pytest.approx(1.0)
    assert kit.relative_error([np.nan], [1.0]) == np.inf
    assert kit.relative_error([np.nan, 1.0], [np.nan, 1.0]) == 0
    assert kit.relative_error(np.ones(3), np.ones(4)) == np.inf
