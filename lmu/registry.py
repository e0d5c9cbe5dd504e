"""Backend discovery, and dispatch on the objects backends build (the contract itself is in :mod:`lmu.backend`).

Design rule: discovery (:mod:`lmu.discovery`) runs once, lazily, and is cached; it survives broken and slow plugins.
The numpy reference is the one built-in; every other backend, ours included, is found through the entry-point group
``lmu.backends``, so a third-party plugin is discovered exactly like ``lmu_torch``. A plugin that failed to load is
listed with its error, which is re-raised, chained, only when that backend is asked for by name. A plugin's own
``unavailable()`` and ``version()`` are called within the same time bound, and what they raise costs that row
only. Options are checked against the keyword-only parameters of the backend's ``build`` before the backend (and
its framework) sees them.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import importlib.metadata
import os
import threading
import warnings

from . import arrays
from .backend import Backend, check_options
from . import discovery
from .discovery import BUILTINS, ENTRY_POINT_GROUP, Entry, bounded, discover, instantiate
from .errors import ArgumentError, BackendUnavailable, UnsupportedSpec
from .spec import LMUSpec
from .weights import LMUWeights, conform, init_weights

__all__ = [
    "ENTRY_POINT_GROUP",
    "BUILTINS",
    "Backend",
    "BackendInfo",
    "backends",
    "get_backend",
    "build",
    "check_spec",
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


_lock = threading.RLock()
_discovered: dict[str, Entry] | None = None
_registered: dict[str, Entry] = {}


def _entries() -> dict[str, Entry]:
    global _discovered
    with _lock:
        if _discovered is None:
            _discovered = discover()
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
    instance = instantiate(backend, name)
    with _lock:
        if name in _entries() and not replace:
            raise ArgumentError(f"a backend named {name!r} is already registered; pass replace=True to override it")
        _registered[name] = Entry(name=name, provider="register()", backend=instance,
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
        why = _reason(entry.backend)
        rows.append(BackendInfo(name, why is None, why, _version(entry.backend), entry.provider, entry.extra))
    return rows


def _reason(backend) -> str | None:
    """``backend.unavailable()`` within the plugin time bound; a plugin that raises in it (``SystemExit``
    included) or hangs is reported as unavailable, not raised."""
    if type(backend).unavailable is Backend.unavailable:  # the default: find_spec of requires, nothing to bound
        reason = backend.unavailable()
    else:
        try:
            reason = bounded(backend.unavailable, discovery.PLUGIN_TIMEOUT, f"{backend.name}.unavailable()")
        except Exception as exc:  # a plugin's failure costs its own row only
            return f"plugin raised in unavailable(): {type(exc).__name__}: {exc}"
    return None if reason is None else str(reason)


def _version(backend) -> str | None:
    """The installed version of the backend's ``framework`` distribution (a plugin may override ``version()``)."""
    custom = getattr(backend, "version", None)
    try:
        if callable(custom):
            return bounded(custom, discovery.PLUGIN_TIMEOUT, f"{backend.name}.version()")
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
        reason = entry.backend.unavailable() if type(entry.backend).unavailable is Backend.unavailable else \
            bounded(entry.backend.unavailable, discovery.PLUGIN_TIMEOUT, f"{name}.unavailable()")
    except Exception as exc:  # a plugin's failure, reported as that backend being unusable
        raise BackendUnavailable(f"backend {name!r} ({entry.provider}) failed to report whether it is usable: "
                                 f"{type(exc).__name__}: {exc}") from exc
    if reason is not None:
        raise BackendUnavailable(f"backend {name!r} is not installed: {reason} "
                                 f"(installed: {', '.join(_installed_names())})")
    return entry.backend


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
    reasons = check_spec(impl, spec)
    if reasons:
        raise UnsupportedSpec(f"backend {impl.name!r} cannot build this spec: {'; '.join(reasons)}")
    options = check_options(impl, spec, options)
    weights = init_weights(spec, seed=0) if weights is None else conform(spec, weights)
    return impl.build(spec, weights, **options)


def check_spec(backend, spec: LMUSpec) -> list[str]:
    """``backend.check(spec)``, held to the contract: a list of reasons (strings)."""
    reasons = backend.check(spec)
    if isinstance(reasons, (str, bytes)) or not isinstance(reasons, (list, tuple)) or \
            not all(isinstance(r, str) for r in reasons):
        raise BackendUnavailable(f"backend {backend.name!r} breaks the contract: check(spec) must return a list of "
                                 f"reasons (strings), empty when it can build the spec (got {reasons!r:.80})")
    return list(reasons)


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
    backend.set_weights(obj, conform(backend.spec_of(obj), weights))


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
