"""lmu_loihi: the Loihi backend of lmu (``lmu.build(spec, backend="loihi")``), run by ``nengo_loihi.Simulator``.

Design rule: importing this package imports neither nengo nor nengo-loihi; the backend imports them when it
builds or runs. The network is lmu_nengo's neurons mode with Loihi's rules applied (see :class:`LoihiBackend`).
"""

import importlib

from .backend import REFUSALS, LoihiBackend

__all__ = ["LoihiBackend", "Simulator", "REFUSALS"]

#: name → the submodule that defines it (imported on first access).
_LAZY = {"Simulator": "simulate"}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
