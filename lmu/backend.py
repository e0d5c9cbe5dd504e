"""The backend contract: the class every backend subclasses, and what it declares about itself as data.

Design rule: a backend implements four methods (``build``, ``get_weights``, ``set_weights``, ``run``) and says
what it supports as class attributes (``modes``, ``dtypes``, ``accuracy``, ``test_options``), not hooks: the
registry, ``lmu check`` and the conformance kit read those declarations. Its options are the keyword-only
parameters of its ``build``, which the registry checks by name before the framework is imported. Nothing here is
about testing and nothing imports a framework: ``requires`` is checked with ``importlib.util.find_spec``.
"""

from __future__ import annotations

import abc
import dataclasses
import difflib
import importlib.util
import inspect
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from .errors import ArgumentError, UnsupportedSpec
from .install import install_command
from .spec import LMUSpec
from .weights import LMUWeights

__all__ = ["Backend", "Mode", "Accuracy", "EXACT", "CONDITIONS", "install_command", "mode_refusal",
           "modes_that_apply", "check_options", "check_mode", "missing_modules"]

#: The conditions a :class:`Mode` may need: a test on the spec, what it means, and what in a spec breaks it.
CONDITIONS: dict[str, tuple[Callable[[LMUSpec], bool], str, Callable[[LMUSpec], list[str]]]] = {
    "lti": (lambda spec: spec.is_lti,
            "an LTI spec (no hidden_to_memory, no memory_to_memory)",
            lambda spec: [f"{f}=True" for f in ("hidden_to_memory", "memory_to_memory") if getattr(spec, f)]),
    "fixed_theta": (lambda spec: not spec.trainable_theta, "a fixed θ (trainable_theta=False)",
                    lambda spec: ["trainable_theta=True"]),
    "last_step": (lambda spec: not spec.return_sequences and (spec.hidden is None or spec.hidden.kind == "dense"),
                  "return_sequences=False and a hidden cell without recurrence (None or dense)",
                  lambda spec: (["return_sequences=True"] if spec.return_sequences else [])
                  + ([f"hidden kind {spec.hidden.kind!r}"] if spec.hidden is not None
                     and spec.hidden.kind != "dense" else [])),
}


@dataclasses.dataclass(frozen=True)
class Mode:
    """One value of a backend's ``mode`` option: its name, the :data:`CONDITIONS` it needs, and what it does.

    Examples
    --------
    >>> Mode("fft", needs=("lti",), summary="memory for all steps by FFT convolution").name
    'fft'
    """

    name: str
    needs: tuple[str, ...] = ()
    summary: str = ""

    def __post_init__(self):
        unknown = [n for n in self.needs if n not in CONDITIONS]
        if unknown:
            raise ArgumentError(f"Mode {self.name!r} needs unknown condition(s) {unknown}; known: "
                                  f"{', '.join(CONDITIONS)}")

    def refusal(self, spec: LMUSpec) -> str | None:
        """Why this mode cannot compute ``spec`` (None when it can): what it needs and what the spec has."""
        unmet = [n for n in self.needs if not CONDITIONS[n][0](spec)]
        if not unmet:
            return None
        what = f"mode={self.name!r} is {self.summary}, which" if self.summary else f"mode={self.name!r}"
        needs = " and ".join(CONDITIONS[n][1] for n in unmet)
        has = [flag for n in unmet for flag in CONDITIONS[n][2](spec)]
        return f"{what} needs {needs}; this spec has {', '.join(has)}"


@dataclasses.dataclass(frozen=True)
class Accuracy:
    """How closely a backend computes the reference.

    ``nrmse=None`` (:data:`EXACT`): the kit's fixed relative tolerances (1e-9 in float64, 2e-5 in float32) on its
    whole battery. A number: the backend approximates (spiking hardware) and is held to that NRMSE on its own
    ``battery`` of ``(id, spec, steps)`` cases of one sequence, or ``(id, spec, steps, batch)`` (the first ``quick``
    of them for a quick check), with the reference read through a lowpass of ``readout_lowpass`` steps, as the
    backend's outputs are.
    """

    nrmse: float | None = None
    readout_lowpass: float | None = None
    battery: tuple[tuple, ...] = ()
    quick: int = 2

    @property
    def exact(self) -> bool:
        """Whether the backend must equal the reference within the fixed tolerances."""
        return self.nrmse is None


#: The accuracy of a backend that computes the reference exactly (to rounding).
EXACT = Accuracy()


class Backend(abc.ABC):
    """The contract of an LMU backend: subclass it, declare the class attributes, implement four methods.

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
    modes : tuple of Mode
        The values of ``build``'s ``mode`` option (empty: the backend has no ``mode``); the first is the default.
        :func:`lmu.build` refuses a mode the spec cannot run, naming what it needs.
    dtypes : tuple of str
        The spec dtypes the backend computes in; the default :meth:`check` refuses the others.
    accuracy : Accuracy
        :data:`EXACT`, or an NRMSE limit with the backend's own battery (see :class:`Accuracy`).
    test_options : tuple of dict
        Option sets (besides each applicable mode) that the backend's conformance runs use, e.g. a fixed seed.

    Examples
    --------
    >>> import lmu
    >>> from lmu.reference import ReferenceLMU
    >>> class Echo(lmu.Backend):
    ...     name = "echo"
    ...     requires = ("numpy",)
    ...     def build(self, spec, weights):
    ...         return ReferenceLMU(spec, weights, backend=self.name)
    ...     def get_weights(self, obj):
    ...         return obj.weights
    ...     def set_weights(self, obj, weights):
    ...         obj.set_weights(weights)
    ...     def run(self, obj, x, state=None, return_state=False):
    ...         return obj.run(x, state, return_state)
    >>> Echo().unavailable() is None
    True
    """

    name: ClassVar[str] = ""
    extra: ClassVar[str | None] = None
    requires: ClassVar[tuple[str, ...]] = ()
    framework: ClassVar[str | None] = None
    modes: ClassVar[tuple[Mode, ...]] = ()
    dtypes: ClassVar[tuple[str, ...]] = ("float32", "float64")
    accuracy: ClassVar[Accuracy] = EXACT
    test_options: ClassVar[tuple[dict[str, Any], ...]] = ({},)

    # -- required ------------------------------------------------------------------------------------------------
    @abc.abstractmethod
    def build(self, spec: LMUSpec, weights: LMUWeights) -> Any:
        """The framework's native object for ``spec`` holding ``weights`` (checked against ``spec``).

        Options are keyword-only parameters after ``weights`` (``def build(self, spec, weights, *, mode="auto")``);
        :func:`lmu.build` refuses any other name before calling this."""

    @abc.abstractmethod
    def get_weights(self, obj) -> LMUWeights:
        """The object's weights in the canonical layout."""

    @abc.abstractmethod
    def set_weights(self, obj, weights: LMUWeights) -> None:
        """Load canonical weights (already checked against the object's spec) into the object."""

    @abc.abstractmethod
    def run(self, obj, x, state=None, return_state: bool = False):
        """Inference on a checked NumPy batch ``(batch, T, input_d)``; NumPy output (and state when asked)."""

    # -- optional, with defaults -----------------------------------------------------------------------------------
    def unavailable(self) -> str | None:
        """None when usable, else the reason with the install command (default: checks :attr:`requires`)."""
        missing = missing_modules(self.requires)
        if missing:
            return f"{install_command(self.extra, missing)} (missing: {', '.join(missing)})"
        return None

    def check(self, spec: LMUSpec) -> list[str]:
        """The reasons this backend cannot build ``spec`` (default: a dtype outside :attr:`dtypes`)."""
        if spec.dtype not in self.dtypes:
            return [f"LMUSpec.dtype={spec.dtype!r}: the {self.name} backend computes in "
                    f"{' and '.join(self.dtypes)} only"]
        return []

    def owns(self, obj) -> bool:
        """Whether ``obj`` was built by this backend (default: its ``lmu_backend`` attribute names us)."""
        return getattr(obj, "lmu_backend", None) == self.name

    def spec_of(self, obj) -> LMUSpec:
        """The spec an object was built from (default: its ``lmu_spec`` attribute)."""
        return obj.lmu_spec


def missing_modules(modules) -> list[str]:
    """The modules among ``modules`` that are not installed (found with ``find_spec``, nothing imported)."""
    return [m for m in modules if not _module_exists(m)]


def mode_refusal(backend, spec: LMUSpec, mode) -> str | None:
    """Why ``backend`` cannot run ``spec`` in ``mode`` (an unknown mode, or a condition the spec does not meet).

    Examples
    --------
    >>> import lmu
    >>> from lmu.reference import NumpyBackend
    >>> spec = lmu.LMUSpec(memory_d=1, order=4, theta=8, input_d=1, memory_to_memory=True)
    >>> print(mode_refusal(NumpyBackend(), spec, "fft"))
    mode='fft' needs an LTI spec (no hidden_to_memory, no memory_to_memory); this spec has memory_to_memory=True: \
use mode='step' or 'auto'
    """
    modes = {m.name: m for m in getattr(backend, "modes", ())}
    if not isinstance(mode, str) or mode not in modes:
        listed = ", ".join(modes) or "none (it has no mode option)"
        return f"{backend.name} backend option mode must be one of {listed} (got {mode!r})"
    reason = modes[mode].refusal(spec)
    if reason is None:
        return None
    default = next(iter(modes))
    usable = sorted((m for m in modes if modes[m].refusal(spec) is None), key=lambda m: m == default)
    return f"{reason}: use mode={' or '.join(repr(m) for m in usable)}"  # the default last: "'step' or 'auto'"


def check_options(backend, spec: LMUSpec, options: Mapping[str, Any]) -> dict[str, Any]:
    """Refuse options that ``backend.build`` does not take (naming the closest one) and a ``mode`` the backend or
    the spec cannot run; returns the options unchanged.

    The options a backend takes are the keyword parameters of its ``build`` after ``spec`` and ``weights``; a
    ``build`` with ``**options`` checks its own.

    Examples
    --------
    >>> import lmu
    >>> spec = lmu.LMUSpec(memory_d=1, order=4, theta=8, input_d=1)
    >>> from lmu.reference import NumpyBackend
    >>> check_options(NumpyBackend(), spec, {"mdoe": "step"})
    Traceback (most recent call last):
    ...
    lmu.errors.ArgumentError: unknown option 'mdoe' (did you mean mode=?) for the numpy backend; it takes only \
the option mode=
    """
    params = list(inspect.signature(backend.build).parameters.values())[2:]  # after spec, weights
    accepted = [p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
    open_ended = any(p.kind is p.VAR_KEYWORD for p in params)
    unknown = [name for name in options if name not in accepted]
    if unknown and not open_ended:
        name = getattr(backend, "name", "?")
        takes = ("no options" if not accepted else f"only the option {accepted[0]}=" if len(accepted) == 1
                 else ", ".join(f"{a}=" for a in accepted[:-1]) + f" and {accepted[-1]}=")
        parts = []
        for bad in unknown:
            close = difflib.get_close_matches(str(bad), accepted, n=1)
            parts.append(f"{bad!r}" + (f" (did you mean {close[0]}=?)" if close else ""))
        noun = "option" if len(unknown) == 1 else "options"
        raise ArgumentError(f"unknown {noun} {', '.join(parts)} for the {name} backend; it takes {takes}")
    if "mode" in options and bool(getattr(backend, "modes", ())):
        check_mode(backend, spec, options["mode"])
    return dict(options)


def check_mode(backend, spec: LMUSpec, mode) -> None:
    """Refuse a mode ``backend`` does not declare (:class:`lmu.ArgumentError`) or that cannot run ``spec``
    (:class:`lmu.UnsupportedSpec`), with :func:`mode_refusal`'s reason."""
    reason = mode_refusal(backend, spec, mode)
    if reason is not None:
        known = {m.name for m in getattr(backend, "modes", ())}
        raise (UnsupportedSpec if isinstance(mode, str) and mode in known else ArgumentError)(reason)


def modes_that_apply(backend, spec: LMUSpec) -> list[str]:
    """The names of ``backend``'s modes that can run ``spec``, in declaration order."""
    return [m.name for m in getattr(backend, "modes", ()) if m.refusal(spec) is None]


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False
