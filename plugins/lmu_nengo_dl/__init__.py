"""lmu_nengo_dl: the NengoDL backend of lmu (``lmu.build(spec, backend="nengo_dl")``) and its :class:`Trainer`.

Design rule: importing this package imports neither nengo, nengo-dl nor TensorFlow; building does, and the names
that are nengo-dl objects load them on first access. NengoDL 3.6 imports only with TensorFlow ≤ 2.12, so this
backend lives in an environment of its own (``lmu[nengo-dl]``).
"""

import importlib

from .backend import NengoDLBackend

__all__ = ["NengoDLBackend", "LMUNetworkDL", "Trainer"]

#: name → the submodule that defines it (imported on first access: these import nengo-dl and TensorFlow).
_LAZY = {"LMUNetworkDL": "network", "Trainer": "train"}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
