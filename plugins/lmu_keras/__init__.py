"""lmu_keras: the Keras backend of lmu, built from keras-lmu's own layers (``lmu.build(spec, backend="keras")``).

Design rule: importing this package imports neither TensorFlow nor Keras; :class:`KerasBackend` imports them when it
builds, and the whole-model helpers (:func:`from_keras`) load them on first access. keras-lmu is a dependency (its
own licence); none of its code is copied here.
"""

import importlib

from .backend import MODES, KerasBackend

__all__ = ["KerasBackend", "MODES", "from_keras", "weights_from_h5", "read_model"]

#: name → the submodule that defines it (imported on first access).
_LAZY = {"from_keras": "importer", "weights_from_h5": "h5", "read_model": "models"}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
