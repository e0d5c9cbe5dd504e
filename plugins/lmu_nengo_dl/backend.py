"""The ``nengo_dl`` entry point: what the registry loads. It imports nengo-dl and TensorFlow only inside methods.

Design rule: ``unavailable`` explains the one conflict users meet (NengoDL 3.6 imports only with TensorFlow ≤ 2.12)
from installed versions alone, without importing TensorFlow; ``run`` feeds the whole batch to one
``nengo_dl.Simulator`` (inputs and the initial state are input nodes), so inference is batched like training.
"""

from __future__ import annotations

import importlib.metadata

from lmu.errors import ArgumentError
from lmu_nengo.backend import NengoBackend

__all__ = ["NengoDLBackend", "MAX_TENSORFLOW"]

#: The newest TensorFlow minor version nengo-dl 3.6 imports with.
MAX_TENSORFLOW = (2, 12)


def _version(dist):
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _major_minor(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


class NengoDLBackend(NengoBackend):
    """``lmu.build(spec, backend="nengo_dl", dt=0.001)`` → :class:`lmu_nengo_dl.LMUNetworkDL`.

    The exact network of the nengo backend, configured for training with ``nengo_dl.Simulator.fit`` (see
    :class:`lmu_nengo_dl.Trainer`). Weights come out of the network or a NengoDL simulator (its trained values)
    and go into the network.

    Examples
    --------
    >>> import lmu, numpy as np
    >>> spec = lmu.LMUSpec(memory_d=1, order=4, theta=20, input_d=1, hidden=lmu.Hidden("rnn", 3))
    >>> net = lmu.build(spec, backend="nengo_dl")
    >>> x = np.random.default_rng(0).normal(size=(2, 30, 1))
    >>> bool(np.allclose(lmu.run(net, x), lmu.run(lmu.convert(net, "numpy"), x), atol=1e-5))
    True
    """

    name = "nengo_dl"
    extra = "nengo-dl"
    requires = ("nengo", "nengo_dl", "tensorflow")
    framework = "nengo-dl"

    def unavailable(self):
        tf = _version("tensorflow") or _version("tensorflow-cpu")
        if tf is not None and _major_minor(tf) > MAX_TENSORFLOW:
            # the one conflict users meet: installing the extra here would downgrade TensorFlow under keras
            have = "nengo-dl is installed but cannot import: " if _version("nengo-dl") else ""
            from lmu.install import install_command

            command = install_command(self.extra).replace("pip install", "dl/bin/pip install")
            return (f"{have}nengo-dl 3.6 needs TensorFlow <= 2.12 and this environment has TensorFlow {tf}; give "
                    f"it an environment of its own: python -m venv dl && {command}")
        return super().unavailable()

    def build(self, spec, weights, *, dt=0.001, label=None, seed=None):
        """The exact network (for neurons use ``backend="nengo"``)."""
        return super().build(spec, weights, dt=dt, label=label, seed=seed)

    def _network(self, spec, weights, **options):
        from .network import LMUNetworkDL

        return LMUNetworkDL(spec, weights, backend=self.name, **options)

    def set_weights(self, obj, weights):
        from lmu_nengo.simulate import find_network

        net = find_network(obj, self.name)
        if obj is not net:
            raise ArgumentError("NengoDL keeps a simulator's parameters in its TensorFlow model: set the weights on "
                                "the network and build a new nengo_dl.Simulator (sim.freeze_params(net) carries a "
                                "simulator's training back into the network)")
        net.write_weights(weights)

    def _run(self, net, weights, x, state, return_state):
        from .simulate import run_batch

        return run_batch(net, weights, x, state, return_state)
