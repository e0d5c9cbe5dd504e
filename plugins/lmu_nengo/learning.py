"""Deprecated alias of :mod:`lmu_nengo.train` (every plugin keeps its training helpers in ``train``); it will be
removed in lmu 0.6."""

import warnings

from .train import OnlineReadout, learn_readout

__all__ = ["OnlineReadout", "learn_readout"]

warnings.warn("lmu_nengo.learning is deprecated and will be removed in lmu 0.6: use lmu_nengo.train (or "
              "lmu_nengo.learn_readout)", DeprecationWarning, stacklevel=2)
