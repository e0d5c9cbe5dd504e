"""The online-learning judge shared by the nengo and loihi tests and ``benchmarks/online_learning.py``.

Design rule: learning is judged on what was learned, on signals fixed in advance, against the same network without
learning. The task is to output the input delayed by θ/2 (θ = 0.5 s, order 6); one network holds two readouts of
its memory built alike (same seed), one learning with PES and one with learning rate 0; learning stops at 80% of
the run, and the NRMSE of the last 20% (the readout frozen, on input it has not learned from) with learning must be
at most ``RATIO`` times that without. Judging the readout while it still learns would reward a high learning rate
that makes the output track the target through the error instead of learning the mapping.
"""

from __future__ import annotations

from typing import NamedTuple

import lmu
from lmu.signals import nrmse, white_noise


class Signal(NamedTuple):
    """Band-limited white noise: ``cutoff`` in cycles per step of 1 ms (0.001 = 1 Hz), ``rms`` its amplitude."""

    name: str
    seed: int
    cutoff: float
    rms: float


#: The 5 signals, fixed before measuring: seeds, bandwidths 0.5–2 Hz, RMS 0.15–0.5 (peaks within 1 or about it).
SIGNALS = (
    Signal("A", seed=3, cutoff=0.001, rms=0.4),  # the test signal of lmu ≤ 0.6
    Signal("B", seed=11, cutoff=0.002, rms=0.5),
    Signal("C", seed=5, cutoff=0.0005, rms=0.25),
    Signal("D", seed=23, cutoff=0.0015, rms=0.3),
    Signal("E", seed=42, cutoff=0.001, rms=0.15),
)
#: Learned NRMSE ≤ RATIO × unlearned NRMSE, over the last 20% of the run.
RATIO = 0.5
SECONDS = 8.0
SPEC = lmu.LMUSpec(memory_d=1, order=6, theta=500, input_d=1, kernel_initializer=None, dtype="float32")
DELAY = 250  # steps: θ/2


class Judgement(NamedTuple):
    signal: Signal
    learned: float  # NRMSE over the last 20%, learning stopped at 80%
    unlearned: float  # the same readout with learning rate 0
    steps: int

    @property
    def ratio(self) -> float:
        return self.learned / self.unlearned

    @property
    def passed(self) -> bool:
        return self.learned <= RATIO * self.unlearned


def judge(backend, signal: Signal, seconds=SECONDS, learning_rate=None, simulator=None, n_neurons=600,
          **build) -> Judgement:
    """Run ``signal`` through one network with a learned and an unlearned readout; NRMSE of their last 20%.

    ``learning_rate`` None is :func:`lmu_nengo.learn_readout`'s default for the backend; ``build`` goes to
    ``lmu.build`` (with ``seed=0`` unless given); ``simulator`` makes the simulator (default ``nengo.Simulator``).
    """
    import nengo  # here, not at the top: pytest's --doctest-modules imports this file in environments without nengo

    from lmu_nengo import learn_readout

    dt, steps = 0.001, int(round(seconds / 0.001))
    x = white_noise(steps, cutoff=signal.cutoff, rms=signal.rms, seed=signal.seed)[:, 0]
    net = lmu.build(SPEC, backend=backend, **{"seed": 0, **build})
    with net:
        stim = nengo.Node(lambda t: x[min(int(round(t / dt)) - 1, steps - 1)])
        nengo.Connection(stim, net.input, synapse=None)
        target = nengo.Node(lambda t: x[int(round(t / dt)) - 1 - DELAY] if round(t / dt) > DELAY else 0.0)
    stop = 0.8 * seconds
    readouts = [learn_readout(net, target, learning_rate=rate, n_neurons=n_neurons, stop_learning_at=stop, seed=0)
                for rate in (learning_rate, 0.0)]
    with net:
        probes = [nengo.Probe(r.output, synapse=0.01) for r in readouts]
        p_target = nengo.Probe(target, synapse=0.01)
    make = simulator or (lambda n: nengo.Simulator(n, progress_bar=False))
    with make(net) as sim:
        sim.run_steps(steps)
    last = steps - int(round(0.2 * steps))
    want = sim.data[p_target][last:, 0]
    learned, unlearned = (nrmse(sim.data[p][last:, 0], want) for p in probes)
    return Judgement(signal, learned, unlearned, steps)
