"""The loihi backend on nengo-loihi's emulator: refusals, its own NRMSE battery, online PES, a converted classifier.

The emulator is slow (seconds per simulated second), so every run here is short: the battery is 5 specs of at
most 1000 steps, online learning 8 simulated seconds of one signal (the other four run with ``-m slow``), the
classifier 30 test sequences of 150 steps.
"""

import warnings

import numpy as np
import pytest

nengo = pytest.importorskip("nengo")
pytest.importorskip("nengo_loihi")

import lmu  # noqa: E402
import lmu.testing as kit  # noqa: E402

from _online import SIGNALS, judge  # noqa: E402

BACKEND = lmu.registry.get_backend("loihi")
nengo.rc["decoder_cache"]["enabled"] = "False"
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::RuntimeWarning")


def test_check_refuses_exactly_what_loihi_cannot_run():
    H = lmu.Hidden
    base = dict(memory_d=1, order=4, theta=50, input_d=1, dtype="float32")
    runnable = [dict(), dict(hidden=H("dense", 3, "relu")), dict(hidden=H("rnn", 3, "relu")),
                dict(hidden=H("dense", 3)), dict(hidden=H("rnn", 3, "linear"), hidden_to_memory=True),
                dict(trainable_theta=True, memory_to_memory=True), dict(discretizer="bilinear")]
    for kw in runnable:
        assert BACKEND.check(lmu.LMUSpec(**{**base, **kw})) == [], kw
    refused = {
        "float64": dict(dtype="float64"),
        "'lstm'": dict(hidden=H("lstm", 3)),
        "activation='tanh'": dict(hidden=H("rnn", 3)),
        "activation='sigmoid'": dict(hidden=H("dense", 3, "sigmoid")),
    }
    for words, kw in refused.items():
        reasons = BACKEND.check(lmu.LMUSpec(**{**base, **kw}))
        assert len(reasons) == 1 and words in reasons[0], (kw, reasons)
    with pytest.raises(lmu.UnsupportedSpec, match="float64 cannot be honoured: use dtype='float32'"):
        lmu.build(lmu.LMUSpec(**{**base, "dtype": "float64"}), backend="loihi")


def test_bad_options():
    spec = lmu.LMUSpec(memory_d=1, order=4, theta=50, input_d=1)
    with pytest.raises(ValueError, match="neuron_type must be nengo.LIF\\(\\) or nengo.SpikingRectifiedLinear"):
        lmu.build(spec, backend="loihi", neuron_type=nengo.LIFRate())
    with pytest.raises(ValueError, match="Loihi has no exact mode"):
        lmu.build(spec, backend="loihi", neurons=None)
    with pytest.raises(ValueError, match="target must be 'sim'"):
        lmu.build(spec, backend="loihi", target="gpu")


def test_network_uses_loihi_neurons_rates_and_lowpass_synapses_only():
    spec = lmu.LMUSpec(memory_d=1, order=4, theta=50, input_d=1, hidden=lmu.Hidden("rnn", 3, "relu"))
    net = lmu.build(spec, backend="loihi", neurons=20)
    for ens in net.all_ensembles:
        assert type(ens.neuron_type) in (nengo.LIF, nengo.SpikingRectifiedLinear)
    memory = [e for e in net.all_ensembles if e.label != "hidden relu neurons"]
    assert memory and all(e.max_rates.low == 100 and e.max_rates.high == 120 for e in memory)
    assert all(e.intercepts.low == -1 and e.intercepts.high == 0.5 for e in memory)
    assert all(c.synapse is None or type(c.synapse) is nengo.Lowpass for c in net.all_connections)


def test_battery_on_the_emulator_within_the_nrmse_limit():
    report = kit.check_backend("loihi", every_option_set=True)  # seeded builds (conformance_options)
    assert [r.check for r in report.results] == ["nrmse", "nan"] * 5  # the NaN pattern too: masked, propagated
    assert report.passed, "\n".join(str(r) for r in report.results)


def test_lmu_check_reports_nrmse_for_loihi(capsys):
    from lmu.cli import main

    assert main(["check", "--backend", "loihi", "--quick"]) == 0
    out = capsys.readouterr().out
    assert "NRMSE 0." in out and "(≤ 0.6)" in out and "loihi-memory[seed=0]: NRMSE" in out


def _judge_on_the_emulator(signal):
    import lmu_loihi

    result = judge("loihi", signal, neurons=100, simulator=lmu_loihi.Simulator)  # learn_readout's defaults
    assert result.passed, result


@pytest.mark.parametrize("signal", [s for s in SIGNALS if s.name == "E"], ids=lambda s: s.name)
def test_online_learning_on_the_emulator(signal):
    _judge_on_the_emulator(signal)  # E: the smallest amplitude, the slowest to learn


@pytest.mark.slow
@pytest.mark.parametrize("signal", [s for s in SIGNALS if s.name != "E"], ids=lambda s: s.name)
def test_online_learning_on_the_emulator_on_every_signal(signal):
    _judge_on_the_emulator(signal)


# ------------------------------------------------------------------------------------- torch → nengo, loihi
def _toy_data(n, steps, seed):
    """Three classes of shapes over the sequence (a bump, a rising ramp, a cosine), random amplitude, noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, size=n)
    t = np.arange(steps) / steps
    shapes = np.stack([np.sin(np.pi * t) - 0.5, 2 * t - 1, np.cos(2 * np.pi * t)])
    amp = rng.uniform(0.3, 0.6, size=(n, 1))
    x = amp * shapes[labels] + 0.1 * rng.normal(size=(n, steps))
    return x[..., None].astype(np.float32), labels


def test_trained_in_torch_runs_on_nengo_exactly_and_on_loihi_approximately():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    steps = 300
    spec = lmu.LMUSpec(memory_d=1, order=4, theta=300, input_d=1, hidden=lmu.Hidden("dense", 3))
    model = lmu.build(spec, backend="torch")
    x_train, y_train = _toy_data(300, steps, seed=0)
    x_test, y_test = _toy_data(20, steps, seed=1)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    xt, yt = torch.as_tensor(x_train), torch.as_tensor(y_train)
    for _ in range(150):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(xt), yt)
        loss.backward()
        opt.step()
    torch_pred = lmu.run(model, x_test).argmax(-1)
    nengo_pred = lmu.run(lmu.convert(model, "nengo"), x_test).argmax(-1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loihi_pred = lmu.run(lmu.convert(model, "loihi", neurons=100, seed=0), x_test).argmax(-1)
    acc = {name: float(np.mean(pred == y_test)) for name, pred in
           [("torch", torch_pred), ("nengo", nengo_pred), ("loihi", loihi_pred)]}
    print("toy classification accuracy:", acc)
    assert acc["torch"] >= 0.9, acc  # the task is learnable: the comparison below means something
    assert np.mean(nengo_pred == torch_pred) >= 0.99, acc
    assert acc["loihi"] >= acc["torch"] - 0.10, acc
