"""``LMUSpec`` and ``Hidden``: the backend-neutral description of one LMU layer.

Design rule: a spec is a frozen, validated value. Every problem with it is caught here, in ``__post_init__``, with
an :class:`lmu.SpecError` that names the field, the value and the fix, before any framework sees it. Specs
serialize to plain JSON with a schema version and refuse what they do not know.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from .errors import SpecError
from .legendre import DISCRETIZERS, euler_min_theta

__all__ = ["LMUSpec", "Hidden", "SCHEMA_VERSION", "ACTIVATIONS", "HIDDEN_KINDS", "INITIALIZERS", "DTYPES"]

SCHEMA_VERSION = 1
ACTIVATIONS = ("linear", "tanh", "relu", "sigmoid")
HIDDEN_KINDS = ("dense", "rnn", "lstm")
DTYPES = ("float32", "float64")
#: Keras initializer names accepted for ``LMUSpec.kernel_initializer`` (None means no input kernel).
INITIALIZERS = (
    "glorot_uniform",
    "glorot_normal",
    "he_uniform",
    "he_normal",
    "lecun_uniform",
    "lecun_normal",
    "orthogonal",
    "zeros",
    "ones",
)
_DEFAULT_ACTIVATION = {"dense": "linear", "rnn": "tanh", "lstm": "tanh"}


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _fail(owner: str, field: str, expected: str, value: Any) -> None:
    raise SpecError(f"{owner}.{field} must be {expected} (got {_short(value)})")


def _as_float(value) -> float:
    """``float(value)``, with ints too large for a float mapped to ``inf`` (they fail the finiteness checks)."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _int(owner, field, value, minimum=1):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        _fail(owner, field, f"an integer >= {minimum}" if minimum != 1 else "a positive integer", value)
    return int(value)


def _bool(owner, field, value):
    if not isinstance(value, (bool, np.bool_)):
        _fail(owner, field, "True or False", value)
    return bool(value)


def _choice(owner, field, value, choices):
    if not isinstance(value, str) or value not in choices:
        _fail(owner, field, "one of " + ", ".join(repr(c) for c in choices), value)
    return value


def _rate(owner, field, value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        _fail(owner, field, "a number in [0, 1)", value)
    rate = _as_float(value)
    if not (0.0 <= rate < 1.0):
        _fail(owner, field, "a number in [0, 1)", value)
    return rate


@dataclasses.dataclass(frozen=True)
class Hidden:
    """The hidden cell that reads the memory (DESIGN.md step 5).

    Parameters
    ----------
    kind : {"dense", "rnn", "lstm"}
        ``dense``: ``o = act(z W + b)``; ``rnn``: ``h = act(z W + h U + b)``; ``lstm``: the Keras LSTM.
    units : int
        Output size of the cell.
    activation : {"linear", "tanh", "relu", "sigmoid"} or None
        None means the Keras default of the kind: "linear" for dense, "tanh" for rnn and lstm.
    recurrent_activation : str
        The LSTM's gate activation (ignored by the other kinds), "sigmoid" by default.
    use_bias : bool
        Whether the cell has a bias.

    Examples
    --------
    >>> Hidden("rnn", units=212)
    Hidden(kind='rnn', units=212, activation='tanh', recurrent_activation='sigmoid', use_bias=True)
    """

    kind: str
    units: int
    activation: str | None = None
    recurrent_activation: str = "sigmoid"
    use_bias: bool = True

    def __post_init__(self):
        _choice("Hidden", "kind", self.kind, HIDDEN_KINDS)
        object.__setattr__(self, "units", _int("Hidden", "units", self.units))
        act = _DEFAULT_ACTIVATION[self.kind] if self.activation is None else self.activation
        object.__setattr__(self, "activation", _choice("Hidden", "activation", act, ACTIVATIONS))
        _choice("Hidden", "recurrent_activation", self.recurrent_activation, ACTIVATIONS)
        object.__setattr__(self, "use_bias", _bool("Hidden", "use_bias", self.use_bias))

    @property
    def gates(self) -> int:
        """How many blocks of ``units`` the cell's kernels have (4 for lstm, else 1)."""
        return 4 if self.kind == "lstm" else 1


@dataclasses.dataclass(frozen=True, kw_only=True)
class LMUSpec:
    """A complete, backend-neutral description of one LMU layer.

    One step (see the concepts page): ``e = [x_t, o_{t-1}]`` (hidden_to_memory) or ``x_t``; ``u = e @ kernel (+ bias)
    (+ m_{t-1} @ recurrent_kernel)``; ``m_t = m_{t-1} Āᵀ + u B̄ᵀ``; ``z = [m_t, x_t]`` (input_to_hidden) or
    ``m_t``; ``o = hidden(z)``.

    Parameters
    ----------
    memory_d : int
        Number of memory dimensions, each a Legendre memory of ``order`` coefficients.
    order : int
        Number of Legendre coefficients per memory dimension.
    theta : float
        Window length in time steps (the initial value when ``trainable_theta``).
    input_d : int
        Size of the input feature dimension (required).
    hidden : Hidden or None
        The hidden cell; None outputs the memory (and x with input_to_hidden).
    hidden_to_memory : bool
        Feed the hidden output ``o_{t-1}`` back into the memory's input ``e``.
    memory_to_memory : bool
        Feed the memory ``m_{t-1}`` back into the memory's input ``u`` through ``recurrent_kernel``.
    input_to_hidden : bool
        Give the hidden cell ``x_t`` beside the memory.
    discretizer : {"zoh", "euler", "bilinear"}
    trainable_theta : bool
        θ becomes a weight (``theta``) that wins over ``spec.theta``.
    use_bias : bool
        Bias on the memory's input ``u``.
    kernel_initializer : str or None
        Keras initializer name for the input kernel; None means no kernel (``u = e``), which requires
        ``input_d`` (+ ``units`` with hidden_to_memory) to equal ``memory_d``.
    dropout : float in [0, 1)
        Training-time dropout on ``e`` before the kernel (one mask per sequence).
    recurrent_dropout : float in [0, 1)
        Training-time dropout on ``m_{t-1}`` on the memory_to_memory path (requires memory_to_memory).
    return_sequences : bool
        Output every step ``(batch, T, out)`` or only the last ``(batch, out)``.
    dtype : {"float32", "float64"}

    Examples
    --------
    >>> spec = LMUSpec(memory_d=1, order=256, theta=784, input_d=1, hidden=Hidden("rnn", units=212),
    ...                input_to_hidden=True)
    >>> spec.output_size, spec.is_lti
    (212, True)
    >>> LMUSpec.from_json(spec.to_json()) == spec
    True
    """

    memory_d: int
    order: int
    theta: float
    input_d: int
    hidden: Hidden | None = None
    hidden_to_memory: bool = False
    memory_to_memory: bool = False
    input_to_hidden: bool = False
    discretizer: str = "zoh"
    trainable_theta: bool = False
    use_bias: bool = False
    kernel_initializer: str | None = "glorot_uniform"
    dropout: float = 0.0
    recurrent_dropout: float = 0.0
    return_sequences: bool = False
    dtype: str = "float32"

    def __post_init__(self):
        own = "LMUSpec"
        for name in ("memory_d", "order", "input_d"):
            object.__setattr__(self, name, _int(own, name, getattr(self, name)))
        theta = self.theta
        if isinstance(theta, (bool, np.bool_)) or not isinstance(theta, (int, float, np.integer, np.floating)):
            _fail(own, "theta", "a finite number > 0", theta)
        if not (math.isfinite(_as_float(theta)) and _as_float(theta) > 0):
            _fail(own, "theta", "a finite number > 0", theta)
        object.__setattr__(self, "theta", float(theta))
        if self.hidden is not None and not isinstance(self.hidden, Hidden):
            _fail(own, "hidden", 'None or lmu.Hidden(kind, units), e.g. Hidden("rnn", units=64)', self.hidden)
        for name in ("hidden_to_memory", "memory_to_memory", "input_to_hidden", "trainable_theta", "use_bias",
                     "return_sequences"):
            object.__setattr__(self, name, _bool(own, name, getattr(self, name)))
        _choice(own, "discretizer", self.discretizer, DISCRETIZERS)
        if self.kernel_initializer is not None:
            _choice(own, "kernel_initializer", self.kernel_initializer, INITIALIZERS + (None,))
        object.__setattr__(self, "dropout", _rate(own, "dropout", self.dropout))
        object.__setattr__(self, "recurrent_dropout", _rate(own, "recurrent_dropout", self.recurrent_dropout))
        dtype = self.dtype
        if not isinstance(dtype, str):
            try:
                dtype = np.dtype(dtype).name
            except TypeError:
                pass
        object.__setattr__(self, "dtype", _choice(own, "dtype", dtype, DTYPES))

        if self.hidden_to_memory and self.hidden is None:
            raise SpecError("LMUSpec.hidden_to_memory=True needs a hidden cell (got hidden=None): "
                            "set hidden=Hidden(...) or hidden_to_memory=False")
        if self.kernel_initializer is None and self.enc_d != self.memory_d:
            what = "input_d + hidden.units" if self.hidden_to_memory else "input_d"
            raise SpecError(f"LMUSpec.kernel_initializer=None means no input kernel (u = e), so {what} "
                            f"({self.enc_d}) must equal memory_d ({self.memory_d}): set memory_d={self.enc_d} or "
                            f"give a kernel_initializer such as 'glorot_uniform'")
        if self.recurrent_dropout > 0 and not self.memory_to_memory:
            raise SpecError(f"LMUSpec.recurrent_dropout={self.recurrent_dropout} drops m on the memory_to_memory "
                            "path, which is off: set memory_to_memory=True or recurrent_dropout=0")
        if self.discretizer == "euler":
            # Exact from A's (cached) eigenvalues up to order 1024; beyond, that eigenvalue problem costs seconds
            # and the growth law fitted on orders 64–1024 (θ_min ≈ 6560 · (order/256)^1.68) stands in for it.
            exact = self.order <= 1024
            min_theta = euler_min_theta(self.order) if exact else 6560.0 * (self.order / 256) ** 1.68
            if self.theta <= min_theta:
                warnings.warn(
                    f"LMUSpec(discretizer='euler', order={self.order}, theta={self.theta:g}) is unstable "
                    f"(spectral radius >= 1 below theta {'=' if exact else '≈'} {min_theta:.4g}): use "
                    f"discretizer='zoh' or a longer theta", RuntimeWarning, stacklevel=_caller_stacklevel())

    # ----------------------------------------------------------------- sizes the backends need
    @property
    def memory_size(self) -> int:
        """``memory_d · order``, the flattened memory's size (memory_d-major)."""
        return self.memory_d * self.order

    @property
    def enc_d(self) -> int:
        """The size of ``e``, which is ``input_d`` (+ ``hidden.units`` with hidden_to_memory)."""
        return self.input_d + (self.hidden.units if self.hidden_to_memory else 0)

    @property
    def z_d(self) -> int:
        """The size of the hidden cell's input ``z``, which is ``memory_d · order`` (+ ``input_d`` with
        input_to_hidden)."""
        return self.memory_size + (self.input_d if self.input_to_hidden else 0)

    @property
    def output_size(self) -> int:
        """The number of features per output step (``hidden.units``, or ``z_d`` without a hidden cell)."""
        return self.hidden.units if self.hidden is not None else self.z_d

    @property
    def is_lti(self) -> bool:
        """Whether the memory is a linear time-invariant function of the input (no hidden_to_memory, no
        memory_to_memory), so that a backend may compute it for all steps at once."""
        return not (self.hidden_to_memory or self.memory_to_memory)

    def state_shapes(self, batch: int = 1) -> dict[str, tuple[int, ...]]:
        """The canonical streaming state: ``memory``, plus ``hidden`` for any hidden cell and ``cell`` for lstm.

        Examples
        --------
        >>> LMUSpec(memory_d=2, order=4, theta=8, input_d=1, hidden=Hidden("lstm", 3)).state_shapes(5)
        {'memory': (5, 8), 'hidden': (5, 3), 'cell': (5, 3)}
        """
        shapes = {"memory": (batch, self.memory_size)}
        if self.hidden is not None:
            shapes["hidden"] = (batch, self.hidden.units)
            if self.hidden.kind == "lstm":
                shapes["cell"] = (batch, self.hidden.units)
        return shapes

    def replace(self, **changes) -> "LMUSpec":
        """A copy with some fields changed (validated again).

        Examples
        --------
        >>> LMUSpec(memory_d=1, order=8, theta=16, input_d=1).replace(order=4).order
        4
        """
        return dataclasses.replace(self, **changes)

    # ----------------------------------------------------------------- serialization
    def to_dict(self) -> dict:
        """A plain, JSON-ready dict with ``schema`` (the format version) first."""
        out = {"schema": SCHEMA_VERSION}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = dataclasses.asdict(value) if isinstance(value, Hidden) else value
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "LMUSpec":
        """Inverse of :meth:`to_dict`; refuses unknown keys (listing the valid ones) and future schemas."""
        if not isinstance(data, dict):
            raise SpecError(f"an LMU spec must be a JSON object / dict (got {type(data).__name__})")
        data = dict(data)
        schema = data.pop("schema", SCHEMA_VERSION)
        if isinstance(schema, bool) or not isinstance(schema, int) or schema < 1:
            raise SpecError(f"spec 'schema' must be a positive integer (got {schema!r})")
        if schema > SCHEMA_VERSION:
            raise SpecError(f"spec schema {schema} is newer than this lmu understands ({SCHEMA_VERSION}): "
                            "upgrade lmu (pip install -U lmu)")
        names = [f.name for f in dataclasses.fields(cls)]
        _refuse_unknown("LMUSpec", data, names)
        missing = [n for n in ("memory_d", "order", "theta", "input_d") if n not in data]
        if missing:
            raise SpecError(f"spec is missing the required field(s) {', '.join(missing)}")
        hidden = data.get("hidden")
        if hidden is not None and not isinstance(hidden, Hidden):
            if not isinstance(hidden, dict):
                raise SpecError(f"spec 'hidden' must be null or an object with kind and units (got {hidden!r})")
            _refuse_unknown("Hidden", hidden, [f.name for f in dataclasses.fields(Hidden)])
            if "kind" not in hidden or "units" not in hidden:
                raise SpecError(f"spec 'hidden' needs 'kind' and 'units' (got {hidden!r})")
            data["hidden"] = Hidden(**hidden)
        return cls(**data)

    def to_json(self, **kwargs) -> str:
        """The spec as a JSON string (``kwargs`` go to :func:`json.dumps`)."""
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_json(cls, text: str) -> "LMUSpec":
        """Parse a spec from JSON text; not-JSON and every field problem give a :class:`SpecError`."""
        if isinstance(text, (bytes, bytearray)):
            text = text.decode("utf-8", errors="replace")
        if not isinstance(text, str):
            raise SpecError(f"LMUSpec.from_json needs a JSON string (got {type(text).__name__})")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise SpecError(f"spec is not valid JSON ({err.msg} at line {err.lineno} column {err.colno})") from None
        return cls.from_dict(data)

    # ----------------------------------------------------------------- checks on data given to a backend
    def check_input(self, x) -> np.ndarray:
        """Validate an input batch ``(batch, T, input_d)`` and return it as an array of the spec's dtype.

        Examples
        --------
        >>> spec = LMUSpec(memory_d=1, order=4, theta=8, input_d=2)
        >>> spec.check_input([[[1, 2], [3, 4]]]).dtype
        dtype('float32')
        >>> spec.check_input(np.zeros((5, 2)))
        Traceback (most recent call last):
        ...
        ValueError: input x must have shape (batch, T, 2), 3 axes (got shape (5, 2); add a batch axis with x[None])
        """
        arr = _real_array("input x", x, f"(batch, T, {self.input_d})")
        if arr.ndim != 3:
            hint = "; add a batch axis with x[None]" if arr.ndim == 2 else ""
            raise ValueError(f"input x must have shape (batch, T, {self.input_d}), 3 axes (got shape "
                             f"{arr.shape}{hint})")
        if arr.shape[2] != self.input_d:
            raise ValueError(f"input x has {arr.shape[2]} features but LMUSpec.input_d is {self.input_d} "
                             f"(got shape {arr.shape})")
        if arr.shape[0] < 1 or arr.shape[1] < 1:
            raise ValueError(f"input x needs at least one sequence and one time step (got shape {arr.shape})")
        return arr.astype(self.dtype, copy=False)

    def check_state(self, state, batch: int) -> dict[str, np.ndarray]:
        """Validate a streaming state dict against :meth:`state_shapes` for this batch size.

        Examples
        --------
        >>> spec = LMUSpec(memory_d=1, order=4, theta=8, input_d=1)
        >>> spec.check_state({"memory": np.zeros((1, 3))}, batch=1)
        Traceback (most recent call last):
        ...
        ValueError: state['memory'] must have shape (1, 4) (got (1, 3))
        """
        shapes = self.state_shapes(batch)
        if not isinstance(state, Mapping):
            raise TypeError(f"state must be a dict with keys {sorted(shapes)} (got {type(state).__name__})")
        if set(state) != set(shapes):
            got = sorted(map(repr, state))
            raise ValueError(f"state must have exactly the keys {sorted(shapes)} (got [{', '.join(got)}])")
        out = {}
        for key, shape in shapes.items():
            arr = _real_array(f"state['{key}']", state[key], str(shape))
            if arr.shape != shape:
                raise ValueError(f"state['{key}'] must have shape {shape} (got {arr.shape})")
            out[key] = arr.astype(self.dtype, copy=False)
        return out


def _real_array(what: str, value, shape: str) -> np.ndarray:
    """``np.asarray(value)`` refusing ragged nesting, non-numeric, object and complex data with one clear error."""
    if type(value) is np.ndarray and value.dtype.kind in "fiub":  # the common case, on the streaming hot path
        return value
    try:
        arr = np.asarray(value)
    except Exception as err:  # ragged lists and the like
        raise ValueError(f"{what} must be an array of shape {shape} ({err})") from None
    if np.iscomplexobj(arr):
        raise TypeError(f"{what} must hold real numbers (got a complex array)")
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{what} must hold real numbers (got dtype {arr.dtype})")
    return arr


def _caller_stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the first frame outside lmu (through ``replace``, ``from_json``,
    ``dataclasses.replace`` and the generated ``__init__``), so the user sees their own line."""
    here = os.path.dirname(os.path.abspath(__file__))
    skip = (os.path.abspath(dataclasses.__file__), "<string>")
    frame, level = sys._getframe(1), 1
    while frame is not None:
        name = frame.f_code.co_filename
        if not (name in skip or os.path.dirname(os.path.abspath(name)) == here):
            return level
        frame, level = frame.f_back, level + 1
    return 1


def _refuse_unknown(owner, data, names):
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise SpecError(f"unknown {owner} field(s) {', '.join(map(repr, unknown))}; valid fields are "
                        f"{', '.join(names)}")
