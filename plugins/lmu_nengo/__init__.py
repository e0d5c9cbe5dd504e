"""lmu_nengo: the Nengo backend of lmu (``lmu.build(spec, backend="nengo")``), and online learning with PES.

Design rule: importing this package does not import nengo; the backend imports it when it builds, and the
names that are nengo objects (:class:`LMUNetwork`, :func:`learn_readout`, ...) load it on first access.
"""

import importlib

from .backend import NengoBackend

__all__ = ["NengoBackend", "LMUNetwork", "NeuronMemory", "OnlineReadout", "learn_readout", "weights_of"]

#: name → the submodule that defines it (imported on first access: these import nengo).
_LAZY = {"LMUNetwork": "network", "NeuronMemory": "memory", "OnlineReadout": "train", "learn_readout": "train",
         "weights_of": "simulate"}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
