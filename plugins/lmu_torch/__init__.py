"""lmu_torch: the PyTorch backend of lmu (``lmu.build(spec, backend="torch")``).

Design rule: importing this package does not import torch; :class:`TorchBackend` imports it when it builds, and
the names that are torch objects (``lmu_torch.LMU``, the ``torch.nn.Module``) load it on first access.
"""

import importlib

from .backend import MODES, TorchBackend

__all__ = ["TorchBackend", "LMU", "MODES", "build_model"]

#: name → the submodule that defines it (imported on first access: these import torch).
_LAZY = {"LMU": "module", "build_model": "models"}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
