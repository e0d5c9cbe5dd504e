"""The NumPy reference against independent code: scipy's dlsim for the memory, a plain loop for each hidden."""

import numpy as np
import pytest
import scipy.signal
from _independent import LoopBackend

import lmu
import lmu.testing as kit
from lmu import legendre
from lmu.reference import ReferenceLMU


def _x(batch, steps, dims, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, steps, dims))


@pytest.mark.parametrize("discretizer", ["zoh", "euler", "bilinear"])
@pytest.mark.parametrize("mode", ["step", "fft"])
def test_memory_equals_dlsim(discretizer, mode):
    order, theta, steps = 10, 50.0, 400
    spec = lmu.LMUSpec(memory_d=1, order=order, theta=theta, input_d=1, kernel_initializer=None,
                       discretizer=discretizer, return_sequences=True, dtype="float64")
    x = _x(1, steps, 1)
    memory = lmu.run(lmu.build(spec, mode=mode), x)[0]
    A_bar, B_bar = legendre.discretize(order, theta, discretizer)
    # m_t includes u_t (same-step input): dlsim's state x[t+1] = A x[t] + B u[t] is m_t at index t + 1.
    _, _, states = scipy.signal.dlsim((A_bar, B_bar[:, None], np.eye(order), np.zeros((order, 1)), 1),
                                      x[0], x0=np.zeros(order))
    expected = A_bar @ states.T + B_bar[:, None] * x[0].T
    assert kit.relative_error(memory, expected.T) < 1e-12


def test_memory_d_rows_use_the_kernel_projection():
    spec = lmu.LMUSpec(memory_d=3, order=6, theta=20, input_d=2, use_bias=True, return_sequences=True,
                       dtype="float64")
    w = kit.case_weights(spec)
    x = _x(2, 60, 2)
    memory = lmu.run(lmu.build(spec, weights=w), x).reshape(2, 60, 3, 6)
    A_bar, B_bar = legendre.discretize(6, 20.0)
    u = x @ w["kernel"] + w["bias"]
    for b in range(2):
        for d in range(3):
            _, y, _ = scipy.signal.dlsim((A_bar, B_bar[:, None], A_bar, B_bar[:, None], 1), u[b, :, d])
            assert kit.relative_error(memory[b, :, d], y) < 1e-12


@pytest.mark.parametrize("kind,act", [("dense", "relu"), ("rnn", "tanh"), ("lstm", "tanh"), ("lstm", "relu")])
def test_hidden_kinds_match_a_plain_loop(kind, act):
    spec = lmu.LMUSpec(memory_d=2, order=5, theta=12, input_d=3, hidden=lmu.Hidden(kind, 7, act),
                       input_to_hidden=True, hidden_to_memory=kind != "dense", use_bias=True,
                       return_sequences=True, dtype="float64")
    w = kit.case_weights(spec, seed=4)
    x = _x(3, 50, 3, seed=2)
    ref = lmu.run(lmu.build(spec, weights=w), x)
    loop = lmu.run(lmu.build(spec, backend=LoopBackend(), weights=w), x)
    assert kit.relative_error(ref, loop) < 1e-12


LTI = [c for c in kit.cases(dtypes=("float64",)) if c.spec.is_lti]


@pytest.mark.parametrize("case", LTI, ids=str)
def test_fft_equals_step_to_1e9(case):
    w = kit.case_weights(case.spec)
    x = kit.case_input(case)
    step = ReferenceLMU(case.spec, w, mode="step")
    fft = ReferenceLMU(case.spec, w, mode="fft")
    assert kit.relative_error(fft.run(x), step.run(x)) <= 1e-9
    # with a nonzero initial state too (the free response of the memory)
    _, state = step.run(x, return_state=True)
    assert kit.relative_error(fft.run(x, state), step.run(x, state)) <= 1e-9


def test_fft_long_sequence_and_big_order():
    spec = lmu.LMUSpec(memory_d=1, order=128, theta=1000, input_d=1, return_sequences=True, dtype="float64")
    w = lmu.init_weights(spec)
    x = _x(1, 5000, 1)
    step, fft = ReferenceLMU(spec, w, mode="step").run(x), ReferenceLMU(spec, w, mode="fft").run(x)
    assert kit.relative_error(fft, step) <= 1e-9


@pytest.mark.parametrize("mode", ["auto", "step"])
def test_nan_propagates_forward_only(mode):
    spec = lmu.LMUSpec(memory_d=1, order=8, theta=10, input_d=1, hidden=lmu.Hidden("dense", 3),
                       return_sequences=True)
    x = _x(2, 40, 1)
    x[0, 20, 0] = np.nan
    y = lmu.run(lmu.build(spec, mode=mode), x)
    assert np.isnan(y[0, 20:]).all() and np.isfinite(y[0, :20]).all() and np.isfinite(y[1]).all()
    x[1, 5, 0] = np.inf
    y = lmu.run(lmu.build(spec, mode=mode), x)
    assert np.isfinite(y[1, :5]).all() and not np.isfinite(y[1, 5:]).all()


def test_dtype_and_shapes():
    for dtype in ("float32", "float64"):
        spec = lmu.LMUSpec(memory_d=2, order=4, theta=8, input_d=1, hidden=lmu.Hidden("lstm", 3), dtype=dtype)
        y, state = lmu.run(lmu.build(spec), _x(5, 7, 1), return_state=True)
        assert y.dtype == dtype and y.shape == (5, 3)
        assert {k: v.shape for k, v in state.items()} == spec.state_shapes(5)
        assert all(v.dtype == dtype for v in state.values())


def test_trainable_theta_weight_wins_over_spec():
    spec = lmu.LMUSpec(memory_d=1, order=6, theta=10, input_d=1, trainable_theta=True, return_sequences=True)
    w = lmu.init_weights(spec)
    x = _x(1, 30, 1)
    longer = lmu.run(lmu.build(spec, weights=w.replace(theta=np.array(20.0))), x)
    other = spec.replace(theta=20.0, trainable_theta=False)
    same = lmu.run(lmu.build(other, weights={"kernel": w["kernel"]}), x)
    assert kit.relative_error(longer, same) < 1e-6


def test_options_are_checked():
    spec = lmu.LMUSpec(memory_d=1, order=4, theta=8, input_d=1, memory_to_memory=True)
    with pytest.raises(ValueError, match="mode='fft' needs an LTI spec"):
        lmu.build(spec, mode="fft")
    with pytest.raises(ValueError, match="mode must be one of"):
        lmu.build(spec, mode="fast")
    with pytest.raises(TypeError, match="only the option mode"):
        lmu.build(spec, dt=0.001)


@pytest.mark.parametrize("mode", ["auto", "step"])
def test_numpy_backend_passes_the_kit(mode):
    report = kit.check_backend("numpy", mode=mode)
    assert report.passed, "\n".join(map(str, report.failures))


def test_numpy_backend_passes_the_kit_in_fft_mode():
    report = kit.check_backend("numpy", battery=[c for c in kit.cases() if c.spec.is_lti], mode="fft")
    assert report.passed, "\n".join(map(str, report.failures))
