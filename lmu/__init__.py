"""lmu: the Legendre Memory Unit, described once (:class:`LMUSpec`) and built in any framework (:func:`build`).

Design rule: importing ``lmu`` imports NumPy and SciPy only; frameworks are imported by their backends when
something is built with them.
"""

from . import legendre
from .errors import BackendUnavailable, SpecError, UnsupportedSpec
from .registry import (
    Backend,
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
from .spec import Hidden, LMUSpec
from .weights import LMUWeights, init_weights, load_weights, save_weights

__version__ = "0.5.0.dev0"

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
    "Backend",
    "BackendInfo",
    "SpecError",
    "BackendUnavailable",
    "UnsupportedSpec",
    "legendre",
    "__version__",
]


def __getattr__(name):
    # lmu.testing and lmu.reference load on first use so that `import lmu` stays light.
    if name in ("testing", "reference", "registry", "datasets"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'lmu' has no attribute {name!r}")
