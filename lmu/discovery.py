"""Finding backends: the built-ins table and the entry points, each plugin loaded in isolation within a time bound.

Design rule: a broken or slow plugin costs its own entry only. Each declared backend is imported and instantiated
in a thread of its own, one after the other (plugins import each other: loading them at once could deadlock), and
waited for at most :data:`PLUGIN_TIMEOUT` seconds; whatever a plugin raises while loading (an exception,
``SystemExit``, ``KeyboardInterrupt``) or a load that does not finish in time makes that entry "failed to load" with
the reason, and everything else keeps working. (A plugin that hangs keeps its thread, a daemon, until the process
ends; each hanging plugin costs at most the bound.) Two declarations of one name resolve deterministically:
built-ins first, then lmu's own distribution, then by distribution name and target, with a warning naming both.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import os
import re
import threading
import warnings
from typing import Any

from ._version import __version__
from .backend import Backend
from .errors import ArgumentError

__all__ = ["ENTRY_POINT_GROUP", "BUILTINS", "PLUGIN_TIMEOUT", "Entry", "discover", "instantiate", "bounded"]

ENTRY_POINT_GROUP = "lmu.backends"
#: The backends that live in the core package itself: name → ``"module:Class"``. Merged before the entry points.
BUILTINS: dict[str, str] = {"numpy": "lmu.reference:NumpyBackend"}
#: Seconds that loading one plugin may take (``LMU_PLUGIN_TIMEOUT`` overrides it); a plugin still loading then is
#: listed as failed. A plugin's ``unavailable()`` and ``version()`` get the same bound.
PLUGIN_TIMEOUT = float(os.environ.get("LMU_PLUGIN_TIMEOUT", "20"))
_OUR_DISTRIBUTION = "lmu"
_CONTRACT = ("unavailable", "check", "build", "get_weights", "set_weights", "run", "owns")


@dataclasses.dataclass
class Entry:
    """One discovered (or registered) backend: the instance, or the error that kept it from loading."""

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


class PluginFailure(Exception):  # noqa: N818 - recorded as an entry's error, never raised to a caller
    """A plugin's import or call did not finish within the bound, or raised SystemExit, KeyboardInterrupt or another
    BaseException of its own."""


def bounded(function, timeout: float, what: str):
    """``function()`` in a daemon thread, waited for at most ``timeout`` seconds; returns its result or raises what
    it raised (a ``BaseException`` such as ``SystemExit`` included, as an exception the caller can catch) or
    :class:`PluginFailure`."""
    outcome: dict[str, Any] = {}

    def target():
        try:
            outcome["value"] = function()
        except BaseException as exc:  # noqa: BLE001 - a plugin's SystemExit must not end the caller
            outcome["error"] = exc

    thread = threading.Thread(target=target, name=f"lmu-plugin: {what}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise PluginFailure(f"{what} did not finish within {timeout:g} s (lmu.discovery.PLUGIN_TIMEOUT)")
    if "error" in outcome:
        error = outcome["error"]
        if not isinstance(error, Exception):  # SystemExit, KeyboardInterrupt raised by the plugin itself
            raise PluginFailure(f"{what} raised {type(error).__name__}({error})") from error
        raise error
    return outcome.get("value")


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


def instantiate(obj, name) -> Backend:
    """The backend instance of a plugin's class (or instance), checked against the contract."""
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


def discover() -> dict[str, Entry]:
    """Every declared backend, loaded: built-ins and entry points, one after the other, each in a thread of its own
    given :data:`PLUGIN_TIMEOUT` seconds (a plugin that hangs is abandoned and the next one loads)."""
    chosen: dict[str, _Candidate] = {}
    for name, candidates in sorted(_candidates().items()):
        chosen[name] = candidates[0]
        if len(candidates) > 1:
            others = ", ".join(f"{c.target} from {c.label}" for c in candidates[1:])
            warnings.warn(f"two plugins claim the lmu backend {name!r}: using {chosen[name].target} from "
                          f"{chosen[name].label}, ignoring {others}", RuntimeWarning, stacklevel=4)
    found = {}
    for name, candidate in chosen.items():  # one at a time: plugins import each other (loihi imports nengo's)
        entry = Entry(name=name, provider=candidate.label)
        try:
            entry.backend = bounded(lambda: instantiate(candidate.load(), name), PLUGIN_TIMEOUT,
                                    f"importing {candidate.target}")
            entry.extra = getattr(entry.backend, "extra", None)
        except Exception as exc:  # a broken plugin must not break lmu: it is listed with its error
            entry.error = exc
            warnings.warn(f"lmu backend plugin {name!r} ({candidate.target} from {candidate.label}) failed to load "
                          f"and is skipped: {type(exc).__name__}: {exc}", RuntimeWarning, stacklevel=4)
        found[name] = entry
    return found
