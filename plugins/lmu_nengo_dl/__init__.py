"""lmu_nengo_dl: the NengoDL backend of lmu (``lmu.build(spec, backend="nengo_dl")``) and a small trainer.

Design rule: importing this package imports neither nengo, nengo-dl nor TensorFlow; building does. NengoDL 3.6
imports only with TensorFlow ≤ 2.12, so this backend lives in an environment of its own (``lmu[nengo-dl]``).
"""

from .backend import NengoDLBackend

__all__ = ["NengoDLBackend", "LMUNetworkDL", "Trainer"]

_LAZY = {"LMUNetworkDL": "network", "Trainer": "training"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'lmu_nengo_dl' has no attribute {name!r}")
