"""The torch hidden cell trains exactly the canonical weights: one bias, as in Keras (issue 14).

``nn.RNN`` and ``nn.LSTM`` keep two biases; lmu's subclasses keep ``bias_hh_l0`` as a zero buffer, so the trainable
parameters are the canonical weights one for one, the fused kernel still runs, and one optimizer step moves them as
Keras moves its own.
"""

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import lmu  # noqa: E402
import lmu.testing as kit  # noqa: E402
from torch import nn  # noqa: E402

HIDDENS = {"rnn": lmu.Hidden("rnn", 5), "lstm": lmu.Hidden("lstm", 5),
           "looped": lmu.Hidden("rnn", 5, activation="sigmoid")}  # a LoopCell: torch's fused RNN has no sigmoid


def _spec(name, dtype="float64", **kw):
    return lmu.LMUSpec(memory_d=2, order=8, theta=10, input_d=3, hidden=HIDDENS[name], dtype=dtype, **kw)


def _x(dtype=torch.float64, seed=0):
    return torch.randn(4, 12, 3, dtype=dtype, generator=torch.Generator().manual_seed(seed))


def _model(name, dtype="float64"):
    spec = _spec(name, dtype)
    return lmu.build(spec, backend="torch", weights=kit.case_weights(spec))


def test_the_psmnist_classifier_has_as_many_parameters_as_in_keras():
    spec = lmu.LMUSpec(memory_d=1, order=256, theta=784, input_d=1, hidden=lmu.Hidden("rnn", 212),
                       input_to_hidden=True)
    net = nn.Sequential(lmu.build(spec, backend="torch"), nn.Linear(212, 10))
    assert sum(p.numel() for p in net.parameters() if p.requires_grad) == 101_771


@pytest.mark.parametrize("name", HIDDENS)
def test_the_trainable_parameters_are_the_canonical_weights_one_for_one(name):
    model = _model(name)
    params = dict(model.named_parameters())
    assert not [n for n in params if "bias_hh" in n]
    assert torch.equal(model.hidden.bias_hh_l0, torch.zeros_like(model.hidden.bias_hh_l0))
    assert "hidden.bias_hh_l0" in dict(model.named_buffers())
    weights = model.get_weights()
    assert sum(p.numel() for p in params.values()) == sum(np.size(a) for a in weights.values())
    np.testing.assert_array_equal(params["hidden.bias_ih_l0"].detach().numpy(), weights["hidden/bias"])
    if name != "looped":
        assert isinstance(model.hidden, nn.RNN if name == "rnn" else nn.LSTM)
        # the fused kernel reads _flat_weights: they are the module's own tensors, the buffer included
        assert [w is getattr(model.hidden, n) for n, w in
                zip(model.hidden._flat_weights_names, model.hidden._flat_weights)] == [True] * 4


@pytest.mark.parametrize("name", HIDDENS)
def test_the_output_matches_the_reference_and_only_the_canonical_bias_gets_a_gradient(name):
    model = _model(name)
    x = _x()
    y = model(x)
    np.testing.assert_allclose(y.detach().numpy(), kit.reference_output(model.lmu_spec, model.get_weights(),
                                                                        x.numpy()), rtol=1e-10, atol=1e-12)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    y.pow(2).mean().backward()
    assert model.hidden.bias_ih_l0.grad.abs().max() > 0 and model.hidden.bias_hh_l0.grad is None
    opt.step()
    assert not model.hidden.bias_hh_l0.any()


@pytest.mark.parametrize("name", HIDDENS)
def test_state_dict_round_trips_with_the_zero_buffer(name):
    model = _model(name)
    state = model.state_dict()
    assert "hidden.bias_hh_l0" in state and not state["hidden.bias_hh_l0"].any()
    fresh = lmu.build(model.lmu_spec, backend="torch")
    fresh.load_state_dict(state)
    x = _x()
    torch.testing.assert_close(fresh(x), model(x), rtol=0, atol=0)
    assert fresh.get_weights() == model.get_weights()


@pytest.mark.parametrize("name", HIDDENS)
def test_an_old_state_dict_with_two_biases_loads_with_them_summed(name):
    model = _model(name)
    old = {k: v.clone() for k, v in model.state_dict().items()}
    split = torch.linspace(-0.3, 0.3, old["hidden.bias_ih_l0"].numel(), dtype=torch.float64)
    old["hidden.bias_ih_l0"] -= split  # the same sum, split over two biases as torch's own modules keep it
    old["hidden.bias_hh_l0"] = split.clone()
    kept = {k: v.clone() for k, v in old.items()}
    fresh = lmu.build(model.lmu_spec, backend="torch")
    fresh.load_state_dict(old)
    assert all(torch.equal(old[k], kept[k]) for k in old)  # the caller's dict and tensors are untouched
    assert not fresh.hidden.bias_hh_l0.any()
    torch.testing.assert_close(fresh.hidden.bias_ih_l0, model.hidden.bias_ih_l0, rtol=0, atol=1e-15)
    x = _x()
    torch.testing.assert_close(fresh(x), model(x), rtol=1e-12, atol=1e-12)
    if name != "looped":  # and torch's own two-bias module with the old weights computes the same
        z_d, kind = model.lmu_spec.z_d, nn.RNN if name == "rnn" else nn.LSTM
        plain = kind(z_d, 5, batch_first=True, dtype=torch.float64)
        plain.load_state_dict({k[len("hidden."):]: v for k, v in old.items() if k.startswith("hidden.")})
        z = torch.randn(2, 7, z_d, dtype=torch.float64)
        torch.testing.assert_close(fresh.hidden(z)[0], plain(z)[0], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", HIDDENS)
def test_deepcopy_and_dtype_moves_keep_the_flat_weights_and_the_buffer(name):
    model = _model(name, dtype="float32")
    x = _x(torch.float32)
    twin = copy.deepcopy(model)
    torch.testing.assert_close(twin(x), model(x), rtol=0, atol=0)
    with torch.no_grad():
        twin.hidden.bias_ih_l0.add_(1.0)
    assert not torch.equal(twin(x), model(x))  # its own tensors, flat weights included
    wide = copy.deepcopy(model).double()
    assert wide.hidden.bias_hh_l0.dtype == torch.float64 and not wide.hidden.bias_hh_l0.any()
    assert not [n for n, _ in wide.named_parameters() if "bias_hh" in n]
    if name != "looped":
        assert all(w.dtype == torch.float64 for w in wide.hidden._flat_weights)
        assert wide.hidden._flat_weights[3] is wide.hidden.bias_hh_l0
    y = wide(x.double())
    assert y.dtype == torch.float64
    torch.testing.assert_close(y.float(), model(x), rtol=1e-5, atol=1e-5)
    back = wide.to("cpu", torch.float32)
    assert back.hidden.bias_hh_l0.dtype == torch.float32 and back(x).dtype == torch.float32


# ------------------------------------------------------------------------------------- one Adam step vs Keras
B1, B2, KERAS_EPS, LR = 0.9, 0.999, 1e-7, 1e-2


def _torch_adam_eps(keras_eps=KERAS_EPS, beta_2=B2):
    """Keras adds ε to ``√v`` before the bias correction, torch after it:
    Keras' ``lr·√(1−β₂ᵗ)/(1−β₁ᵗ)·m/(√v + ε)`` is torch's ``lr/(1−β₁ᵗ)·m/(√v/√(1−β₂ᵗ) + ε′)`` with
    ``ε′ = ε/√(1−β₂ᵗ)``, here for the first step (t = 1)."""
    return keras_eps / np.sqrt(1 - beta_2)


def _one_adam_step_torch(spec, weights, x, target):
    model = lmu.build(spec, backend="torch", weights=weights)
    opt = torch.optim.Adam(model.parameters(), lr=LR, betas=(B1, B2), eps=_torch_adam_eps())
    loss = ((model(torch.as_tensor(x)) - torch.as_tensor(target)) ** 2).mean()
    loss.backward()
    opt.step()
    return model.get_weights()


def _one_adam_step_keras(spec, weights, x, target):
    import keras
    import tensorflow as tf

    layer = lmu.build(spec, backend="keras", weights=weights)
    opt = keras.optimizers.Adam(learning_rate=LR, beta_1=B1, beta_2=B2, epsilon=KERAS_EPS)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean((layer(tf.constant(x), training=True) - target) ** 2)
    variables = layer.trainable_variables
    opt.apply_gradients(zip(tape.gradient(loss, variables), variables))
    return lmu.get_weights(layer)


@pytest.mark.parametrize("name", ["rnn", "lstm"])
def test_one_adam_step_moves_the_canonical_weights_as_keras_does(name):
    pytest.importorskip("keras_lmu")
    spec = _spec(name, trainable_theta=False)
    weights = kit.case_weights(spec)
    rng = np.random.default_rng(1)
    x, target = rng.normal(size=(4, 12, 3)), rng.normal(size=(4, 5))
    in_torch = _one_adam_step_torch(spec, weights, x, target)
    in_keras = _one_adam_step_keras(spec, weights, x, target)
    assert sorted(in_torch) == sorted(in_keras) == sorted(weights)
    for key in weights:
        assert np.abs(in_keras[key] - weights[key]).max() > 5e-3, key  # Adam's first step moves each by ≈ lr
        # 7e-8 measured: Keras keeps lr and the betas in float32 (√(1−β₂) is 6e-6 off); two biases give 1e-2
        np.testing.assert_allclose(in_torch[key], in_keras[key], rtol=0, atol=1e-6, err_msg=key)
