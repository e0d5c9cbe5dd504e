"""Batched inference through ``nengo_dl.Simulator``: the batch is NengoDL's minibatch.

Design rule: like lmu_nengo's ``run``, this never touches the user's network or simulator: a fresh copy of the
LMU (same spec and options, weights read from the object given) runs inside a harness whose input nodes take the
sequences and, for streaming, the initial state at the first step.
"""

from __future__ import annotations

import contextlib
import io
import os

import numpy as np

__all__ = ["run_batch"]


def run_batch(net, weights, x, state=None, return_state=False):
    """Outputs at every step ``(batch, T, output_size)`` (and the final state) of ``x`` through NengoDL."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import nengo
    import nengo_dl

    from lmu_nengo.simulate import state_probes

    from .network import LMUNetworkDL

    spec = net.lmu_spec
    batch, steps = x.shape[:2]
    with nengo.Network(seed=net.seed) as harness:
        nengo_dl.configure_settings(stateful=False, dtype=spec.dtype)
        lmu = LMUNetworkDL(spec, weights, _state_input=state is not None, seed=net.seed, **net.lmu_options)
        feed = nengo.Node(np.zeros(spec.input_d), label="feed")
        nengo.Connection(feed, lmu.input, synapse=None)
        probes = state_probes(lmu, return_state)
    data = {feed: np.asarray(x, dtype=np.float64)}
    if state is not None:
        initial = np.zeros((batch, steps, lmu.state_value.size))
        for key, sl in lmu.state_slices.items():
            initial[:, 0, sl] = state[key]
        data[lmu.state_input] = initial
    with contextlib.redirect_stdout(io.StringIO()), \
            nengo_dl.Simulator(harness, minibatch_size=batch, progress_bar=False) as sim:
        result = sim.predict(data, n_steps=steps, verbose=0)
    out = np.asarray(result[probes["output"]], dtype=np.float64)
    if return_state:
        return out, {key: np.asarray(result[p][:, -1], dtype=np.float64) for key, p in probes.items()
                     if key != "output"}
    return out


def __getattr__(name):
    if name == "run_batched":  # lmu 0.4's name; lmu_nengo.simulate calls the same thing run_batch
        import warnings

        warnings.warn("lmu_nengo_dl.simulate.run_batched is deprecated and will be removed in lmu 0.6: use "
                      "run_batch", DeprecationWarning, stacklevel=2)
        return run_batch
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
