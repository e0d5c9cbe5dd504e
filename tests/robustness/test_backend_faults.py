"""Backends under abuse: a trainable θ an optimizer throws around stays where the spec is computable, and the
spiking backends propagate NaN and inf like every other backend instead of hiding or crashing on them."""

import numpy as np
import pytest

import lmu
from lmu import legendre


def _spec(discretizer):
    theta = 1.5 * legendre.euler_min_theta(8) if discretizer == "euler" else 20.0
    return lmu.LMUSpec(memory_d=1, order=8, theta=theta, input_d=1, trainable_theta=True, discretizer=discretizer,
                       hidden=lmu.Hidden("dense", 3))


@pytest.mark.parametrize("discretizer", ["zoh", "euler", "bilinear"])
@pytest.mark.parametrize("mode", ["step", "fft", "raw", "last"])
@pytest.mark.parametrize("direction", ["down", "up"])
def test_torch_theta_stays_computable_under_a_huge_learning_rate(discretizer, mode, direction):
    torch = pytest.importorskip("torch")
    spec = _spec(discretizer)
    model = lmu.build(spec, backend="torch", mode=mode)
    low, high = model.theta_range()
    optimizer = torch.optim.SGD([model.theta], lr=1e9, maximize=direction == "up")
    x = torch.randn(4, 50, 1, generator=torch.Generator().manual_seed(0))
    for _ in range(3):
        optimizer.zero_grad()
        model(x).sum().backward()
        optimizer.step()
    theta = float(lmu.get_weights(model)["theta"])  # the weights stay valid: get_weights does not raise
    assert low * (1 - 1e-6) <= theta <= high * (1 + 1e-6) and theta > 0  # (θ is float32)
    assert torch.isfinite(model(x)).all()
    assert np.isfinite(lmu.run(model, x.numpy())).all()


@pytest.mark.parametrize("direction", [1.0, -1.0])
def test_keras_theta_stays_computable_under_a_huge_learning_rate(direction):
    keras = pytest.importorskip("keras")
    pytest.importorskip("keras_lmu")
    import tensorflow as tf

    spec = _spec("zoh")
    layer = lmu.build(spec, backend="keras", mode="rnn")
    theta_inv = layer.cell.theta_inv
    optimizer = keras.optimizers.SGD(1e9)  # applies the variable's constraint after each step, like fit()
    x = tf.constant(np.random.default_rng(0).normal(size=(8, 50, 1)).astype("float32"))
    for _ in range(3):  # θ alone thrown around (the other weights would overflow first)
        with tf.GradientTape() as tape:
            loss = direction * tf.reduce_sum(layer(x))
        optimizer.apply_gradients([(tape.gradient(loss, theta_inv), theta_inv)])
    low, high = legendre.theta_range(spec.order, spec.discretizer, spec.dtype, spec.theta)
    theta = float(lmu.get_weights(layer)["theta"])
    assert low * 0.999 <= theta <= high * 1.001
    assert np.isfinite(lmu.run(layer, x.numpy())).all()


def _nan_input(steps=60):
    x = np.random.default_rng(0).normal(size=(3, steps, 1)) * 0.3
    x[0, 20, 0] = np.nan
    x[1, 35, 0] = np.inf
    x[2, 45, 0] = -np.inf
    return x


def _assert_propagates(y, first=(20, 35, 45)):
    for row, t in enumerate(first):
        assert np.isfinite(y[row, :t]).all(), f"sequence {row} turned non-finite before its first bad step"
        assert not np.isfinite(y[row, t:]).any(), f"sequence {row} hid its non-finite input from step {t} on"


@pytest.mark.parametrize("neuron_type", ["LIFRate", "LIF", "SpikingRectifiedLinear"])
def test_nengo_neurons_propagate_nan_and_inf(neuron_type):
    nengo = pytest.importorskip("nengo")
    spec = lmu.LMUSpec(memory_d=1, order=4, theta=30, input_d=1, hidden=lmu.Hidden("dense", 3, "relu"),
                       return_sequences=True)
    net = lmu.build(spec, backend="nengo", neurons=30, neuron_type=getattr(nengo, neuron_type)(), seed=0)
    _assert_propagates(lmu.run(net, _nan_input()))


def test_loihi_propagates_nan_and_inf():
    pytest.importorskip("nengo_loihi")
    spec = lmu.LMUSpec(memory_d=1, order=4, theta=30, input_d=1, return_sequences=True)
    net = lmu.build(spec, backend="loihi", neurons=20, seed=0)
    _assert_propagates(lmu.run(net, _nan_input()))
