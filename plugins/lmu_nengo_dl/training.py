"""Deprecated alias of :mod:`lmu_nengo_dl.train` (every plugin keeps its training helpers in ``train``); it will be
removed in lmu 0.6."""

import warnings

from .train import Trainer

__all__ = ["Trainer"]

warnings.warn("lmu_nengo_dl.training is deprecated and will be removed in lmu 0.6: use lmu_nengo_dl.train (or "
              "lmu_nengo_dl.Trainer)", DeprecationWarning, stacklevel=2)
