"""The ``nengo`` entry point: what the registry loads. It imports nengo only inside its methods."""

from __future__ import annotations

import math

import lmu

__all__ = ["NengoBackend", "NEURON_OPTIONS", "SPIKING_READOUT_SYNAPSE", "positive"]

#: The synapse (seconds) through which readers see a spiking memory (and a spiking relu hidden) by default.
SPIKING_READOUT_SYNAPSE = 0.02
#: Options that only neurons mode takes (see :class:`lmu_nengo.NeuronMemory`).
NEURON_OPTIONS = ("neuron_type", "scale_firing_rates", "radius", "tau", "readout_synapse", "max_rates",
                  "intercepts", "direct")


def positive(backend: str, option: str, value, what: str) -> None:
    """Refuse an option that is not a finite number > 0, naming it (before nengo ever sees it)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
        raise lmu.ArgumentError(f"{backend} backend option {option} must be {what} > 0 (got {value!r})")


def _check_neuron_options(backend: str, given: dict, label) -> None:
    """The kinds of the neurons-mode options, checked by name before nengo sees them."""
    import nengo

    if label is not None and not isinstance(label, str):
        raise lmu.ArgumentError(f"{backend} backend option label must be a string or None (got {label!r})")
    if "neuron_type" in given and not isinstance(given["neuron_type"], nengo.neurons.NeuronType):
        raise lmu.ArgumentError(f"{backend} backend option neuron_type must be a nengo neuron type such as "
                                f"nengo.LIF() (got {given['neuron_type']!r})")
    synapse = given.get("readout_synapse")
    if "readout_synapse" in given and not (synapse is None or isinstance(synapse, nengo.synapses.Synapse) or (
            isinstance(synapse, (int, float)) and not isinstance(synapse, bool) and math.isfinite(synapse)
            and synapse >= 0)):
        raise lmu.ArgumentError(f"{backend} backend option readout_synapse must be None, a time constant in "
                                f"seconds >= 0 or a nengo synapse (got {synapse!r})")
    for option in ("max_rates", "intercepts"):
        value = given.get(option)
        if value is not None and not isinstance(value, nengo.dists.Distribution):
            raise lmu.ArgumentError(f"{backend} backend option {option} must be a nengo distribution such as "
                                    f"nengo.dists.Uniform(200, 400) (got {value!r})")
    if "direct" in given and not isinstance(given["direct"], bool):
        raise lmu.ArgumentError(f"{backend} backend option direct must be True or False (got {given['direct']!r})")


class NengoBackend(lmu.Backend):
    """``lmu.build(spec, backend="nengo", dt=0.001, neurons=None, ...)`` → :class:`lmu_nengo.LMUNetwork`.

    Options: ``dt`` (seconds per step), ``neurons`` (None: exact mode; an int: neurons per memory dimension),
    ``label``, ``seed``, and for neurons mode ``neuron_type``, ``scale_firing_rates``, ``radius``, ``tau``,
    ``readout_synapse``, ``max_rates``, ``intercepts``, ``direct`` (see :class:`lmu_nengo.NeuronMemory`; None
    means its default). ``get_weights``/``set_weights``/``lmu.run`` take the network or a ``nengo.Simulator``
    built from it.

    Examples
    --------
    >>> import lmu, numpy as np
    >>> spec = lmu.LMUSpec(memory_d=1, order=4, theta=20, input_d=1, hidden=lmu.Hidden("dense", 3, "relu"))
    >>> net = lmu.build(spec, backend="nengo")  # exact: equal to the reference to rounding
    >>> x = np.random.default_rng(0).normal(size=(1, 30, 1))
    >>> bool(np.allclose(lmu.run(net, x), lmu.run(lmu.convert(net, "numpy"), x), atol=1e-6))
    True
    """

    name = "nengo"
    extra = "nengo"
    requires = ("nengo",)
    framework = "nengo"

    def build(self, spec, weights, *, dt=0.001, neurons=None, label=None, seed=None, neuron_type=None,
              scale_firing_rates=None, radius=None, tau=None, readout_synapse="default", max_rates=None,
              intercepts=None, direct=None):
        given = {k: v for k, v in dict(neuron_type=neuron_type, scale_firing_rates=scale_firing_rates,
                                       radius=radius, tau=tau, max_rates=max_rates, intercepts=intercepts,
                                       direct=direct).items() if v is not None}
        if readout_synapse != "default":
            given["readout_synapse"] = readout_synapse
        if neurons is None and given:
            raise lmu.ArgumentError(f"{self.name} backend option(s) {', '.join(sorted(given))} apply to neurons "
                                    "mode only: pass neurons=N (neurons per memory dimension) as well")
        positive(self.name, "dt", dt, "a time step in seconds")
        for option in ("scale_firing_rates", "tau"):
            if option in given:
                positive(self.name, option, given[option], "a number" if option != "tau" else "a time in seconds")
        _check_neuron_options(self.name, given, label)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise lmu.ArgumentError(f"{self.name} backend option seed must be an integer >= 0 or None (got {seed!r})")
        return self._network(spec, weights, dt=float(dt), neurons=neurons, label=label, seed=seed, **given)

    def _network(self, spec, weights, **options):
        import nengo

        from .network import LMUNetwork

        try:
            return LMUNetwork(spec, weights, backend=self.name, **options)
        except nengo.exceptions.ValidationError as err:  # an option's value nengo refuses (the user's input)
            named = ", ".join(sorted(k for k in options if k not in ("dt", "neurons")))
            raise lmu.ArgumentError(f"{self.name} backend: nengo refused the value of an option ({named}): "
                                    f"{err}") from err

    # -- weights -------------------------------------------------------------------------------------------------
    def get_weights(self, obj):
        from .simulate import find_network, weights_of

        net = find_network(obj, self.name)
        return weights_of(net, None if obj is net else obj)

    def set_weights(self, obj, weights):
        from .simulate import find_network, load_weights_into

        net = find_network(obj, self.name)
        if obj is net:
            net.write_weights(weights)
        else:
            load_weights_into(net, obj, weights)

    # -- running -------------------------------------------------------------------------------------------------
    def run(self, obj, x, state=None, return_state=False):
        from .simulate import find_network

        net = find_network(obj, self.name)
        spec = net.lmu_spec
        result = self._run(net, self.get_weights(obj), x, state, return_state)
        out, final = result if return_state else (result, None)
        out = out if spec.return_sequences else out[:, -1]
        out = out.astype(spec.dtype)
        if return_state:
            return out, {k: v.astype(spec.dtype) for k, v in final.items()}
        return out

    def _run(self, net, weights, x, state, return_state):
        from .simulate import run_batch

        return run_batch(net, weights, x, state, return_state)

    def owns(self, obj):
        if getattr(obj, "lmu_backend", None) == self.name:
            return True
        try:
            from .simulate import find_network, is_simulator

            if not is_simulator(obj):
                return False
            find_network(obj, self.name)
            return True
        except (lmu.LMUError, ImportError):
            return False

    def spec_of(self, obj):
        from .simulate import find_network

        return find_network(obj, self.name).lmu_spec
