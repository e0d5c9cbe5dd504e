"""lmu_torch: the PyTorch backend of lmu (``lmu.build(spec, backend="torch")``).

Design rule: importing this package does not import torch; :class:`TorchBackend` imports it when it builds.
``lmu_torch.LMU`` (the ``torch.nn.Module``) loads torch on first access.
"""

from .backend import MODES, TorchBackend

__all__ = ["TorchBackend", "LMU", "MODES"]


def __getattr__(name):
    if name == "LMU":
        from .module import LMU

        return LMU
    raise AttributeError(f"module 'lmu_torch' has no attribute {name!r}")
