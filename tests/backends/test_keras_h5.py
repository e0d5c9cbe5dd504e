"""Keras 3 weights-only files (``model.save_weights("m.weights.h5")``) of keras-lmu layers into lmu:
``lmu.from_keras(path, spec=...)`` reads the one keras-lmu layer's variables (h5py, read-only) and the numpy model
built from them gives the keras layer's output; clear refusals for what does not fit."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("keras_lmu")
pytest.importorskip("h5py")

import keras  # noqa: E402
import keras_lmu  # noqa: E402

import lmu  # noqa: E402
from lmu.testing import relative_error  # noqa: E402

pytestmark = [pytest.mark.filterwarnings("ignore:Approximating unknown impulse length"),
              pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")]

TOL = 2e-5
T = 10

KINDS = {
    "lmu_rnn_hidden": (
        lambda: keras_lmu.LMU(memory_d=1, order=6, theta=5, hidden_cell=keras.layers.SimpleRNNCell(5)),
        lmu.LMUSpec(memory_d=1, order=6, theta=5, input_d=2, hidden=lmu.Hidden("rnn", 5))),
    "lmu_lstm_trainable_theta": (
        lambda: keras_lmu.LMU(memory_d=2, order=4, theta=6, trainable_theta=True, use_bias=True,
                              hidden_cell=keras.layers.LSTMCell(3), return_sequences=True),
        lmu.LMUSpec(memory_d=2, order=4, theta=6, input_d=2, trainable_theta=True, use_bias=True,
                    hidden=lmu.Hidden("lstm", 3), return_sequences=True)),
    "lmu_memory_to_memory": (
        lambda: keras_lmu.LMU(memory_d=2, order=4, theta=7, memory_to_memory=True, use_bias=True,
                              input_to_hidden=True, hidden_cell=keras.layers.SimpleRNNCell(4)),
        lmu.LMUSpec(memory_d=2, order=4, theta=7, input_d=2, memory_to_memory=True, use_bias=True,
                    input_to_hidden=True, hidden=lmu.Hidden("rnn", 4))),
    "lmu_hidden_none": (
        lambda: keras_lmu.LMU(memory_d=2, order=4, theta=5, hidden_cell=None, return_sequences=True),
        lmu.LMUSpec(memory_d=2, order=4, theta=5, input_d=2, hidden=None, return_sequences=True)),
    "rnn_lmucell_dense_trainable_theta": (
        lambda: keras.layers.RNN(keras_lmu.LMUCell(memory_d=1, order=5, theta=8, trainable_theta=True,
                                                   hidden_cell=keras.layers.Dense(4, activation="tanh"))),
        lmu.LMUSpec(memory_d=1, order=5, theta=8, input_d=2, trainable_theta=True,
                    hidden=lmu.Hidden("dense", 4, "tanh"))),
    "feedforward_dense": (
        lambda: keras_lmu.LMUFeedforward(memory_d=1, order=4, theta=5, hidden_cell=keras.layers.Dense(3),
                                         return_sequences=True),
        lmu.LMUSpec(memory_d=1, order=4, theta=5, input_d=2, hidden=lmu.Hidden("dense", 3, "linear"),
                    return_sequences=True)),
}


def _x(seed=0):
    return np.random.default_rng(seed).normal(size=(2, T, 2)).astype("float32")


def _saved(tmp_path, make, n_lmu=1, seed=1):
    """A small model around keras-lmu layer(s), its variables set to random values (theta_inv > 0), saved."""
    rng = np.random.default_rng(seed)
    inp = keras.Input((T, 2))
    layers = [make() for _ in range(n_lmu)]
    outs = [layer(inp) for layer in layers]
    out = keras.layers.Concatenate()(outs) if n_lmu > 1 else outs[0]
    model = keras.Model(inp, keras.layers.Dense(3)(out))
    for v in model.weights:
        value = rng.uniform(0.05, 0.2) if v.name == "theta_inv" else rng.normal(scale=0.4, size=v.shape)
        v.assign(np.asarray(value, dtype="float32"))
    path = tmp_path / "m.weights.h5"
    model.save_weights(path)
    return model, layers, path


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_weights_only_file_imports_exactly(tmp_path, kind):
    make, expected = KINDS[kind]
    _, (layer,), path = _saved(tmp_path, make)
    spec, weights = lmu.from_keras(path, spec=expected)
    assert spec == expected
    assert spec == lmu.from_keras(layer)[0]  # the spec a live import would give
    live = lmu.from_keras(layer)[1]
    assert sorted(weights) == sorted(live)
    for name in live:
        np.testing.assert_allclose(weights[name], live[name], rtol=1e-7, atol=0, err_msg=name)

    x = _x()
    out_keras = np.asarray(layer(x))
    out_numpy = lmu.run(lmu.build(spec, backend="numpy", weights=weights), x)
    assert out_keras.shape == out_numpy.shape
    assert np.abs(out_keras).max() > 1e-3
    assert relative_error(out_numpy, out_keras) < TOL


def test_str_path_and_h5_suffix(tmp_path):
    make, expected = KINDS["lmu_rnn_hidden"]
    _, (layer,), path = _saved(tmp_path, make)
    plain = tmp_path / "copy.h5"
    plain.write_bytes(path.read_bytes())
    _, w = lmu.from_keras(str(plain), spec=expected)
    np.testing.assert_array_equal(w["kernel"], lmu.from_keras(layer)[1]["kernel"])


def test_no_spec_is_refused(tmp_path):
    _, _, path = _saved(tmp_path, KINDS["lmu_rnn_hidden"][0])
    with pytest.raises(ValueError, match="holds no configuration.*spec="):
        lmu.from_keras(path)


def test_spec_that_fits_no_group(tmp_path):
    _, _, path = _saved(tmp_path, KINDS["lmu_rnn_hidden"][0])
    wrong = lmu.LMUSpec(memory_d=1, order=6, theta=5, input_d=2, hidden=lmu.Hidden("rnn", 5), use_bias=True)
    with pytest.raises(ValueError, match=r"m\.weights\.h5.*bias \(1,\).*found.*hidden_cell.*\(4?\d?, 5\)") as err:
        lmu.from_keras(path, spec=wrong)
    assert "/lmu/layer" in str(err.value)  # Keras 3: /layers/lmu/layer; Keras 2: /_layer_checkpoint_dependencies/…
    lstm = lmu.LMUSpec(memory_d=1, order=6, theta=5, input_d=2, hidden=lmu.Hidden("lstm", 5))
    with pytest.raises(ValueError, match="no keras-lmu layer .* fits the spec"):
        lmu.from_keras(path, spec=lstm)


def test_two_fitting_layers_are_refused_and_group_picks_one(tmp_path):
    make, expected = KINDS["lmu_rnn_hidden"]
    _, layers, path = _saved(tmp_path, make, n_lmu=2)
    with pytest.raises(ValueError, match="several groups .* fit the spec.*group="):
        lmu.from_keras(path, spec=expected)
    from lmu_keras.h5 import weights_from_h5

    import h5py

    with h5py.File(path, "r") as f:
        top = "layers" if "layers" in f else "_layer_checkpoint_dependencies"  # Keras 3 or Keras 2 layout
        names = sorted(f"{top}/{k}" for k in f[top] if k.startswith("lmu"))
    assert len(names) == 2
    for name in names:
        w = weights_from_h5(path, expected, group=name)
        hits = [layer for layer in layers
                if np.array_equal(w["kernel"], lmu.from_keras(layer)[1]["kernel"])]
        assert len(hits) == 1
    with pytest.raises(ValueError, match="has no group"):
        weights_from_h5(path, expected, group="layers/nope")


def test_spec_with_a_layer_is_refused():
    layer = KINDS["lmu_rnn_hidden"][0]()
    layer.build((None, T, 2))
    with pytest.raises(ValueError, match="spec= is only for a weights-only"):
        lmu.from_keras(layer, spec=KINDS["lmu_rnn_hidden"][1])


def test_not_hdf5_and_legacy_h5(tmp_path):
    bad = tmp_path / "bad.weights.h5"
    bad.write_bytes(b"not hdf5")
    spec = KINDS["lmu_rnn_hidden"][1]
    with pytest.raises(ValueError, match="not a readable HDF5 file"):
        lmu.from_keras(bad, spec=spec)
    model, _, _ = _saved(tmp_path, KINDS["lmu_rnn_hidden"][0])
    legacy = tmp_path / "legacy.h5"
    try:
        model.save(legacy)  # Keras 3 still writes the legacy whole-model .h5 layout
    except Exception as err:  # pragma: no cover - depends on Keras/keras-lmu serialization
        pytest.skip(f"Keras could not write a legacy .h5 here: {err}")
    with pytest.raises(ValueError, match="legacy"):
        lmu.from_keras(legacy, spec=spec)
