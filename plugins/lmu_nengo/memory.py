"""The LMU memory represented by neurons: the continuous system mapped onto lowpass synapses.

Design rule: neurons mode follows the NEF's principle 3, not the discretizer: for ``θ_s ṁ = A m + B u`` with
``θ_s = θ·dt`` seconds and a lowpass synapse τ, the recurrent transform is ``τ A/θ_s + I`` and the input transform
``τ B/θ_s``, both through that synapse. Each memory dimension is a one-dimensional ensemble (an EnsembleArray), so
the same block serves nengo (rate or spiking neurons) and Loihi (whose builder takes the same objects).
"""

from __future__ import annotations

import nengo
import numpy as np

from lmu import legendre
from lmu.errors import ArgumentError

from .backend import SPIKING_READOUT_SYNAPSE

__all__ = ["NeuronMemory", "DEFAULT_MAX_RATES", "SPIKING_READOUT_SYNAPSE", "SPIKING_RELU_RATE"]

#: Spiking relu neurons of a hidden fire this many Hz per unit of activation (before ``scale_firing_rates``):
#: at 1 Hz per unit, a layer whose activations are near 1 would hardly spike in a run of a second.
SPIKING_RELU_RATE = 400.0
#: The max firing rates of the memory's neurons before ``scale_firing_rates`` (nengo's default range).
DEFAULT_MAX_RATES = (200.0, 400.0)


class NeuronMemory(nengo.Network):
    """``memory_d·order`` one-dimensional ensembles of ``neurons`` neurons that hold the LMU's memory.

    Parameters
    ----------
    spec : LMUSpec
    theta : float
        The window in steps (the weights' θ when trainable).
    dt : float
        Seconds per step.
    neurons : int
        Neurons per memory dimension.
    neuron_type : nengo.neurons.NeuronType, optional
        Default ``nengo.LIF()``; e.g. ``nengo.LIFRate()``, ``nengo.RectifiedLinear()``,
        ``nengo.SpikingRectifiedLinear()``.
    scale_firing_rates : float
        Multiplies the max rates (default range 200–400 Hz) so that spikes carry more information per step in
        short runs; for LIF neurons the rates must stay below ``1/tau_ref``.
    radius : float or sequence of float
        The range each memory dimension's ensemble represents well, one value for all or one per dimension
        (``memory_d·order`` values). Default 1. The memory's dimensions can exceed the input's range (band-limited
        noise of RMS 0.5 drives dimensions 1 and 2 of an order-6 memory to about 1.3): beyond the radius the
        neurons saturate, so set it from the range the memory reaches on typical input.
    tau : float
        The synapse (seconds) of the recurrent and input connections.
    readout_synapse : float or None
        The synapse on connections that read the memory (and a neuron hidden); default None for rate neurons,
        0.02 s for spiking neurons.
    max_rates, intercepts : nengo.dists.Distribution, optional
        Override the ensembles' distributions (Loihi passes its own defaults).
    direct : bool
        Connect the ensembles to each other directly (one decoded connection per nonzero entry of the recurrent
        transform) instead of through the array's nodes: on Loihi the recurrence then stays on the chip (through
        host-side nodes it would be delayed by the chip–host round trip, which breaks short windows).
    """

    def __init__(self, spec, theta, dt, neurons, *, neuron_type=None, scale_firing_rates=1.0, radius=1.0, tau=0.1,
                 readout_synapse="default", max_rates=None, intercepts=None, direct=False, label="memory"):
        super().__init__(label=label)
        if not isinstance(neurons, (int, np.integer)) or isinstance(neurons, bool) or neurons < 1:
            raise ArgumentError(f"nengo backend option neurons must be an integer ≥ 1 (got {neurons!r}); "
                                "or None for the exact mode")
        if not (np.isfinite(scale_firing_rates) and scale_firing_rates > 0):
            raise ArgumentError(f"nengo backend option scale_firing_rates must be > 0 (got {scale_firing_rates!r})")
        if not (np.isfinite(tau) and tau > 0):
            raise ArgumentError(f"nengo backend option tau must be a time in seconds > 0 (got {tau!r})")
        self.spec, self.dt, self.tau = spec, float(dt), float(tau)
        self.neuron_type = nengo.LIF() if neuron_type is None else neuron_type
        self.scale_firing_rates = float(scale_firing_rates)
        spiking = bool(getattr(self.neuron_type, "spiking", False))
        self.readout_synapse = (SPIKING_READOUT_SYNAPSE if spiking else None) if readout_synapse == "default" \
            else readout_synapse
        if max_rates is None:
            lo, hi = (scale_firing_rates * r for r in DEFAULT_MAX_RATES)
            tau_ref = getattr(self.neuron_type, "tau_ref", None)
            if tau_ref is not None and isinstance(self.neuron_type, (nengo.LIF, nengo.LIFRate)) \
                    and hi >= 1.0 / tau_ref:
                raise ArgumentError(f"nengo backend option scale_firing_rates={scale_firing_rates} asks LIF neurons "
                                    f"for up to {hi:.0f} Hz, beyond their limit 1/tau_ref = {1 / tau_ref:.0f} Hz: "
                                    f"use scale_firing_rates < {1 / (tau_ref * DEFAULT_MAX_RATES[1]):.2f} or "
                                    "SpikingRectifiedLinear neurons")
            max_rates = nengo.dists.Uniform(lo, hi)
        try:
            radii = np.broadcast_to(np.asarray(radius, dtype=np.float64), (spec.memory_size,)) \
                if np.size(radius) in (1, spec.memory_size) else None
        except (TypeError, ValueError):  # not numbers
            radii = None
        if radii is None or not np.all(np.isfinite(radii) & (radii > 0)):
            raise ArgumentError(f"nengo backend option radius must be a number > 0 or {spec.memory_size} of them, one "
                                f"per memory dimension (got {radius!r})")
        ens_kwargs = dict(neuron_type=self.neuron_type, max_rates=max_rates)
        if intercepts is not None:
            ens_kwargs["intercepts"] = intercepts
        A, B = self.continuous(theta)
        with self:
            self.input = nengo.Node(size_in=spec.memory_d, label="u")
            self.array = nengo.networks.EnsembleArray(neurons, spec.memory_size, ens_dimensions=1,
                                                          label="memory ensembles", **ens_kwargs)
            # readers get the decoded memory from a node fed by each ensemble directly: nengo-loihi 1.1 outputs
            # zeros downstream of an EnsembleArray's output node once that node also carries the recurrence
            self.output = nengo.Node(size_in=spec.memory_size, label="memory")
            for i, ens in enumerate(self.array.ea_ensembles):
                ens.radius = float(radii[i])
                nengo.Connection(ens, self.output[i], synapse=None)
            self.direct = bool(direct)
            if self.direct:
                ens = self.array.ea_ensembles
                self.recurrent = [(i, j, nengo.Connection(ens[j], ens[i], transform=A[i, j], synapse=self.tau))
                                  for i in range(len(ens)) for j in range(len(ens)) if A[i, j] != 0]
            else:
                self.recurrent = nengo.Connection(self.array.output, self.array.input, transform=A,
                                                  synapse=self.tau)
            self.feed = nengo.Connection(self.input, self.array.input, transform=B, synapse=self.tau)

    def continuous(self, theta):
        """The recurrent (``τA/θ_s + I``) and input (``τB/θ_s``) transforms, block-diagonal over memory_d."""
        A, B = legendre.continuous(self.spec.order)
        theta_s = float(theta) * self.dt
        eye = np.eye(self.spec.memory_d)
        rec = np.kron(eye, self.tau * A / theta_s + np.eye(self.spec.order))
        inp = np.kron(eye, (self.tau * B / theta_s)[:, None])
        return rec, inp

    def set_theta(self, theta):
        """Rewrite the transforms for a new θ (before a simulator is built)."""
        A, self.feed.transform = self.continuous(theta)
        if self.direct:
            for i, j, conn in self.recurrent:
                conn.transform = A[i, j]
        else:
            self.recurrent.transform = A

    def relu_population(self, units, bias, target):
        """A population computing a relu dense layer on its ``.neurons`` input, output into ``target``.

        Spiking neurons fire ``SPIKING_RELU_RATE`` (400) Hz per unit of activation times ``scale_firing_rates``
        (rate neurons: ``scale_firing_rates`` Hz), and spike amplitudes are divided by the same scale, so the
        mean output equals ``relu(J)``; incoming transforms and the bias are multiplied by it. Returns the
        ensemble and that scale."""
        spiking = bool(getattr(self.neuron_type, "spiking", False))
        s = self.scale_firing_rates * (SPIKING_RELU_RATE if spiking else 1.0)
        kind = nengo.SpikingRectifiedLinear if spiking else nengo.RectifiedLinear
        bias = np.zeros(units) if bias is None else s * np.asarray(bias, dtype=np.float64)
        ens = nengo.Ensemble(units, 1, neuron_type=kind(amplitude=1.0 / s), gain=np.ones(units), bias=bias,
                             label="hidden relu neurons")
        nengo.Connection(ens.neurons, target, synapse=self.readout_synapse)
        return ens, s
