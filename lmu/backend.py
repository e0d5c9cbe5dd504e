"""The backend contract: the class every backend subclasses, and what it may declare.

Design rule: a backend says what it needs and can do without importing its framework: ``requires`` is checked
with ``importlib.util.find_spec`` (nothing imported), and only ``build`` and the methods after it touch the
framework. :mod:`lmu.registry` discovers backends and dispatches to them.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util

from .spec import LMUSpec
from .weights import LMUWeights

__all__ = ["Backend", "modes_that_apply"]


class Backend:
    """The contract of an LMU backend. Subclass it, fill in the class attributes, implement the methods.

    A backend is registered under the entry-point group ``lmu.backends`` (``name = "module:Class"``) or in-process
    with :func:`lmu.register`. Importing the module that defines it must not import its framework: import the
    framework inside :meth:`build` and the other methods.

    Attributes
    ----------
    name : str
        The name users pass to ``lmu.build(spec, backend=name)``.
    extra : str or None
        The pip extra of ``lmu`` that installs the backend's needs (None: nothing beyond the core).
    requires : tuple of str
        Top-level modules the backend needs, checked with ``importlib.util.find_spec`` (nothing is imported).
    framework : str or None
        The distribution whose version :func:`lmu.backends` reports.

    Examples
    --------
    >>> import lmu
    >>> class Echo(lmu.Backend):
    ...     name = "echo"
    ...     requires = ("numpy",)
    >>> Echo().unavailable() is None
    True
    """

    name: str = ""
    extra: str | None = None
    requires: tuple[str, ...] = ()
    framework: str | None = None
    #: None for a backend that must equal the reference; an NRMSE limit for one that approximates it (spiking
    #: hardware): the kit then runs :meth:`conformance_battery` against that limit instead of exact tolerances.
    approximate: float | None = None

    # -- availability ------------------------------------------------------------------------------------------
    def install_command(self) -> str:
        """The exact command that installs what this backend needs."""
        return f'pip install "lmu[{self.extra}]"' if self.extra else "pip install lmu"

    def unavailable(self) -> str | None:
        """None when usable, else the reason with the install command."""
        missing = [m for m in self.requires if not _module_exists(m)]
        if missing:
            return f"{self.install_command()} (missing: {', '.join(missing)})"
        return None

    def version(self) -> str | None:
        """The installed version of :attr:`framework`, or None."""
        if not self.framework:
            return None
        try:
            return importlib.metadata.version(self.framework)
        except importlib.metadata.PackageNotFoundError:
            return None

    def check(self, spec: LMUSpec) -> list[str]:
        """The reasons this backend cannot build ``spec`` (empty when it can)."""
        return []

    def conformance_options(self, spec: LMUSpec) -> list[dict]:
        """The option sets ``lmu check`` runs the conformance kit with for ``spec`` (default: the defaults)."""
        return [{}]

    def conformance_battery(self, quick: bool = False):
        """The cases an approximate backend is checked on (default: the kit's battery)."""
        from .testing import cases

        return cases(quick=quick)

    def readout_lowpass(self, spec: LMUSpec, options: dict) -> float | None:
        """The lowpass time constant (steps) through which an approximate backend's outputs are read, or None:
        the kit filters the reference by it before comparing."""
        return None

    # -- building and running ----------------------------------------------------------------------------------
    def build(self, spec: LMUSpec, weights: LMUWeights, **options):
        """Return the framework's native object for ``spec`` holding ``weights``."""
        raise NotImplementedError(f"backend {self.name!r} does not implement build()")

    def get_weights(self, obj) -> LMUWeights:
        """The object's weights in the canonical layout."""
        raise NotImplementedError(f"backend {self.name!r} does not implement get_weights()")

    def set_weights(self, obj, weights: LMUWeights) -> None:
        """Load canonical weights into the object."""
        raise NotImplementedError(f"backend {self.name!r} does not implement set_weights()")

    def run(self, obj, x, state=None, return_state=False):
        """Inference on a checked NumPy batch ``(batch, T, input_d)``; NumPy output (and state when asked)."""
        raise NotImplementedError(f"backend {self.name!r} does not implement run()")

    def owns(self, obj) -> bool:
        """Whether ``obj`` was built by this backend (by default: its ``lmu_backend`` attribute names us)."""
        return getattr(obj, "lmu_backend", None) == self.name

    def spec_of(self, obj) -> LMUSpec:
        """The spec an object was built from (by default its ``lmu_spec`` attribute)."""
        return obj.lmu_spec


def modes_that_apply(spec: LMUSpec, modes, check_mode) -> list[dict]:
    """``[{"mode": m}, …]`` for each mode that ``check_mode(spec, m)`` accepts (raises ValueError to refuse): the
    usual :meth:`Backend.conformance_options` of a backend with a ``mode`` option."""
    out = []
    for mode in modes:
        try:
            check_mode(spec, mode)
        except ValueError:
            continue
        out.append({"mode": mode})
    return out


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False
