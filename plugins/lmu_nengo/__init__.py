"""lmu_nengo: the Nengo backend of lmu (``lmu.build(spec, backend="nengo")``), and online learning with PES.

Design rule: importing this package does not import nengo; the backend imports it when it builds, and the
names that are nengo objects (:class:`LMUNetwork`, :func:`learn_readout`, ...) load it on first access.
"""

from .backend import NengoBackend

__all__ = ["NengoBackend", "LMUNetwork", "NeuronMemory", "OnlineReadout", "learn_readout", "weights_of"]

_LAZY = {"LMUNetwork": "network", "NeuronMemory": "memory", "OnlineReadout": "learning",
         "learn_readout": "learning", "weights_of": "simulate"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'lmu_nengo' has no attribute {name!r}")
