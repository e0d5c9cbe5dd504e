"""The ``loihi`` entry point: the nengo network in neurons mode, within Loihi's rules, on nengo-loihi's simulator.

Design rule: ``check`` refuses exactly what Loihi cannot run (each refusal says why, and the docs list them);
everything else builds the same :class:`lmu_nengo.LMUNetwork` as ``backend="nengo", neurons=N`` with Loihi's
neuron types and its default rates and intercepts, and runs it in ``nengo_loihi.Simulator`` (the emulator,
``target="sim"``, unless ``target=`` says otherwise). Loihi's results approximate the reference: the kit checks
them against an NRMSE limit on a small battery of its own, not against the exact tolerances.
"""

from __future__ import annotations

from lmu.backend import Accuracy
from lmu.errors import ArgumentError
from lmu.spec import Hidden, LMUSpec
from lmu_nengo.backend import SPIKING_READOUT_SYNAPSE, NengoBackend, positive

__all__ = ["LoihiBackend", "REFUSALS", "NRMSE_LIMIT"]

#: Why Loihi refuses what it refuses (the keys are what ``check`` looks at).
REFUSALS = {
    "float64": "Loihi computes with 8-bit weights and spikes, so float64 cannot be honoured: use dtype='float32'",
    "lstm": "an lstm hidden multiplies gates with signals, which Loihi's neurons cannot compute: use hidden None, "
            "or dense or rnn with activation 'relu' or 'linear'",
    "activation": "Loihi's neurons are relu-like (SpikingRectifiedLinear) or LIF; no neuron computes {act} exactly: "
                  "use activation 'relu' or 'linear'",
}

#: The NRMSE against the reference that the Loihi battery must stay within (spiking, 100 neurons per dimension).
NRMSE_LIMIT = 0.6

#: Loihi's default max rates and intercepts (what ``nengo_loihi.set_defaults()`` sets).
LOIHI_MAX_RATES = (100.0, 120.0)
LOIHI_INTERCEPTS = (-1.0, 0.5)


def _battery() -> tuple[tuple[str, LMUSpec, int], ...]:
    """Loihi's own small battery: 5 float32 specs the chip can run, order ≤ 6, T ≤ 1000 steps."""
    H = Hidden
    base = dict(memory_d=1, order=6, theta=500.0, input_d=1, return_sequences=True, dtype="float32")
    rows = [
        ("loihi-memory", {}, 1000),
        ("loihi-dense-relu", dict(order=4, theta=300.0, input_d=2, hidden=H("dense", 8, "relu")), 600),
        ("loihi-dense-linear", dict(order=4, theta=300.0, hidden=H("dense", 3), input_to_hidden=True), 600),
        ("loihi-rnn-relu", dict(order=4, theta=300.0, hidden=H("rnn", 6, "relu")), 600),
        ("loihi-hidden-to-memory", dict(order=4, theta=300.0, memory_d=2,
                                        hidden=H("dense", 4, "relu"), hidden_to_memory=True), 600),
    ]
    return tuple((name, LMUSpec(**{**base, **kw}), steps) for name, kw, steps in rows)


class LoihiBackend(NengoBackend):
    """``lmu.build(spec, backend="loihi", neurons=100, neuron_type=nengo.LIF(), ...)`` → an ``LMUNetwork``.

    The memory is represented by ensembles of spiking neurons (``LIF`` or ``SpikingRectifiedLinear``), a relu
    hidden by a population of spiking relu neurons, with Loihi's default rates (100–120 Hz, times
    ``scale_firing_rates``) and intercepts (−1 to 0.5) and lowpass synapses only. ``lmu.run`` simulates it in
    ``nengo_loihi.Simulator(target=...)`` (default ``"sim"``, the emulator); ``target`` is a build option.
    Its accuracy is an NRMSE limit on its own battery, read through the spiking readout's lowpass (20 steps of
    1 ms); its conformance runs build with ``seed=0``, so that their figures repeat.

    Examples
    --------
    >>> import lmu, nengo
    >>> spec = lmu.LMUSpec(memory_d=1, order=4, theta=100, input_d=1, hidden=lmu.Hidden("dense", 3, "relu"))
    >>> net = lmu.build(spec, backend="loihi", neurons=20)
    >>> sorted({type(e.neuron_type).__name__ for e in net.all_ensembles})
    ['LIF', 'SpikingRectifiedLinear']
    >>> lmu.registry.get_backend("loihi").check(spec.replace(hidden=lmu.Hidden("lstm", 3)))[0][:30]
    "LMUSpec.hidden kind 'lstm': an"
    """

    name = "loihi"
    extra = "loihi"
    requires = ("nengo", "nengo_loihi")
    framework = "nengo-loihi"
    dtypes = ("float32",)
    accuracy = Accuracy(nrmse=NRMSE_LIMIT, readout_lowpass=SPIKING_READOUT_SYNAPSE / 0.001, battery=_battery(),
                        quick=2)
    test_options = ({"seed": 0},)

    def check(self, spec: LMUSpec) -> list[str]:
        reasons = []
        if spec.dtype not in self.dtypes:
            reasons.append(f"LMUSpec.dtype={spec.dtype!r}: {REFUSALS['float64']}")
        if spec.hidden is not None:
            if spec.hidden.kind == "lstm":
                reasons.append(f"LMUSpec.hidden kind 'lstm': {REFUSALS['lstm']}")
            elif spec.hidden.activation not in ("relu", "linear"):
                act = spec.hidden.activation
                reasons.append(f"Hidden.activation={act!r}: " + REFUSALS["activation"].format(act=act))
        return reasons

    def build(self, spec, weights, *, dt=0.001, neurons=100, neuron_type=None, scale_firing_rates=1.0,
              target="sim", label=None, seed=None, radius=None, tau=None, readout_synapse="default",
              max_rates=None, intercepts=None, direct=True):
        import nengo

        if neurons is None:
            raise ArgumentError("loihi backend option neurons must be an integer ≥ 1 (got None): Loihi has no "
                                "exact mode; use backend='nengo' for it")
        neuron_type = nengo.LIF() if neuron_type is None else neuron_type
        if type(neuron_type) not in (nengo.LIF, nengo.SpikingRectifiedLinear):
            raise ArgumentError(f"loihi backend option neuron_type must be nengo.LIF() or "
                                f"nengo.SpikingRectifiedLinear() (got {neuron_type!r}): those are the neurons "
                                "Loihi runs")
        if target not in ("sim", "loihi"):
            raise ArgumentError(f"loihi backend option target must be 'sim' (the emulator) or 'loihi' (the chip) "
                                f"(got {target!r})")
        positive(self.name, "scale_firing_rates", scale_firing_rates, "a number")
        s = float(scale_firing_rates)
        if max_rates is None:
            max_rates = nengo.dists.Uniform(LOIHI_MAX_RATES[0] * s, LOIHI_MAX_RATES[1] * s)
        if intercepts is None:
            intercepts = nengo.dists.Uniform(*LOIHI_INTERCEPTS)
        net = super().build(spec, weights, dt=dt, neurons=neurons, neuron_type=neuron_type,
                            scale_firing_rates=s, label=label, seed=seed, radius=radius, tau=tau,
                            readout_synapse=readout_synapse, max_rates=max_rates, intercepts=intercepts,
                            direct=direct)
        net.loihi_target = target
        return net

    def _run(self, net, weights, x, state, return_state):
        from lmu_nengo.simulate import run_batch

        from .simulate import Simulator

        def simulator(network, dt):
            return Simulator(network, dt=dt, target=getattr(net, "loihi_target", "sim"))

        # the emulator does not implement reset(): one simulator per sequence
        return run_batch(net, weights, x, state, return_state, simulator=simulator, fresh_per_sequence=True)

    def set_weights(self, obj, weights):
        from lmu_nengo.simulate import find_network

        net = find_network(obj, self.name)
        if obj is not net:
            raise ArgumentError("a Loihi simulator holds its weights on the chip (or the emulator's copy of it): "
                                "set the weights on the network and build a new simulator")
        net.write_weights(weights)
