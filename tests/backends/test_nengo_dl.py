"""The nengo_dl backend (its own environment: TensorFlow 2.12): conformance, trained weights, psMNIST in small."""

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
pytest.importorskip("nengo_dl")
if lmu_unusable := __import__("lmu").registry.get_backend("nengo_dl").unavailable():
    pytest.skip(lmu_unusable, allow_module_level=True)

import lmu  # noqa: E402
import lmu.testing as kit  # noqa: E402

tf = pytest.importorskip("tensorflow")
BACKEND = lmu.registry.get_backend("nengo_dl")
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")


@pytest.mark.parametrize("case", kit.cases(), ids=str)
def test_conformance(case):
    kit.assert_conforms("nengo_dl", case)


def test_refuses_nothing_and_fixes_what_is_not_a_weight():
    import nengo
    from lmu_nengo_dl import LMUNetworkDL

    assert all(not BACKEND.check(c.spec) for c in kit.cases())
    spec = lmu.LMUSpec(memory_d=2, order=4, theta=10, input_d=1, hidden=lmu.Hidden("lstm", 3), use_bias=True)
    net = lmu.build(spec, backend="nengo_dl")
    assert isinstance(net, LMUNetworkDL) and isinstance(net, nengo.Network)
    trainable = {c for c in net.all_connections if net.config[c].trainable}
    assert trainable == {p.obj for p in net.pieces}
    assert {p.name for p in net.pieces} == {"kernel", "bias", "hidden/kernel", "hidden/recurrent_kernel",
                                              "hidden/bias"}
    assert not any(net.config[e].trainable for e in net.all_ensembles)
    with pytest.raises(TypeError, match="unknown option.*neurons"):
        lmu.build(spec, backend="nengo_dl", neurons=10)


def _digits():
    """scikit-learn's 8×8 digits as permuted sequences: 64 steps of one pixel, a fixed permutation."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.data / 16.0)[:, np.random.default_rng(0).permutation(64)][..., None]
    order = np.random.default_rng(1).permutation(len(x))
    x, y = x[order], digits.target[order]
    return (x[:1200], y[:1200]), (x[1200:1700], y[1200:1700])


def test_psmnist_architecture_trains_in_nengo_dl_and_predicts_the_same_in_numpy():
    from lmu_nengo_dl import Trainer

    (x_train, y_train), (x_test, y_test) = _digits()
    spec = lmu.LMUSpec(memory_d=1, order=16, theta=64, input_d=1, hidden=lmu.Hidden("rnn", 32),
                       input_to_hidden=True, kernel_initializer="ones")  # keras-lmu's psMNIST model, scaled down
    tf.random.set_seed(0)
    net = lmu.build(spec, backend="nengo_dl")
    before = lmu.get_weights(net)
    with Trainer(net, n_outputs=10, minibatch_size=100, seed=0) as trainer:
        trainer.compile(tf.optimizers.Adam(1e-2), tf.losses.SparseCategoricalCrossentropy(from_logits=True),
                        ["accuracy"])
        trainer.fit(x_train, y_train, epochs=6)
        accuracy = trainer.evaluate(x_test, y_test)["probe_accuracy"]
        from_sim = lmu.get_weights(trainer.sim)  # the trained values, read from the simulator
        with pytest.raises(ValueError, match="set the weights on the network and build a new"):
            lmu.set_weights(trainer.sim, before)
        trainer.freeze_params()
        W, b = trainer.readout_weights()
        predicted = trainer.predict(x_test).argmax(-1)
    print(f"psMNIST (8x8 digits, order 16, rnn 32) test accuracy in NengoDL: {accuracy:.3f}")
    assert accuracy >= 0.70
    trained = lmu.get_weights(net)
    for name in trained:
        np.testing.assert_allclose(trained[name], from_sim[name], rtol=1e-6, atol=1e-7)
    assert not np.allclose(trained["hidden/kernel"], before["hidden/kernel"])
    logits = lmu.run(lmu.convert(net, "numpy"), x_test) @ W + b
    assert np.mean(logits[: len(predicted)].argmax(-1) == predicted) >= 0.99


def test_weights_from_another_framework_fine_tune_here(tmp_path):
    """A model trained elsewhere arrives as an .npz file (the environments are separate) and trains on here."""
    from lmu_nengo_dl import Trainer

    spec = lmu.LMUSpec(memory_d=1, order=6, theta=20, input_d=1, hidden=lmu.Hidden("dense", 4, "tanh"),
                       return_sequences=True)
    path = tmp_path / "trained.npz"
    lmu.save_weights(path, spec, kit.case_weights(spec))
    spec, weights = lmu.load_weights(path)
    net = lmu.build(spec, backend="nengo_dl", weights=weights)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 30, 1))
    target = np.tanh(np.cumsum(x, axis=1) / 5)[..., [0, 0, 0, 0]]
    with Trainer(net, minibatch_size=20) as trainer:
        np.testing.assert_allclose(trainer.predict(x), lmu.run(lmu.build(spec, weights=weights), x), atol=1e-5)
        trainer.compile(tf.optimizers.Adam(5e-2), tf.losses.MeanSquaredError())
        first = trainer.evaluate(x, target)["loss"]
        trainer.fit(x, target, epochs=30)
        last = trainer.evaluate(x, target)["loss"]
        trainer.freeze_params()
        tuned = trainer.predict(x)
    assert last < 0.7 * first, (first, last)
    np.testing.assert_allclose(lmu.run(lmu.convert(net, "numpy"), x), tuned, atol=1e-5)
