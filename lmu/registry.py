"""Backend discovery, and dispatch on the objects backends build (the contract itself is in :mod:`lmu.backend`).

Design rule: discovery is lazy, cached, and survives broken plugins. The backends that ship in the core are listed
in one table, :data:`BUILTINS` (the numpy reference), which discovery merges first; every other backend, ours
included, is found through the entry-point group ``lmu.backends``, so a third-party plugin is discovered exactly
like ``lmu_torch``. Loading an entry point imports only the plugin module, never its framework. A plugin that
fails to load is reported with a warning and skipped; its failure is re-raised, chained, only when that backend is
asked for by name. Options are checked against the keyword-only parameters of the backend's ``build`` before the
backend (and its framework) sees them.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import importlib.metadata
import os
import re
import threading
import warnings
from collections.abc import Mapping
from typing import Any

from . import arrays
from ._version import __version__
from .backend import Backend, check_options
from .errors import ArgumentError, BackendUnavailable, SpecError, UnsupportedSpec
from .spec import LMUSpec
from .weights import LMUWeights, init_weights

__all__ = [
    "ENTRY_POINT_GROUP",
    "BUILTINS",
    "Backend",
    "BackendInfo",
    "backends",
    "get_backend",
    "build",
    "register",
    "unregister",
    "refresh",
    "spec_of",
    "get_weights",
    "set_weights",
    "run",
    "convert",
    "from_keras",
]

ENTRY_POINT_GROUP = "lmu.backends"
#: The backends that live in the core package itself: name → ``"module:Class"``. Merged before the entry points.
BUILTINS: dict[str, str] = {"numpy": "lmu.reference:NumpyBackend"}
_OUR_DISTRIBUTION = "lmu"
_CONTRACT = ("unavailable", "check", "build", "get_weights", "set_weights", "run", "owns")


@dataclasses.dataclass(frozen=True)
class BackendInfo:
    """One row of :func:`lmu.backends`."""

    name: str
    available: bool
    reason: str | None
    version: str | None
    provider: str
    extra: str | None

    def to_dict(self) -> dict:
        """The row as a plain dict (what ``lmu backends --json`` prints)."""
        return dataclasses.asdict(self)


@dataclasses.dataclass
class _Entry:
    name: str
    provider: str
    backend: Any = None
    error: BaseException | None = None
    extra: str | None = None


@dataclasses.dataclass(frozen=True)
class _Candidate:
    """A declaration of a backend: a built-in row or an entry point."""

    target: str  # "module:attr"
    label: str  # "<distribution> <version>" (for warnings and ``provider``)
    order: tuple  # sort key: built-ins, then our distribution, then by distribution name and target
    load: Any  # () -> the class or instance


_lock = threading.RLock()
_discovered: dict[str, _Entry] | None = None
_registered: dict[str, _Entry] = {}


def _dist_name(ep) -> str:
    """The normalized name (PEP 503) of the distribution that declares ``ep``; ``"~"`` when unknown."""
    dist = getattr(ep, "dist", None)
    if dist is None:
        return "~"
    try:
        name = dist.metadata.get("Name")  # .get: a missing Name must not warn or raise on newer Pythons
    except Exception:  # a plugin's broken metadata costs its label only
        name = None
    return re.sub(r"[-_.]+", "-", name).lower() if name else "~"


def _dist_label(ep) -> str:
    """``"<Name> <version>"`` of the distribution that declares ``ep``, for warnings and ``provider``."""
    dist = getattr(ep, "dist", None)
    if dist is None:
        return f"<unknown distribution> ({ep.value})"
    try:
        name, version = dist.metadata.get("Name"), dist.version
    except Exception:  # a plugin's broken metadata costs its label only
        name, version = None, None
    return f"{name or '<unnamed distribution>'} {version or '<no version>'}"


def _load_target(target: str):
    module, _, attr = target.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split(".") if attr else ():
        obj = getattr(obj, part)
    return obj


def _candidates() -> dict[str, list[_Candidate]]:
    """Every declaration of every backend name, built-ins first; one declaration seen twice counts once."""
    found: dict[str, dict[str, _Candidate]] = {}
    builtin_label = f"{_OUR_DISTRIBUTION} {__version__} (built in)"
    for name, target in BUILTINS.items():
        found.setdefault(name, {})[target] = _Candidate(target, builtin_label, (0,), lambda t=target: _load_target(t))
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = _dist_name(ep)
        order = (1, dist != _OUR_DISTRIBUTION, dist, ep.value)
        found.setdefault(ep.name, {}).setdefault(ep.value, _Candidate(ep.value, _dist_label(ep), order, ep.load))
    return {name: sorted(by_target.values(), key=lambda c: c.order) for name, by_target in found.items()}


def _instantiate(obj, name) -> Backend:
    if isinstance(obj, type) and issubclass(obj, Backend) and getattr(obj, "__abstractmethods__", None):
        missing = ", ".join(f"{m}()" for m in sorted(obj.__abstractmethods__))
        raise ArgumentError(f"{obj!r} does not implement the backend contract (no {missing})")
    backend = obj() if isinstance(obj, type) else obj
    for method in _CONTRACT:
        if not callable(getattr(backend, method, None)):
            raise ArgumentError(f"{obj!r} does not implement the backend contract (no {method}())")
    if getattr(backend, "name", None) != name:
        raise ArgumentError(f"{obj!r} declares name {getattr(backend, 'name', None)!r} but is registered as "
                            f"{name!r}")
    return backend


def _discover() -> dict[str, _Entry]:
    found = {}
    for name, candidates in sorted(_candidates().items()):
        chosen = candidates[0]
        if len(candidates) > 1:
            others = ", ".join(f"{c.target} from {c.label}" for c in candidates[1:])
            warnings.warn(f"two plugins claim the lmu backend {name!r}: using {chosen.target} from {chosen.label}, "
                          f"ignoring {others}", RuntimeWarning, stacklevel=3)
        entry = _Entry(name=name, provider=chosen.label)
        try:
            entry.backend = _instantiate(chosen.load(), name)
            entry.extra = getattr(entry.backend, "extra", None)
        except Exception as exc:  # a broken plugin must not break lmu: it is listed with its error
            entry.error = exc
            warnings.warn(f"lmu backend plugin {name!r} ({chosen.target} from {chosen.label}) failed to load and "
                          f"is skipped: {type(exc).__name__}: {exc}", RuntimeWarning, stacklevel=3)
        found[name] = entry
    return found


def _entries() -> dict[str, _Entry]:
    global _discovered
    with _lock:
        if _discovered is None:
            _discovered = _discover()
        merged = dict(_discovered)
        merged.update(_registered)
        return merged


def refresh() -> None:
    """Forget what discovery found; the next call re-scans the entry points (registered backends stay)."""
    global _discovered
    with _lock:
        _discovered = None


def register(backend, *, replace: bool = False) -> Backend:
    """Register a backend in this process (a :class:`Backend` subclass or instance); returns the instance.

    Examples
    --------
    >>> import lmu
    >>> from lmu.reference import NumpyBackend
    >>> class Mine(NumpyBackend):
    ...     name = "mine"
    >>> _ = lmu.register(Mine)
    >>> "mine" in [b.name for b in lmu.backends()]
    True
    >>> lmu.registry.unregister("mine")
    """
    name = getattr(backend, "name", None)
    if not isinstance(name, str) or not name:
        raise ArgumentError(f"a backend needs a non-empty string attribute 'name' (got {name!r})")
    instance = _instantiate(backend, name)
    with _lock:
        if name in _entries() and not replace:
            raise ArgumentError(f"a backend named {name!r} is already registered; pass replace=True to override it")
        _registered[name] = _Entry(name=name, provider="register()", backend=instance,
                                   extra=getattr(instance, "extra", None))
    return instance


def unregister(name: str) -> None:
    """Remove a backend added with :func:`register` (a no-op for names it did not add)."""
    with _lock:
        _registered.pop(name, None)


def backends() -> list[BackendInfo]:
    """Every known backend with its status, framework version, provider and extra; imports no framework.

    Examples
    --------
    >>> import lmu
    >>> numpy_row = [b for b in lmu.backends() if b.name == "numpy"][0]
    >>> numpy_row.available, numpy_row.provider.split()[0]
    (True, 'lmu')
    """
    rows = []
    for name, entry in sorted(_entries().items()):
        if entry.backend is None:
            reason = f"plugin failed to load: {type(entry.error).__name__}: {entry.error}"
            rows.append(BackendInfo(name, False, reason, None, entry.provider, entry.extra))
            continue
        reason = _reason(entry.backend)
        rows.append(BackendInfo(name, reason is None, reason, _version(entry.backend), entry.provider, entry.extra))
    return rows


def _reason(backend) -> str | None:
    """``backend.unavailable()``, with a plugin that raises in it reported as unavailable, not raised."""
    try:
        reason = backend.unavailable()
    except Exception as exc:  # a plugin's failure costs its own row only
        return f"plugin raised in unavailable(): {type(exc).__name__}: {exc}"
    return None if reason is None else str(reason)


def _version(backend) -> str | None:
    """The installed version of the backend's ``framework`` distribution (a plugin may override ``version()``)."""
    try:
        custom = getattr(backend, "version", None)
        if callable(custom):
            return custom()
        framework = getattr(backend, "framework", None)
        return importlib.metadata.version(framework) if framework else None
    except Exception:  # a version we cannot read is no reason to hide the backend
        return None


def _installed_names() -> list[str]:
    return [b.name for b in backends() if b.available]


def get_backend(name) -> Backend:
    """The usable backend called ``name`` (a :class:`Backend` instance passes through).

    Raises :class:`lmu.BackendUnavailable` naming the known backends (and the closest one to a mistyped name),
    the pip command, or the plugin's failure.
    """
    if isinstance(name, Backend):
        return name
    if not isinstance(name, str):
        raise ArgumentError(f"backend must be a backend name such as 'torch' (got {type(name).__name__})")
    entries = _entries()
    entry = entries.get(name)
    if entry is None:
        close = difflib.get_close_matches(name, list(entries), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise BackendUnavailable(f"unknown backend {name!r}; {hint}known backends: {', '.join(sorted(entries))} "
                                 f"(a third-party backend registers under the entry-point group "
                                 f"'{ENTRY_POINT_GROUP}')")
    if entry.backend is None:
        raise BackendUnavailable(f"backend {name!r} ({entry.provider}) failed to load: "
                                 f"{type(entry.error).__name__}: {entry.error}") from entry.error
    try:
        reason = entry.backend.unavailable()
    except Exception as exc:  # a plugin's failure, reported as that backend being unusable
        raise BackendUnavailable(f"backend {name!r} ({entry.provider}) failed to report whether it is usable: "
                                 f"{type(exc).__name__}: {exc}") from exc
    if reason is not None:
        raise BackendUnavailable(f"backend {name!r} is not installed: {reason} "
                                 f"(installed: {', '.join(_installed_names())})")
    return entry.backend


def _coerce_weights(spec: LMUSpec, weights) -> LMUWeights:
    if isinstance(weights, LMUWeights):
        if weights.spec == spec:
            return weights
        if weights.spec.replace(dtype=spec.dtype, return_sequences=spec.return_sequences) == spec:
            return LMUWeights(spec, weights)
        raise SpecError("these weights were made for a different spec; lmu.LMUWeights(spec, weights) checks "
                        "whether their arrays fit this one")
    if not isinstance(weights, Mapping):
        raise ArgumentError(f"weights must be lmu.LMUWeights or a mapping name -> array (got "
                            f"{type(weights).__name__})")
    return LMUWeights(spec, weights)


def build(spec: LMUSpec, backend=None, weights=None, **options):
    """Build the LMU described by ``spec`` in a backend's framework.

    Parameters
    ----------
    spec : LMUSpec
    backend : str, optional
        A backend name; default the environment variable ``LMU_BACKEND``, else ``"numpy"``.
    weights : LMUWeights or mapping, optional
        Canonical weights; default ``init_weights(spec, seed=0)``.
    **options
        The backend's own options (e.g. ``mode`` for torch, ``dt`` for nengo): the keyword-only parameters of its
        ``build``. An unknown name is refused with the closest known one.

    Examples
    --------
    >>> import lmu, numpy as np
    >>> spec = lmu.LMUSpec(memory_d=1, order=8, theta=20, input_d=1, hidden=lmu.Hidden("rnn", 4))
    >>> model = lmu.build(spec, backend="numpy")
    >>> lmu.run(model, np.ones((2, 30, 1))).shape
    (2, 4)
    """
    if not isinstance(spec, LMUSpec):
        raise ArgumentError(f"lmu.build needs an lmu.LMUSpec (got {type(spec).__name__})")
    name = backend if backend is not None else (os.environ.get("LMU_BACKEND", "").strip() or "numpy")
    impl = get_backend(name)
    reasons = list(impl.check(spec))
    if reasons:
        raise UnsupportedSpec(f"backend {impl.name!r} cannot build this spec: {'; '.join(map(str, reasons))}")
    options = check_options(impl, spec, options)
    weights = init_weights(spec, seed=0) if weights is None else _coerce_weights(spec, weights)
    return impl.build(spec, weights, **options)


def _owns(backend, obj) -> bool:
    """``backend.owns(obj)``; a plugin that raises in it does not own the object (and breaks no dispatch)."""
    try:
        return bool(backend.owns(obj))
    except Exception:  # a plugin's failure: it does not own the object
        return False


def _owner(obj) -> Backend:
    claimed = getattr(obj, "lmu_backend", None)
    if isinstance(claimed, Backend):
        return claimed
    entries = _entries()
    if isinstance(claimed, str) and claimed in entries and entries[claimed].backend is not None:
        backend = entries[claimed].backend
        if _owns(backend, obj):
            return backend
    for entry in entries.values():
        # Only usable backends are asked: an unusable one cannot have built anything in this process.
        if entry.backend is not None and _reason(entry.backend) is None and _owns(entry.backend, obj):
            return entry.backend
    raise ArgumentError(f"{type(obj).__name__} object was not built by an lmu backend "
                        "(use an object returned by lmu.build or lmu.convert)")


def spec_of(obj) -> LMUSpec:
    """The spec an object built by any backend was built from."""
    return _owner(obj).spec_of(obj)


def get_weights(obj) -> LMUWeights:
    """The canonical weights of an object built by any backend (for Nengo-family backends also a simulator)."""
    return _owner(obj).get_weights(obj)


def set_weights(obj, weights) -> None:
    """Load canonical weights (checked against the object's spec) into an object built by any backend."""
    backend = _owner(obj)
    backend.set_weights(obj, _coerce_weights(backend.spec_of(obj), weights))


def run(obj, x, state=None, return_state: bool = False):
    """Inference on NumPy input ``(batch, T, input_d)`` with any backend's object.

    Returns the output, ``(batch, T, out)`` with ``return_sequences`` else ``(batch, out)``, and with
    ``return_state`` also the canonical state dict, which a next call takes to continue the sequence.

    Examples
    --------
    >>> import lmu, numpy as np
    >>> model = lmu.build(lmu.LMUSpec(memory_d=1, order=4, theta=10, input_d=1, return_sequences=True))
    >>> x = np.random.default_rng(0).normal(size=(1, 50, 1))
    >>> y1, s = lmu.run(model, x[:, :20], return_state=True)
    >>> y2 = lmu.run(model, x[:, 20:], state=s)
    >>> bool(np.allclose(np.concatenate([y1, y2], axis=1), lmu.run(model, x), atol=1e-6))
    True
    """
    backend = _owner(obj)
    spec = backend.spec_of(obj)
    x = arrays.check_input(spec, x)
    if state is not None:
        state = arrays.check_state(spec, state, x.shape[0])
    return backend.run(obj, x, state=state, return_state=return_state)


def convert(obj, backend, **options):
    """The same spec and weights rebuilt in another backend's framework.

    Examples
    --------
    >>> import lmu
    >>> model = lmu.build(lmu.LMUSpec(memory_d=1, order=4, theta=10, input_d=1))
    >>> lmu.spec_of(lmu.convert(model, "numpy")) == lmu.spec_of(model)
    True
    """
    return build(spec_of(obj), backend, weights=get_weights(obj), **options)


def _plugin_function(backend_name: str, function: str):
    """A whole-model helper of a plugin (a function of its package, not a contract method)."""
    impl = get_backend(backend_name)
    package = importlib.import_module(type(impl).__module__.split(".")[0])
    helper = getattr(package, function, None)
    if helper is None:
        raise BackendUnavailable(f"the installed {backend_name} backend ({type(impl).__module__}) has no "
                                 f"{function}(); upgrade lmu")
    return helper


def from_keras(layer, spec=None):
    """``(spec, weights)`` of an existing keras-lmu layer or model (needs the keras backend: ``lmu[keras]``).

    ``layer`` may also be the path of a Keras 3 weights-only file (``.weights.h5``), which holds no configuration:
    then ``spec`` says what the keras-lmu layer in it is.
    """
    reader = _plugin_function("keras", "from_keras")
    return reader(layer) if spec is None else reader(layer, spec=spec)


def __getattr__(name):
    if name == "modes_that_apply":  # the plugins' helper before the contract declared modes as data
        warnings.warn("lmu.registry.modes_that_apply is deprecated and will be removed in lmu 0.6: declare the "
                      "backend's modes (lmu.backend.Mode) and use lmu.backend.modes_that_apply(backend, spec)",
                      DeprecationWarning, stacklevel=2)
        return _legacy_modes_that_apply
    raise AttributeError(f"module 'lmu.registry' has no attribute {name!r}")


def _legacy_modes_that_apply(spec: LMUSpec, modes, check_mode) -> list[dict]:
    out = []
    for mode in modes:
        try:
            check_mode(spec, mode)
        except ValueError:
            continue
        out.append({"mode": mode})
    return out
