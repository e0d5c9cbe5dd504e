"""lmu: the Legendre Memory Unit, described once (:class:`LMUSpec`) and built in any framework (:func:`build`).

Design rule: importing ``lmu`` imports NumPy and SciPy only; frameworks are imported by their backends when
something is built with them, and the heavier core modules (the conformance kit, datasets, training) load on first
use. The layers of the package and the contract of a backend are described in the design document
(docs/design.rst).
"""

import importlib

from . import legendre
from ._version import __version__
from .backend import Backend
from .errors import (
    ArgumentError,
    BackendUnavailable,
    DatasetError,
    FileError,
    LMUError,
    SpecError,
    UnsupportedSpec,
    WeightsFileError,
)
from .registry import (
    BackendInfo,
    backends,
    build,
    convert,
    from_keras,
    get_weights,
    refresh,
    register,
    run,
    set_weights,
    spec_of,
)
from .models import convert_model
from .spec import Hidden, LMUSpec
from .weights import LMUWeights, init_weights, load_weights, save_weights

__all__ = [
    "LMUSpec",
    "Hidden",
    "LMUWeights",
    "init_weights",
    "save_weights",
    "load_weights",
    "build",
    "backends",
    "register",
    "refresh",
    "spec_of",
    "get_weights",
    "set_weights",
    "run",
    "convert",
    "from_keras",
    "convert_model",
    "Backend",
    "BackendInfo",
    "LMUError",
    "SpecError",
    "UnsupportedSpec",
    "BackendUnavailable",
    "ArgumentError",
    "FileError",
    "WeightsFileError",
    "DatasetError",
    "legendre",
    "__version__",
]

#: Modules of the package that load on first access (``lmu.testing``, ``lmu.datasets``, ...).
_LAZY = ("testing", "reference", "registry", "datasets", "train", "arrays", "activations", "backend", "signals",
         "demo", "plots", "progress", "spec", "weights", "errors", "cli")


def __getattr__(name):
    if name in _LAZY:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'lmu' has no attribute {name!r}")
