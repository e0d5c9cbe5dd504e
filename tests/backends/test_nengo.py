"""The nengo backend: exact mode against the whole battery, weights in simulators, neurons mode, online PES."""

import numpy as np
import pytest

nengo = pytest.importorskip("nengo")

import lmu  # noqa: E402
import lmu.testing as kit  # noqa: E402
from lmu.signals import nrmse, white_noise  # noqa: E402

from _online import SIGNALS, judge  # noqa: E402

BACKEND = lmu.registry.get_backend("nengo")
nengo.rc["decoder_cache"]["enabled"] = "False"  # the workers of pytest-xdist would fight over its lock


@pytest.mark.parametrize("case", kit.cases(), ids=str)
def test_conformance_exact_mode(case):
    kit.assert_conforms("nengo", case)


def test_exact_mode_refuses_nothing_and_is_listed():
    assert all(not BACKEND.check(c.spec) for c in kit.cases())
    row = next(b for b in lmu.backends() if b.name == "nengo")
    assert row.available and row.extra == "nengo"


def test_network_is_made_of_nengo_objects_with_named_handles():
    from lmu_nengo import LMUNetwork

    spec = lmu.LMUSpec(memory_d=2, order=5, theta=30, input_d=3, hidden=lmu.Hidden("rnn", 4, "relu"),
                       memory_to_memory=True)
    net = lmu.build(spec, backend="nengo", dt=0.002)
    assert isinstance(net, LMUNetwork) and isinstance(net, nengo.Network)
    assert (net.input.size_out, net.memory.size_out, net.hidden.size_out, net.output.size_out) == (3, 10, 4, 4)
    assert not any(callable(n.output) for n in net.all_nodes if n.label in ("memory", "u", "hidden", "output"))
    # Ā and B̄ are connection transforms (the memory is no node wrapping the reference)
    A_bar, B_bar = lmu.legendre.discretize(5, 30.0, "zoh")
    transforms = [c.transform.init for c in net.all_connections if c.post_obj is net.memory]
    assert len(transforms) == 4  # Ā and B̄ for each memory dimension
    for expected in (A_bar, B_bar[:, None]):
        assert sum(t.shape == expected.shape and np.allclose(t, expected) for t in transforms) == 2
    assert lmu.spec_of(net) == spec and net.dt == 0.002


def _with_stimulus(spec, x):
    net = lmu.build(spec, backend="nengo", weights=kit.case_weights(spec))
    with net:
        stim = nengo.Node(lambda t: x[min(int(round(t / 0.001)) - 1, len(x) - 1)])
        nengo.Connection(stim, net.input, synapse=None)
        probe = nengo.Probe(net.output)
    return net, probe


def test_weights_round_trip_through_a_simulator():
    spec = lmu.LMUSpec(memory_d=2, order=6, theta=20, input_d=2, hidden=lmu.Hidden("lstm", 3), use_bias=True,
                       hidden_to_memory=True, return_sequences=True, dtype="float64")
    x = np.random.default_rng(0).normal(size=(50, 2))
    net, probe = _with_stimulus(spec, x)
    other = kit.case_weights(spec, seed=4)
    with nengo.Simulator(net, progress_bar=False) as sim:
        got = lmu.get_weights(sim)
        for name in other:
            np.testing.assert_allclose(got[name], kit.case_weights(spec)[name], rtol=0, atol=1e-15)
        lmu.set_weights(sim, other)  # into the live simulator
        sim.run_steps(50)
        assert lmu.spec_of(sim) == spec
    expected = lmu.run(lmu.build(spec, weights=other), x[None])[0]
    assert kit.relative_error(sim.data[probe], expected) < 1e-12
    # the network followed, and lmu.run on the simulator uses the simulator's weights
    np.testing.assert_allclose(lmu.get_weights(net)["hidden/kernel"], other["hidden/kernel"])
    assert kit.relative_error(lmu.run(sim, x[None])[0], expected) < 1e-12


def test_model_trained_in_torch_runs_here_through_convert():
    torch = pytest.importorskip("torch")
    spec = lmu.LMUSpec(memory_d=1, order=8, theta=12, input_d=2, hidden=lmu.Hidden("dense", 3, "tanh"),
                       trainable_theta=True)
    model = lmu.build(spec, backend="torch")
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    x = np.random.default_rng(1).normal(size=(2, 30, 2))
    net = lmu.convert(model, "nengo")
    assert kit.relative_error(lmu.run(net, x), lmu.run(model, x)) < 1e-5


def test_bad_options_name_the_option():
    spec = lmu.LMUSpec(memory_d=1, order=4, theta=10, input_d=1)
    with pytest.raises(TypeError, match="unknown option.*colour"):
        lmu.build(spec, backend="nengo", colour="red")
    with pytest.raises(ValueError, match="apply to neurons mode only: pass neurons=N"):
        lmu.build(spec, backend="nengo", tau=0.05)
    with pytest.raises(ValueError, match="option neurons must be an integer ≥ 1 \\(got 0\\)"):
        lmu.build(spec, backend="nengo", neurons=0)
    with pytest.raises(ValueError, match="option dt must be .* \\(got -1\\)"):
        lmu.build(spec, backend="nengo", dt=-1)
    with pytest.raises(ValueError, match="scale_firing_rates=3.0 asks LIF neurons for up to 1200 Hz"):
        lmu.build(spec, backend="nengo", neurons=10, scale_firing_rates=3.0)
    net = lmu.build(spec, backend="nengo", neurons=10)
    with pytest.raises(ValueError, match="only the exact mode can"):
        lmu.run(net, np.zeros((1, 5, 1)), state={"memory": np.zeros((1, 4))})


# ------------------------------------------------------------------------------------------- neurons mode
MEMORY_SPEC = lmu.LMUSpec(memory_d=1, order=6, theta=1000, input_d=1, kernel_initializer=None,
                          return_sequences=True)  # θ = 1 s at dt = 1 ms


def _memory_nrmse(neurons, neuron_type, scale=1.0, steps=3000):
    x = white_noise(steps, cutoff=0.001, rms=0.5, seed=0)[None]  # band-limited to 1 Hz
    ref = lmu.run(lmu.build(MEMORY_SPEC), x)[0]
    net = lmu.build(MEMORY_SPEC, backend="nengo", neurons=neurons, neuron_type=neuron_type,
                    scale_firing_rates=scale, radius=1.5, seed=1)  # this memory reaches 1.3
    got = lmu.run(net, x)[0]
    syn = net.memory_block.readout_synapse
    if syn is not None:  # the reader of a spiking memory sees it through the readout synapse: so does the target
        ref = nengo.Lowpass(syn).filt(ref, dt=0.001, y0=0)
    return nrmse(got[1000:], ref[1000:])


@pytest.mark.parametrize("kind,scale,sizes", [
    ("LIFRate", 1.0, (25, 100, 400)),
    ("SpikingRectifiedLinear", 4.0, (50, 200, 800)),
])
def test_neurons_mode_memory_improves_with_neurons(kind, scale, sizes):
    errors = [_memory_nrmse(n, getattr(nengo, kind)(), scale) for n in sizes]
    assert errors[0] > errors[1] > errors[2], errors
    assert errors[-1] <= 0.3, errors


def test_neurons_mode_relu_dense_hidden_is_a_neuron_population():
    spec = lmu.LMUSpec(memory_d=1, order=6, theta=500, input_d=1, hidden=lmu.Hidden("dense", 8, "relu"),
                       return_sequences=True)
    weights = kit.case_weights(spec)
    net = lmu.build(spec, backend="nengo", weights=weights, neurons=200, neuron_type=nengo.RectifiedLinear())
    relu = [e for e in net.all_ensembles if e.label == "hidden relu neurons"]
    assert len(relu) == 1 and relu[0].n_neurons == 8
    np.testing.assert_allclose(relu[0].bias, weights["hidden/bias"])
    got = lmu.get_weights(net)
    for name in weights:
        np.testing.assert_allclose(got[name], weights[name], atol=1e-12)
    x = white_noise(2000, cutoff=0.002, rms=0.5, seed=2)[None]
    ref = lmu.run(lmu.build(spec, weights=weights), x)[0]
    assert nrmse(lmu.run(net, x)[0][500:], ref[500:]) < 0.15


# ------------------------------------------------------------------------------------------- online learning
@pytest.mark.parametrize("signal", SIGNALS, ids=lambda s: s.name)
@pytest.mark.parametrize("mode", [{}, {"neurons": 100}], ids=["exact", "neurons"])
def test_online_learning_learns_a_delay_on_every_signal(mode, signal):
    result = judge("nengo", signal, **mode)  # learn_readout's default learning rate, radius and intercepts
    assert result.passed, result


def test_learning_stops_when_switched_off():
    from lmu_nengo import learn_readout

    spec = lmu.LMUSpec(memory_d=1, order=4, theta=200, input_d=1, kernel_initializer=None)
    net = lmu.build(spec, backend="nengo")
    with net:
        stim = nengo.Node(lambda t: np.sin(8 * t))
        nengo.Connection(stim, net.input, synapse=None)
    readout = learn_readout(net, stim, learning_rate=1e-3, stop_learning_at=0.3, n_neurons=200, seed=0)
    with net:
        p_w = nengo.Probe(readout.connection, "weights", sample_every=0.05)
    with nengo.Simulator(net, progress_bar=False) as sim:
        sim.run(0.6)
    w = sim.data[p_w]
    assert np.abs(w[3] - w[0]).max() > 0  # learned while on
    np.testing.assert_array_equal(w[-1], w[7])  # frozen from 0.3 s on
    with pytest.raises(ValueError, match="learning_rate must be a number ≥ 0 \\(got -1"):
        learn_readout(net, stim, learning_rate=-1)
