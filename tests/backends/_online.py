"""The online-learning task shared by the nengo and loihi tests: learn a delay of θ/2 with PES."""

import lmu
from lmu.signals import nrmse, white_noise


def learn_delay(backend, learning_rate, seconds=8.0, simulator=None, window=1000, **build):
    """Learn to output the input delayed by θ/2 (θ = 0.5 s) online with PES; NRMSE of the first and last
    ``window`` steps (1 s)."""
    import nengo  # here, not at the top: pytest's --doctest-modules imports this file in environments without nengo

    from lmu_nengo import learn_readout

    dt, steps, delay = 0.001, int(seconds / 0.001), 250
    spec = lmu.LMUSpec(memory_d=1, order=6, theta=500, input_d=1, kernel_initializer=None, dtype="float32")
    x = white_noise(steps, cutoff=0.001, rms=0.4, seed=3)[:, 0]
    net = lmu.build(spec, backend=backend, **{"seed": 0, **build})
    with net:
        stim = nengo.Node(lambda t: x[min(int(round(t / dt)) - 1, steps - 1)])
        nengo.Connection(stim, net.input, synapse=None)
        target = nengo.Node(lambda t: x[int(round(t / dt)) - 1 - delay] if round(t / dt) > delay else 0.0)
    readout = learn_readout(net, target, learning_rate=learning_rate, n_neurons=600, seed=0)
    with net:
        p_out = nengo.Probe(readout.output, synapse=0.01)
        p_target = nengo.Probe(target, synapse=0.01)
    make = simulator or (lambda n: nengo.Simulator(n, progress_bar=False))
    with make(net) as sim:
        sim.run_steps(steps)
    y, want = sim.data[p_out][:, 0], sim.data[p_target][:, 0]
    return nrmse(y[:window], want[:window]), nrmse(y[-window:], want[-window:])


def passes_learning_limits(first, last):
    return last <= 0.5 and last <= 0.6 * first
