"""``lmu.convert_model``: a whole Keras model shaped like keras-lmu's psMNIST example (an LMU with a SimpleRNN
hidden cell fed the memory and the input, then Dense(10)), trained briefly in Keras, moved to torch and NumPy.

The converted models are compared with a float64 computation of the same weights (the NumPy model) and with Keras'
own predictions within float32 tolerance (at this T keras-lmu's float32 drift is small); each can fail.
"""

import numpy as np
import pytest

pytest.importorskip("keras_lmu")
torch = pytest.importorskip("torch")

import lmu  # noqa: E402


def _psmnist_like(steps=98, dropout=False, extra=None):
    import keras
    import keras_lmu

    layers = [keras.Input((steps, 1)),
              keras_lmu.LMU(memory_d=1, order=32, theta=steps, hidden_cell=keras.layers.SimpleRNNCell(24),
                            hidden_to_memory=False, memory_to_memory=False, input_to_hidden=True,
                            kernel_initializer="ones")]
    if dropout:
        layers.append(keras.layers.Dropout(0.2))
    if extra is not None:
        layers.append(extra)
    layers.append(keras.layers.Dense(10))
    model = keras.Sequential(layers)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, steps, 1)).astype("float32"), rng.integers(0, 10, 64)
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)  # trained: the weights are no longer the initial ones
    return model, x[:8]


@pytest.fixture(scope="module")
def trained():
    return _psmnist_like(dropout=True)


def test_a_trained_keras_model_moves_whole_to_torch_and_numpy(trained, tmp_path):
    model, x = trained
    keras_out = np.asarray(model(x, training=False))
    reference = lmu.convert_model(model, backend="numpy")  # float64 inside
    truth = reference(x)
    net = lmu.convert_model(model, backend="torch").eval()
    assert isinstance(net, torch.nn.Sequential)
    assert sum(p.numel() for p in net.parameters()) == sum(int(np.prod(w.shape)) for w in model.weights)
    with torch.no_grad():
        torch_out = net(torch.as_tensor(x)).numpy()
    scale = np.abs(truth).max()
    assert np.abs(torch_out - truth).max() / scale < 2e-5
    assert np.abs(keras_out - truth).max() / scale < 1e-4
    path = tmp_path / "model.keras"
    model.save(path)
    from_file = lmu.convert_model(str(path), backend="torch", mode="step").eval()
    with torch.no_grad():
        np.testing.assert_allclose(from_file(torch.as_tensor(x)).numpy(), torch_out, atol=2e-5)


def test_unsupported_layers_are_refused_by_name_and_type():
    import keras

    model, _ = _psmnist_like(steps=20, extra=keras.layers.LayerNormalization(name="norm"))
    with pytest.raises(lmu.UnsupportedSpec, match=r"layer 'norm' of type .*LayerNormalization.* supports "
                                                  r"InputLayer, keras_lmu\.LMU"):
        lmu.convert_model(model, backend="torch")
    with pytest.raises(lmu.ArgumentError, match="keras.Model or a .keras path"):
        lmu.convert_model(object(), backend="numpy")
