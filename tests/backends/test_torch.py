"""The torch backend: the conformance kit in every mode, exact θ gradients, lengths, dropout, weights, bad input."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import lmu  # noqa: E402
import lmu.testing as kit  # noqa: E402
from lmu import legendre  # noqa: E402


def _modes(case):
    spec = case.spec
    modes = ["auto", "step"]
    if spec.is_lti:
        modes += ["fft", "raw"]
        if not spec.return_sequences and (spec.hidden is None or spec.hidden.kind == "dense"):
            modes.append("last")
    return modes


CASES = [(case, mode) for case in kit.cases() for mode in _modes(case)]


@pytest.mark.parametrize("case,mode", CASES, ids=[f"{c.id}-{m}" for c, m in CASES])
def test_conformance(case, mode):
    kit.assert_conforms("torch", case, mode=mode)


def test_backend_refuses_nothing_and_is_listed():
    assert all(not lmu.registry.get_backend("torch").check(c.spec) for c in kit.cases())
    row = next(b for b in lmu.backends() if b.name == "torch")
    assert row.available and row.extra == "torch"


# ---------------------------------------------------------------------------------------------- θ gradients
def _theta_grad_vs_fd(spec, steps, mode, seed=0):
    weights = kit.case_weights(spec, seed)
    model = lmu.build(spec, backend="torch", weights=weights.replace(theta=np.array(spec.theta)), mode=mode)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(2, steps, spec.input_d, dtype=torch.float64, generator=gen)
    target = torch.randn(model(x).shape, dtype=torch.float64, generator=gen)

    def loss():
        return ((model(x) - target) ** 2).mean()

    model.zero_grad()
    loss().backward()
    grad = model.theta.grad.item()
    eps = spec.theta * 1e-6
    values = []
    for delta in (eps, -eps):
        with torch.no_grad():
            model.theta.fill_(spec.theta + delta)
            values.append(loss().item())
    return grad, (values[0] - values[1]) / (2 * eps)


GRAD_CASES = [
    ("zoh", 64, 50.0, 120, lmu.Hidden("rnn", 6), True),
    ("zoh", 96, 80.0, 200, lmu.Hidden("dense", 5, "tanh"), False),
    ("euler", 64, 700.0, 1400, lmu.Hidden("dense", 5, "tanh"), False),
    ("euler", 64, 700.0, 1400, None, True),
]


@pytest.mark.parametrize("disc,order,theta,steps,hidden,seqs", GRAD_CASES)
@pytest.mark.parametrize("mode", ["step", "fft", "raw", "last"])
def test_theta_gradient_matches_finite_differences(disc, order, theta, steps, hidden, seqs, mode):
    assert steps >= 2 * theta and order >= 64
    if mode == "last" and (seqs or (hidden is not None and hidden.kind != "dense")):
        pytest.skip("mode='last' needs return_sequences=False and no recurrent hidden (refused at build)")
    spec = lmu.LMUSpec(memory_d=1, order=order, theta=theta, input_d=1, hidden=hidden, trainable_theta=True,
                       discretizer=disc, return_sequences=seqs, use_bias=True, dtype="float64")
    grad, fd = _theta_grad_vs_fd(spec, steps, mode)
    assert grad == pytest.approx(fd, rel=1e-5, abs=1e-12)


@pytest.mark.parametrize("disc", ["zoh", "euler", "bilinear"])
def test_impulse_response_gradient_is_exact(disc):
    from lmu_torch import compute

    A, B = (torch.as_tensor(a) for a in legendre.continuous(16))
    theta0 = 30.0 if disc != "euler" else 1.5 * legendre.euler_min_theta(16)
    project = torch.randn(90, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    theta = torch.tensor(theta0, dtype=torch.float64, requires_grad=True)
    (compute.impulse_response(theta, A, B, disc, 90) * project).sum().backward()
    eps = theta0 * 1e-6
    values = [(compute.impulse_response(torch.tensor(theta0 + d, dtype=torch.float64), A, B, disc, 90)
               * project).sum().item() for d in (eps, -eps)]
    assert theta.grad.item() == pytest.approx((values[0] - values[1]) / (2 * eps), rel=1e-6)


def test_fixed_theta_impulse_response_is_cached():
    spec = lmu.LMUSpec(memory_d=1, order=8, theta=20, input_d=1, return_sequences=True)
    model = lmu.build(spec, backend="torch", mode="fft")
    H = model.impulse(50)
    assert model.impulse(50) is H
    model.set_weights(lmu.init_weights(spec, seed=3))  # new weights, the same θ: H stays
    assert model.impulse(50) is H
    model.double()  # another dtype: computed again
    assert model.impulse(50).dtype == torch.float64


# ---------------------------------------------------------------------------------------------- lengths
@pytest.mark.parametrize("hidden", [None, lmu.Hidden("dense", 4, "relu"), lmu.Hidden("rnn", 5),
                                    lmu.Hidden("rnn", 5, "sigmoid"), lmu.Hidden("lstm", 3)])
@pytest.mark.parametrize("mode", ["auto", "step", "fft", "raw"])
@pytest.mark.parametrize("seqs", [False, True])
def test_lengths_take_each_sequence_at_its_own_end(hidden, mode, seqs):
    spec = lmu.LMUSpec(memory_d=2, order=6, theta=10, input_d=2, hidden=hidden, input_to_hidden=True,
                       return_sequences=seqs, dtype="float64")
    model = lmu.build(spec, backend="torch", weights=kit.case_weights(spec), mode=mode)
    x = torch.randn(3, 30, 2, dtype=torch.float64)
    lengths = torch.tensor([30, 7, 19])
    out, state = model(x, return_state=True, lengths=lengths)
    for b, n in enumerate(lengths.tolist()):
        alone, alone_state = model(x[b : b + 1, :n], return_state=True)
        if seqs:
            torch.testing.assert_close(out[b : b + 1, :n], alone)
            assert torch.all(out[b, n:] == 0)
        else:
            torch.testing.assert_close(out[b : b + 1], alone)
        for key in alone_state:
            torch.testing.assert_close(state[key][b : b + 1], alone_state[key])


def test_lengths_in_last_mode():
    spec = lmu.LMUSpec(memory_d=1, order=6, theta=10, input_d=1, hidden=lmu.Hidden("dense", 4), dtype="float64")
    model = lmu.build(spec, backend="torch", mode="last")
    x = torch.randn(2, 25, 1, dtype=torch.float64)
    out = model(x, lengths=torch.tensor([25, 9]))
    torch.testing.assert_close(out[1:], model(x[1:, :9]))


# ---------------------------------------------------------------------------------------------- dropout
def test_dropout_mask_is_constant_in_time_and_ignored_at_inference():
    spec = lmu.LMUSpec(memory_d=2, order=6, theta=10, input_d=2, kernel_initializer=None, dropout=0.5,
                       return_sequences=True, dtype="float64")
    model = lmu.build(spec, backend="torch")
    x = torch.randn(16, 40, 2, dtype=torch.float64)
    model.train()
    torch.manual_seed(1)
    y = model(x).reshape(16, 40, 2, 6)
    model.eval()
    dropped = kept = 0
    for b in range(16):
        for d in range(2):
            full = model(x).reshape(16, 40, 2, 6)[b, :, d]
            if torch.allclose(y[b, :, d], 2 * full):
                kept += 1
            else:
                assert torch.allclose(y[b, :, d], torch.zeros_like(full)), "mask not constant over time"
                dropped += 1
    assert dropped > 0 and kept > 0
    ref = lmu.run(lmu.build(spec), x.numpy())
    np.testing.assert_allclose(lmu.run(model, x.numpy()), ref, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("mode", ["fft", "raw"])
def test_dropout_draws_the_same_masks_in_step_and_parallel_modes(mode):
    spec = lmu.LMUSpec(memory_d=1, order=6, theta=10, input_d=3, hidden=lmu.Hidden("rnn", 4), dropout=0.3,
                       return_sequences=True, dtype="float64")
    w = kit.case_weights(spec)
    step, par = (lmu.build(spec, backend="torch", weights=w, mode=m).train() for m in ("step", mode))
    x = torch.randn(4, 30, 3, dtype=torch.float64)
    torch.manual_seed(5)
    a = step(x)
    torch.manual_seed(5)
    torch.testing.assert_close(par(x), a)


def test_recurrent_dropout_acts_in_training_only():
    spec = lmu.LMUSpec(memory_d=1, order=6, theta=10, input_d=1, memory_to_memory=True, recurrent_dropout=0.5,
                       return_sequences=True, dtype="float64")
    w = kit.case_weights(spec)
    model = lmu.build(spec, backend="torch", weights=w.replace(recurrent_kernel=w["recurrent_kernel"] * 50))
    x = torch.randn(2, 30, 1, dtype=torch.float64)
    model.train()
    assert not torch.allclose(model(x), model.eval()(x))
    np.testing.assert_allclose(lmu.run(model, x.numpy()), kit.reference_output(spec, model.get_weights(),
                                                                                  x.numpy()), rtol=1e-9)


# ---------------------------------------------------------------------------------------------- weights
def test_state_dict_round_trip_and_canonical_bias_sum():
    spec = lmu.LMUSpec(memory_d=1, order=8, theta=20, input_d=2, hidden=lmu.Hidden("lstm", 4), use_bias=True,
                       trainable_theta=True, memory_to_memory=True)
    model = lmu.build(spec, backend="torch", weights=kit.case_weights(spec))
    names = set(model.state_dict())
    assert {"kernel", "bias", "recurrent_kernel", "theta", "hidden.weight_ih_l0", "hidden.bias_hh_l0"} <= names
    fresh = lmu.build(spec, backend="torch")
    fresh.load_state_dict(model.state_dict())
    x = torch.randn(2, 15, 2)
    torch.testing.assert_close(fresh(x), model(x))
    with torch.no_grad():
        model.hidden.bias_hh_l0.add_(0.25)
    expected = kit.case_weights(spec)["hidden/bias"] + 0.25
    np.testing.assert_allclose(model.get_weights()["hidden/bias"], expected, rtol=1e-6)


def test_convert_torch_numpy_torch_agrees():
    spec = lmu.LMUSpec(memory_d=2, order=12, theta=30, input_d=3, hidden=lmu.Hidden("lstm", 6),
                       input_to_hidden=True, hidden_to_memory=True, return_sequences=True, dtype="float64")
    model = lmu.build(spec, backend="torch", weights=kit.case_weights(spec, seed=2))
    x = np.random.default_rng(0).normal(size=(2, 50, 3))
    as_numpy = lmu.convert(model, "numpy")
    back = lmu.convert(as_numpy, "torch", mode="step")
    y = lmu.run(model, x)
    assert kit.relative_error(lmu.run(as_numpy, x), y) < 1e-12
    assert kit.relative_error(lmu.run(back, x), y) < 1e-12


def test_training_moves_the_canonical_weights():
    spec = lmu.LMUSpec(memory_d=1, order=8, theta=20, input_d=1, hidden=lmu.Hidden("rnn", 4), trainable_theta=True)
    model = lmu.build(spec, backend="torch")
    before = model.get_weights()
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    x = torch.randn(4, 40, 1)
    for _ in range(3):
        opt.zero_grad()
        model(x).pow(2).mean().backward()
        opt.step()
    after = model.get_weights()
    assert all(not np.allclose(before[n], after[n]) for n in before)


# ---------------------------------------------------------------------------------------------- bad input
@pytest.fixture
def model():
    spec = lmu.LMUSpec(memory_d=1, order=4, theta=8, input_d=2, hidden=lmu.Hidden("lstm", 3))
    return lmu.build(spec, backend="torch")


@pytest.mark.parametrize("x,err,match", [
    (lambda: torch.zeros(5, 2), ValueError, r"3 axes .*unsqueeze\(0\)"),
    (lambda: torch.zeros(1, 5, 3), ValueError, "3 features but LMUSpec.input_d is 2"),
    (lambda: torch.zeros(1, 0, 2), ValueError, "at least one sequence and one time step"),
    (lambda: torch.zeros(1, 5, 2, dtype=torch.int64), TypeError, "dtype torch.int64"),
    (lambda: torch.zeros(1, 5, 2, dtype=torch.float64), TypeError, "float64 but the LMU's parameters are "
                                                                   "torch.float32"),
    (lambda: np.zeros((1, 5, 2)), TypeError, "torch.Tensor"),
])
def test_bad_input(model, x, err, match):
    with pytest.raises(err, match=match):
        model(x())


def test_bad_state_and_lengths(model):
    x = torch.zeros(2, 5, 2)
    with pytest.raises(ValueError, match=r"state\['memory'\] must have shape \(2, 4\)"):
        model(x, state={"memory": torch.zeros(2, 5), "hidden": torch.zeros(2, 3), "cell": torch.zeros(2, 3)})
    with pytest.raises(ValueError, match="exactly the keys"):
        model(x, state={"memory": torch.zeros(2, 4)})
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, T=5\]"):
        model(x, lengths=torch.tensor([5, 6]))
    with pytest.raises(ValueError, match=r"lengths must have shape \(2,\)"):
        model(x, lengths=torch.tensor([5]))
    with pytest.raises(TypeError, match="lengths must hold integers"):
        model(x, lengths=torch.tensor([5.0, 2.0]))


def test_bad_options():
    m2m = lmu.LMUSpec(memory_d=1, order=4, theta=8, input_d=1, memory_to_memory=True)
    with pytest.raises(ValueError, match=r"needs an LTI spec.*memory_to_memory=True.*use mode='step' or 'auto'"):
        lmu.build(m2m, backend="torch", mode="fft")
    seqs = lmu.LMUSpec(memory_d=1, order=4, theta=8, input_d=1, return_sequences=True)
    with pytest.raises(ValueError, match="mode='last' .* return_sequences=False"):
        lmu.build(seqs, backend="torch", mode="last")
    with pytest.raises(ValueError, match="mode must be one of auto, step, fft, raw, last"):
        lmu.build(seqs, backend="torch", mode="fast")
    with pytest.raises(TypeError, match="unknown option.*dt.*mode= and device="):
        lmu.build(seqs, backend="torch", dt=0.001)


def test_nan_does_not_leak_backward_in_parallel_modes():
    spec = lmu.LMUSpec(memory_d=1, order=8, theta=10, input_d=1, hidden=lmu.Hidden("rnn", 3),
                       return_sequences=True)
    x = torch.randn(2, 64, 1)
    x[0, 30, 0] = float("nan")
    x[1, 10, 0] = float("inf")
    for mode in ("fft", "raw"):
        y = lmu.build(spec, backend="torch", mode=mode)(x)
        assert torch.isfinite(y[0, :30]).all() and torch.isnan(y[0, 30:]).all()
        assert torch.isfinite(y[1, :10]).all() and not torch.isfinite(y[1, 10:]).any()
