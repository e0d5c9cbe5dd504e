"""``lmu_torch.LMU`` as a PyTorch user makes it: the native constructor, an ordinary ``nn.Module`` (state_dict,
deepcopy, torch.save, nn.Sequential, batch_first), and its precisions (``.double()``, ``.half()``, bfloat16),
with ``lmu.spec_of`` true to the parameters' dtype. Each result is compared with the spec route
(``lmu.build``) or the float64 computation.
"""

import copy
import io
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import lmu  # noqa: E402
import lmu_torch  # noqa: E402
from lmu.weights import weight_shapes  # noqa: E402
from lmu_torch import LMU  # noqa: E402


def _native(**kw):
    args = dict(input_size=2, memory_size=3, order=8, theta=12.0, hidden_size=5)
    args.update(kw)
    return LMU(**args)


def test_native_constructor_makes_the_spec_it_names():
    layer = _native(hidden="lstm", theta=30.0, return_sequences=True, input_to_hidden=True, discretizer="euler",
                    trainable_theta=True)
    spec = lmu.spec_of(layer)
    assert (spec.input_d, spec.memory_d, spec.order, spec.theta) == (2, 3, 8, 30.0)
    assert spec.hidden == lmu.Hidden("lstm", 5)
    assert spec.return_sequences and spec.input_to_hidden and spec.trainable_theta
    assert spec.discretizer == "euler" and spec.dtype == "float32"
    assert lmu.spec_of(_native(hidden_size=None)).hidden is None
    assert lmu.spec_of(_native(bias=False)).hidden.use_bias is False
    assert lmu.spec_of(_native(hidden=lmu.Hidden("dense", 5, "relu"))).hidden.activation == "relu"
    assert lmu.spec_of(_native(dtype=torch.float64)).dtype == "float64"


def test_native_constructor_initialises_like_keras_and_follows_the_torch_seed():
    torch.manual_seed(3)
    a = _native(hidden="lstm")
    torch.manual_seed(3)
    b = _native(hidden="lstm")
    c = _native(hidden="lstm")
    wa, wb, wc = (lmu.get_weights(m) for m in (a, b, c))
    assert all(np.array_equal(wa[k], wb[k]) for k in wa)
    assert not np.array_equal(wa["kernel"], wc["kernel"])
    # Keras' scheme: zero biases but the LSTM forget gate, orthogonal recurrent kernel
    assert np.array_equal(wa["hidden/bias"], np.r_[np.zeros(5), np.ones(5), np.zeros(10)])
    rk = wa["hidden/recurrent_kernel"]  # (5, 20): orthogonal rows
    np.testing.assert_allclose(rk @ rk.T, np.eye(5), atol=1e-5)
    a.reset_parameters()
    assert not np.array_equal(lmu.get_weights(a)["kernel"], wa["kernel"])


@pytest.mark.parametrize("bad,match", [
    (dict(memory_size=None), "memory_size"),
    (dict(colour="red"), "unknown keyword"),
    (dict(memory_d=3), "unknown keyword"),
    (dict(order=0), "order"),
    (dict(hidden="gru"), "kind"),
    (dict(batch_first="yes"), "batch_first"),
    (dict(mode="fast"), "mode"),
])
def test_native_constructor_refuses_bad_arguments_by_name(bad, match):
    with pytest.raises(lmu.LMUError, match=match):
        _native(**bad)


def test_from_spec_and_the_deprecated_spec_form_build_the_same_module():
    spec = lmu.LMUSpec(memory_d=1, order=8, theta=20, input_d=1, hidden=lmu.Hidden("rnn", 4))
    weights = lmu.init_weights(spec, seed=1)
    new = LMU.from_spec(spec, weights, mode="raw")
    with pytest.warns(DeprecationWarning, match="from_spec"):
        old = LMU(spec, weights, mode="raw")
    x = torch.randn(2, 30, 1)
    torch.testing.assert_close(new(x), old(x), rtol=0, atol=0)
    assert lmu.spec_of(new) == spec and new.mode == "raw"


@pytest.mark.parametrize("mode", ["step", "fft", "raw"])
def test_state_dict_round_trips_between_modes_and_through_torch_save(mode):
    torch.manual_seed(0)
    source = _native(hidden="lstm", return_sequences=True, mode="fft")
    buffer = io.BytesIO()
    torch.save(source.state_dict(), buffer)
    buffer.seek(0)
    torch.manual_seed(1)
    target = _native(hidden="lstm", return_sequences=True, mode=mode)
    target.load_state_dict(torch.load(buffer, weights_only=True))
    x = torch.randn(3, 40, 2)
    torch.testing.assert_close(target(x), source(x), atol=1e-5, rtol=1e-5)
    twin = copy.deepcopy(target)
    torch.testing.assert_close(twin(x), target(x), atol=0, rtol=0)
    assert twin.kernel is not target.kernel


def test_sequential_convert_and_get_weights_work_on_a_native_layer():
    torch.manual_seed(0)
    net = torch.nn.Sequential(_native(), torch.nn.Linear(5, 10))
    x = torch.randn(4, 30, 2)
    assert net(x).shape == (4, 10)
    layer = net[0]
    reference = lmu.convert(layer, "numpy")
    np.testing.assert_allclose(lmu.run(reference, x.numpy()), layer(x).detach().numpy(), atol=2e-5)
    assert set(lmu.get_weights(layer)) == set(weight_shapes(lmu.spec_of(layer)))


def test_batch_first_false_takes_and_returns_time_first():
    torch.manual_seed(0)
    first = _native(return_sequences=True)
    second = LMU.from_spec(lmu.spec_of(first), lmu.get_weights(first), batch_first=False)
    x = torch.randn(3, 25, 2)
    torch.testing.assert_close(second(x.transpose(0, 1)), first(x).transpose(0, 1), atol=0, rtol=0)
    last = LMU.from_spec(lmu.spec_of(first).replace(return_sequences=False), lmu.get_weights(first),
                         batch_first=False)
    assert last(x.transpose(0, 1)).shape == (3, 5)


def _float64_truth(layer, x):
    twin = copy.deepcopy(layer).double()
    with torch.no_grad():
        return twin(x.double())


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float16, 2e-2), (torch.bfloat16, 1e-1)])
@pytest.mark.parametrize("mode", ["step", "fft", "raw"])
def test_precisions_keep_the_spec_true_and_compute_the_memory_in_float32(dtype, tol, mode):
    torch.manual_seed(0)
    layer = _native(hidden="lstm", return_sequences=True, mode=mode)
    x = torch.randn(2, 60, 2)
    truth = _float64_truth(layer, x)
    layer.to(dtype)
    name = str(dtype).removeprefix("torch.")
    assert lmu.spec_of(layer).dtype == name
    assert all(p.dtype == dtype for p in layer.parameters())
    with torch.no_grad():
        y, state = layer(x.to(dtype), return_state=True)
    assert y.dtype == dtype
    assert state["memory"].dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
    err = float((y.double() - truth).abs().max() / truth.abs().max())
    assert err <= tol, f"{name} output is {err:.3g} from float64"
    weights = lmu.get_weights(layer)
    assert weights.spec.dtype == name
    back = lmu.build(weights.spec, backend="torch", weights=weights, mode=mode)
    torch.testing.assert_close(back(x.to(dtype)), y, atol=0, rtol=0)


def test_half_specs_are_refused_by_backends_that_do_not_compute_them():
    spec = lmu.LMUSpec(memory_d=1, order=4, theta=8, input_d=1, dtype="float16")
    with pytest.raises(lmu.UnsupportedSpec, match="float16"):
        lmu.build(spec, backend="numpy")
    module = lmu.build(spec, backend="torch")
    out = lmu.run(module, np.ones((1, 5, 1)))
    assert out.dtype == np.float16


def test_autocast_runs_a_native_layer():
    torch.manual_seed(0)
    layer = _native(hidden="rnn", return_sequences=True)
    x = torch.randn(2, 40, 2)
    with torch.no_grad():
        reference = layer(x)
        with torch.autocast("cpu", dtype=torch.bfloat16), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            y = layer(x)
    assert float((y.float() - reference).abs().max()) < 5e-2
    assert lmu_torch.LMU is LMU
