"""Running an LMU network on NumPy batches, and reading weights out of simulators.

Design rule: ``run`` never touches the user's network or simulator: it builds a fresh copy of the LMU (same
spec, same options, the weights read from the object given) inside a small harness network that feeds the
input and, for streaming, the initial state, and simulates one sequence of the batch after another. The
simulator class is a parameter, so the Loihi backend reuses all of this with ``nengo_loihi.Simulator``.
"""

from __future__ import annotations

import weakref

import numpy as np

from lmu.arrays import mask_non_finite, poison_reached
from lmu.errors import ArgumentError

__all__ = ["find_network", "all_networks", "weights_of", "load_weights_into", "run_batch", "state_probes",
           "mask_non_finite"]


#: id(simulator) -> (weak reference, weights) of what set_weights wrote into it (read back once it is closed).
_LOADED: dict = {}


def find_network(obj, backend_name: str):
    """The LMUNetwork behind ``obj``: the network itself, or the one inside a simulator's network."""
    from .network import LMUNetwork

    if isinstance(obj, LMUNetwork):
        return obj
    top = _toplevel(obj)
    if top is None:
        raise ArgumentError(f"{type(obj).__name__} is neither an LMUNetwork nor a simulator built from one")
    found = [n for n in all_networks(top) if isinstance(n, LMUNetwork) and n.lmu_backend == backend_name]
    if len(found) != 1:
        raise ArgumentError(f"the simulator's network holds {len(found)} LMU networks built by backend "
                            f"{backend_name!r}; pass the network itself, or use "
                            "lmu_nengo.weights_of(network, simulator)")
    return found[0]


def is_simulator(obj) -> bool:
    """Whether ``obj`` looks like a nengo-family simulator (has a built model with a toplevel network)."""
    return _toplevel(obj) is not None


def _toplevel(obj):
    model = getattr(obj, "model", None)
    top = getattr(model, "toplevel", None) if model is not None else None
    if top is None:
        top = getattr(obj, "network", None)
    import nengo

    return top if isinstance(top, nengo.Network) else None


def all_networks(net):
    """``net`` and every network inside it, depth first."""
    yield net
    for sub in net.networks:
        yield from all_networks(sub)


def weights_of(net, sim=None):
    """The canonical weights of ``net``, read from ``sim`` (where trained parameters live) when given.

    Examples
    --------
    >>> import lmu, nengo
    >>> from lmu_nengo import weights_of
    >>> net = lmu.build(lmu.LMUSpec(memory_d=1, order=4, theta=10, input_d=1), backend="nengo")
    >>> with nengo.Simulator(net, progress_bar=False) as sim:
    ...     w = weights_of(net, sim)
    >>> sorted(w)
    ['kernel']
    """
    if sim is None:
        return net.read_weights()
    live = getattr(sim, "signals", None) is not None and hasattr(getattr(sim, "model", None), "sig")
    if not live and id(sim) in _LOADED and _LOADED[id(sim)][0]() is sim:
        return _LOADED[id(sim)][1]  # a closed simulator keeps no live values: what set_weights last wrote

    def built(piece):
        # nengo's sim.data holds build-time values; its signals hold what runs now (learned or set)
        obj, key = (piece.obj.neurons, "bias") if piece.kind == "neuron_bias" else (piece.obj, "weights")
        if live:
            return sim.signals[sim.model.sig[obj][key]]
        data = sim.data[piece.obj]
        return data.bias if piece.kind == "neuron_bias" else data.weights

    return net.read_weights(built)


def load_weights_into(net, sim, weights):
    """Write canonical weights into a built simulator's weight arrays (nengo's reference simulator)."""
    current = weights_of(net, sim)
    if "theta" in weights and float(weights["theta"]) != float(current["theta"]):
        raise ArgumentError("set_weights on a simulator cannot change theta (the system matrices are built in): set "
                            "the weights on the network and build a new simulator")
    w = {name: np.asarray(arr, dtype=np.float64) for name, arr in weights.items()}
    sig = sim.model.sig
    for p in net.pieces:
        value = w[p.name] if p.rows is None else w[p.name][p.rows]
        if p.kind == "transform":
            new, key = p.scale * value.T, (p.obj, "weights")
        elif p.kind == "bias":
            new, key = p.scale * value[:, None], (p.obj, "weights")
        else:
            new, key = p.scale * value, (p.obj.neurons, "bias")
        arr = sim.signals[sig[key[0]][key[1]]]
        flags = arr.flags.writeable
        try:
            arr.setflags(write=True)
        except ValueError as exc:
            raise ArgumentError("this simulator keeps its weights read-only: set the weights on the network and "
                                "build a new simulator") from exc
        arr[...] = np.reshape(new, arr.shape)
        arr.setflags(write=flags)
    net.write_weights(weights)  # the network follows, so a simulator built later agrees
    _LOADED[id(sim)] = (weakref.ref(sim), net.read_weights())


def timed(function, size_out, size_in=0):
    """A ``nengo.Process`` computing ``function(t)`` (or ``function(t, x)`` with an input): unlike a node
    function, nengo lets it output NaN and inf, which must propagate through the LMU like any arithmetic."""
    import nengo

    class _Timed(nengo.Process):
        def make_step(self, shape_in, shape_out, dt, rng, state):
            return function

    return _Timed(default_size_in=size_in, default_size_out=size_out)


def state_probes(lmu, return_state: bool, output_synapse=None) -> dict:
    """Probes (made in the current network) on ``lmu``'s output and, with ``return_state``, on what makes its
    canonical state after the last step: ``memory``, ``hidden``, ``cell``."""
    import nengo

    probes = {"output": nengo.Probe(lmu.output, synapse=output_synapse)}
    if return_state:
        memory_synapse = None if lmu.memory_block is None else lmu.memory_block.readout_synapse
        probes["memory"] = nengo.Probe(lmu.memory, synapse=memory_synapse)
        if lmu.hidden is not None:
            probes["hidden"] = nengo.Probe(lmu.hidden, synapse=None)
        if lmu.cell is not None:
            probes["cell"] = nengo.Probe(lmu.cell[lmu.lmu_spec.hidden.units:], synapse=None)
    return probes


def run_batch(net, weights, x, state=None, return_state=False, simulator=None, probe_synapse=None,
              fresh_per_sequence=False, **sim_options):
    """Simulate each sequence of ``x`` (batch, T, input_d) through a fresh copy of ``net``; NumPy float64 out.

    ``simulator(network, dt)`` builds the simulator (default ``nengo.Simulator``); with ``fresh_per_sequence`` a
    new one simulates each sequence (for simulators without ``reset``). Returns the outputs at every
    step ``(batch, T, output_size)`` and, with ``return_state``, the canonical state after the last step.
    """
    import nengo

    from .network import LMUNetwork

    spec, dt = net.lmu_spec, net.dt
    batch, steps = x.shape[:2]
    given = x
    x, first_bad = mask_non_finite(x) if net.neurons is not None else (x, None)
    if state is not None and net.neurons is not None:
        raise ArgumentError("run(state=...) continues a sequence exactly, which only the exact mode can: the memory "
                            "of neurons mode lives in its neurons; build with neurons=None to stream")
    holder = {"x": np.zeros((steps, spec.input_d))}

    def feed(t):
        return holder["x"][min(int(round(t / dt)) - 1, steps - 1)]

    with nengo.Network(seed=net.seed) as harness:
        lmu = LMUNetwork(spec, weights, backend=net.lmu_backend, _state_input=state is not None, seed=net.seed,
                         **net.lmu_options)
        feeder = nengo.Node(timed(feed, spec.input_d), label="feed")
        nengo.Connection(feeder, lmu.input, synapse=None)
        probes = state_probes(lmu, return_state, probe_synapse)
    if simulator is None:
        def simulator(network, dt):
            return nengo.Simulator(network, dt=dt, progress_bar=False, **sim_options)

    outputs = np.empty((batch, steps, spec.output_size))
    final = {key: np.empty((batch, p.size_in)) for key, p in probes.items() if key != "output"}
    sim = None
    with np.errstate(invalid="ignore", over="ignore"):
        try:
            for b in range(batch):
                if sim is None or fresh_per_sequence:
                    if sim is not None:
                        sim.close()
                    sim = simulator(harness, dt)
                else:
                    sim.reset()
                holder["x"] = np.asarray(x[b], dtype=np.float64)
                if state is not None:
                    value = lmu.state_value
                    for key, sl in lmu.state_slices.items():
                        value[sl] = np.asarray(state[key][b], dtype=np.float64)
                sim.run_steps(steps)
                outputs[b] = sim.data[probes["output"]][-steps:]
                for key in final:
                    final[key][b] = sim.data[probes[key]][-1]
        finally:
            if sim is not None:
                sim.close()
    if first_bad is not None:  # neurons cannot carry NaN: NaN where the step order carries it
        outputs, final = poison_reached(spec, given, outputs, final)
    if return_state:
        return outputs, final
    return outputs

