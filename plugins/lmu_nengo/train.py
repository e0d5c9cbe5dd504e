"""Online learning: a readout of the LMU's memory learned with PES while the network runs.

Design rule: learning adds objects to the user's network and changes nothing in the LMU itself (its canonical
weights stay as they were). The memory feeds an ensemble, a connection from that ensemble is learned with
``nengo.PES`` toward a target signal, and an error node switches learning off (error 0) from a chosen time or
whenever ``readout.learning`` is set to False. The same objects build on Loihi, whose PES runs on the chip.

The defaults are chosen so that PES learns the mapping rather than tracking the target (measured on 5 signals by
``benchmarks/online_learning.py``, judged with learning stopped): PES is gradient descent on the ensemble's
activities, and the activity common to all neurons sets how fast the output can follow the error while only the
part that varies with the memory carries the mapping. Sparse neurons (intercepts 0 to 0.5) and a radius (0.5) that
the memory of a typical input fills make that part large; the learning rate is then low enough not to track.
"""

from __future__ import annotations

import numpy as np

from lmu.errors import ArgumentError

__all__ = ["OnlineReadout", "learn_readout", "LEARNING_RATE", "RADIUS", "INTERCEPTS"]

#: Default PES learning rate per backend (``nengo.PES`` units), measured by ``benchmarks/online_learning.py``.
LEARNING_RATE = {"nengo": 1e-3, "loihi": 3e-3}
#: Default radius of the readout ensemble: the memory of an input of RMS 0.15–0.5 has a norm of about 0.2–1.
RADIUS = 0.5
#: Default intercepts of the readout ensemble: each neuron is silent over half of the space or more.
INTERCEPTS = (0.0, 0.5)


class OnlineReadout:
    """What :func:`learn_readout` added: ``ensemble`` (represents the memory), ``output`` (the learned signal),
    ``target`` (a node the target flows into), ``error`` (output − target while learning, else 0) and
    ``connection`` (the learned connection). Set ``learning`` to False to freeze the readout between runs."""

    def __init__(self, ensemble, output, target, error, connection, stop_learning_at):
        self.ensemble, self.output, self.target = ensemble, output, target
        self.error, self.connection = error, connection
        self.stop_learning_at = stop_learning_at
        self.learning = True

    def _error(self, t, v):
        n = v.size // 2
        on = self.learning and (self.stop_learning_at is None or t < self.stop_learning_at)
        return v[:n] - v[n:] if on else np.zeros(n)


def learn_readout(net, target=None, *, size_out=None, learning_rate=None, stop_learning_at=None, n_neurons=None,
                  neuron_type=None, radius=RADIUS, synapse=0.01, target_synapse=None, seed=None, intercepts=None,
                  max_rates=None):
    """Add a readout of ``net``'s memory learned online with PES toward ``target``.

    Parameters
    ----------
    net : LMUNetwork
        Built by ``lmu.build(spec, backend="nengo" | "loihi")``.
    target : nengo object, callable ``f(t)``, or None
        What the readout learns to output: a node, ensemble or slice (connected with ``target_synapse``), a
        function of time, or None to connect something to ``readout.target`` yourself.
    size_out : int, optional
        The readout's size (default: the target's size, or 1).
    learning_rate : float, optional
        PES learning rate (``nengo.PES``); 0 learns nothing (the connection then has no learning rule). Default:
        ``LEARNING_RATE[backend]``, 1e-3 for nengo and 3e-3 for Loihi (whose PES rounds the error to 1/100 and
        the weights to 8 bits, and learns more slowly at the same rate). A much higher rate makes the output
        follow the target while learning, and what is left when learning stops is worse.
    stop_learning_at : float, optional
        Simulated time (seconds) from which the error is 0, so the learned readout stays as it is.
    n_neurons : int, optional
        Neurons of the ensemble that represents the memory (default 100 per memory dimension).
    neuron_type : nengo.neurons.NeuronType, optional
        Default: the memory's neuron type in neurons mode, else ``nengo.LIF()``.
    radius : float
        The ensemble's radius (default ``RADIUS``, 0.5): about the norm of the memory of your input. The memory
        of an order-6 LMU fed band-limited white noise of RMS 0.15–0.5 has a norm of about 0.2–1 (more than the
        input's own RMS when the input is fast for θ); for inputs much larger or smaller, scale it alike.
    synapse : float
        The synapse of the learned connection.
    target_synapse : float or None
        The synapse from the target object into the error.
    seed : int, optional
        The ensemble's seed.
    intercepts : nengo.dists.Distribution or array, optional
        The ensemble's intercepts (default ``Uniform(*INTERCEPTS)``, 0 to 0.5: sparse activity, which PES learns
        from several times faster than from nengo's default −1 to 1).
    max_rates : nengo.dists.Distribution or array, optional
        The ensemble's max rates (default: nengo's).

    Returns
    -------
    OnlineReadout

    Examples
    --------
    >>> import lmu, nengo, numpy as np
    >>> from lmu_nengo import learn_readout
    >>> spec = lmu.LMUSpec(memory_d=1, order=4, theta=200, input_d=1, kernel_initializer=None)
    >>> net = lmu.build(spec, backend="nengo")
    >>> with net:
    ...     stim = nengo.Node(lambda t: np.sin(6 * t))
    ...     _ = nengo.Connection(stim, net.input, synapse=None)
    >>> readout = learn_readout(net, stim, stop_learning_at=0.5, n_neurons=100, seed=0)
    >>> with net:
    ...     probe = nengo.Probe(readout.output, synapse=0.01)
    >>> with nengo.Simulator(net, progress_bar=False) as sim:
    ...     sim.run(0.6)
    >>> sim.data[probe].shape
    (600, 1)
    """
    import nengo

    spec = net.lmu_spec
    if learning_rate is None:
        learning_rate = LEARNING_RATE.get(getattr(net, "lmu_backend", "nengo"), LEARNING_RATE["nengo"])
    if not (np.isfinite(learning_rate) and learning_rate >= 0):
        raise ArgumentError(f"learn_readout learning_rate must be a number ≥ 0 (got {learning_rate!r})")
    if not (isinstance(radius, (int, float, np.number)) and np.isfinite(radius) and radius > 0):
        raise ArgumentError(f"learn_readout radius must be a number > 0 (got {radius!r}): use about the norm of "
                            "the memory of your input (the default 0.5 suits an input of RMS 0.15–0.5)")
    if intercepts is None:
        intercepts = nengo.dists.Uniform(*INTERCEPTS)
    rates = {} if max_rates is None else {"max_rates": max_rates}
    is_object = isinstance(target, (nengo.Node, nengo.Ensemble, nengo.base.ObjView, nengo.ensemble.Neurons))
    if target is not None and not is_object and not callable(target):
        raise ArgumentError(f"learn_readout target must be a nengo object, a function of time or None "
                            f"(got {type(target).__name__})")
    if size_out is None:
        size_out = 1 if target is None else target.size_out if is_object else int(np.size(target(0.0)))
    if neuron_type is None:
        neuron_type = net.memory_block.neuron_type if net.memory_block is not None else nengo.LIF()
    n_neurons = 100 * spec.memory_size if n_neurons is None else int(n_neurons)
    memory_synapse = None if net.memory_block is None else net.memory_block.readout_synapse
    with net:
        ensemble = nengo.Ensemble(n_neurons, spec.memory_size, neuron_type=neuron_type, radius=radius, seed=seed,
                                  intercepts=intercepts, label="readout ensemble", **rates)
        nengo.Connection(net.memory, ensemble, synapse=memory_synapse)
        output = nengo.Node(size_in=size_out, label="learned output")
        # learning rate 0: a plain connection (nengo-loihi cannot discretize a PES rule with rate 0)
        rule = nengo.PES(learning_rate=learning_rate) if learning_rate > 0 else None
        connection = nengo.Connection(ensemble, output, function=lambda x: np.zeros(size_out), synapse=synapse,
                                      learning_rule_type=rule)
        target_node = nengo.Node(size_in=size_out, label="target")
        readout = OnlineReadout(ensemble, output, target_node, None, connection, stop_learning_at)
        readout.error = nengo.Node(readout._error, size_in=2 * size_out, size_out=size_out, label="error")
        nengo.Connection(output, readout.error[:size_out], synapse=None)
        nengo.Connection(target_node, readout.error[size_out:], synapse=None)
        if rule is not None:
            nengo.Connection(readout.error, connection.learning_rule, synapse=None)
        if target is not None:
            source = target if is_object else nengo.Node(target, size_out=size_out, label="target signal")
            nengo.Connection(source, target_node, synapse=target_synapse)
    return readout
