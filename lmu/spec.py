"""``LMUSpec`` and ``Hidden``: the backend-neutral description of one LMU layer, validated from one field table.

Design rule: a spec is a frozen, validated value. Each field is declared once in a table (:data:`SPEC_FIELDS`,
:data:`HIDDEN_FIELDS`: name, kind, range, default, help); the same table validates the values, produces the JSON
schema (:func:`json_schema`), the help of ``lmu spec`` and the field table of the docs. The rules that span fields
come after the table, in one function (``_check_rules``). Every problem is an :class:`lmu.SpecError` that names
the field, the value and the fix, raised here, before any framework sees the spec. Checks on input arrays live in
:mod:`lmu.arrays`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from . import arrays
from .activations import ACTIVATIONS  # the one activation table (iterating it gives the names)
from .activations import DEFAULTS as _DEFAULT_ACTIVATION
from .activations import NAMES as _ACTIVATION_NAMES
from .errors import SpecError
from .fields import REQUIRED, Field, short
from .legendre import DISCRETIZERS, euler_min_theta, halving_steps, horizon

__all__ = ["LMUSpec", "Hidden", "Field", "SPEC_FIELDS", "HIDDEN_FIELDS", "SCHEMA_VERSION", "json_schema",
           "field_rows", "ACTIVATIONS", "HIDDEN_KINDS", "INITIALIZERS", "DTYPES",
           "COMPUTE_DTYPES"]

SCHEMA_VERSION = 1
#: The largest order: the memory's system matrix is dense, order × order (4096: 128 MiB in float64).
MAX_ORDER = 4096
#: The largest memory_d, input_d and hidden units.
MAX_SIZE = 1 << 24
#: The most weights a spec may have (2³¹: 8 GiB in float32).
MAX_WEIGHTS = 1 << 31
#: The longest spec JSON text :meth:`LMUSpec.from_json` reads (a spec is a few hundred characters).
MAX_JSON = 1 << 16
HIDDEN_KINDS = ("dense", "rnn", "lstm")
DTYPES = ("float32", "float64", "float16", "bfloat16")
#: The dtype each spec dtype computes its memory in: half precision stores the weights in 16 bits and computes the
#: memory in float32 (16-bit round-off would outlast any useful memory).
COMPUTE_DTYPES = {"float32": "float32", "float64": "float64", "float16": "float32", "bfloat16": "float32"}

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


#: The fields of :class:`Hidden`, in order.
HIDDEN_FIELDS: tuple[Field, ...] = (
    Field("kind", "choice", "dense: o = act(z W + b); rnn: h = act(z W + h U + b); lstm: the Keras LSTM",
          choices=HIDDEN_KINDS),
    Field("units", "int", "output size of the cell, and so of the layer", maximum=MAX_SIZE),
    Field("activation", "choice", "None is replaced by the Keras default of the kind: linear for dense, tanh for "
          "rnn and lstm (the stored spec holds the resolved name)", default=None, choices=_ACTIVATION_NAMES,
          nullable=True, accepts=f"one of {', '.join(map(repr, _ACTIVATION_NAMES))}"),
    Field("recurrent_activation", "choice", "the LSTM's gate activation; the other kinds ignore it",
          default="sigmoid", choices=_ACTIVATION_NAMES),
    Field("use_bias", "bool", "whether the cell has a bias (weight hidden/bias)", default=True),
)

def _validate(instance, table: tuple[Field, ...], owner: str) -> None:
    """Validate and normalize every field of a frozen dataclass from its table (the one place it is set)."""
    values = {f.name: f.validate(owner, getattr(instance, f.name)) for f in table}
    for name, value in values.items():
        object.__setattr__(instance, name, value)


# ------------------------------------------------------------------------------------------------ Hidden
@dataclasses.dataclass(frozen=True)
class Hidden:
    """The hidden cell that reads the memory (step 5 of the semantics); fields in :data:`HIDDEN_FIELDS`.

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
        if self.activation is None and isinstance(self.kind, str) and self.kind in _DEFAULT_ACTIVATION:
            object.__setattr__(self, "activation", _DEFAULT_ACTIVATION[self.kind])
        _validate(self, HIDDEN_FIELDS, "Hidden")

    @property
    def gates(self) -> int:
        """How many blocks of ``units`` the cell's kernels have (4 for lstm, else 1)."""
        return 4 if self.kind == "lstm" else 1


#: The fields of :class:`LMUSpec`, in order.
SPEC_FIELDS: tuple[Field, ...] = (
    Field("memory_d", "int", "number of memory dimensions, each an independent Legendre memory; u has this many "
          "entries", maximum=MAX_SIZE),
    Field("order", "int", "Legendre coefficients per memory dimension (q); the memory holds memory_d * order "
          "numbers; its (order x order) system matrix is dense", maximum=MAX_ORDER),
    Field("theta", "number", "the window θ in time steps; with trainable_theta only its initial value"),
    Field("input_d", "int", "features per input step: inputs have shape (batch, T, input_d)", maximum=MAX_SIZE),
    Field("hidden", "instance", "the cell that reads the memory; None: the output is z itself (the memory, and x "
          "with input_to_hidden)", default=None, nullable=True, cls=Hidden,
          accepts='None or lmu.Hidden(kind, units), e.g. Hidden("rnn", units=64)'),
    Field("hidden_to_memory", "bool", "feed the previous hidden output back: e = [x_t, o_{t-1}]; needs a hidden "
          "cell", default=False),
    Field("memory_to_memory", "bool", "add m_{t-1} @ recurrent_kernel to u", default=False),
    Field("input_to_hidden", "bool", "give the hidden cell the current input too: z = [m_t, x_t]", default=False),
    Field("discretizer", "choice", "how the continuous memory becomes a per-step update; an euler system that "
          "would be unstable (spectral radius >= 1) warns", default="zoh", choices=DISCRETIZERS),
    Field("trainable_theta", "bool", "make θ a weight named theta, whose value wins over spec.theta",
          default=False),
    Field("use_bias", "bool", "a bias (weight bias) on the memory input u", default=False),
    Field("kernel_initializer", "choice", "Keras initializer of the input kernel; None means no input kernel "
          "(u = e), which needs input_d (plus hidden.units with hidden_to_memory) to equal memory_d",
          default="glorot_uniform", choices=INITIALIZERS, nullable=True),
    Field("dropout", "rate", "training-time dropout on e (one mask per sequence); ignored at inference",
          default=0.0),
    Field("recurrent_dropout", "rate", "training-time dropout on m_{t-1} in the memory_to_memory path; needs "
          "memory_to_memory", default=0.0),
    Field("return_sequences", "bool", "output every step, (batch, T, out), or only the last, (batch, out)",
          default=False),
    Field("dtype", "dtype", "the precision of the weights and outputs (a NumPy dtype is accepted and stored by "
          "name); float16 and bfloat16 compute the memory in float32, and only torch builds them",
          default="float32", choices=DTYPES),
)


# ------------------------------------------------------------------------------------------------ LMUSpec
@dataclasses.dataclass(frozen=True, kw_only=True)
class LMUSpec:
    """A complete, backend-neutral description of one LMU layer; fields in :data:`SPEC_FIELDS`.

    One step (see the design document): ``e = [x_t, o_{t-1}]`` (hidden_to_memory) or ``x_t``;
    ``u = e @ kernel (+ bias) (+ m_{t-1} @ recurrent_kernel)``; ``m_t = m_{t-1} Āᵀ + u B̄ᵀ``;
    ``z = [m_t, x_t]`` (input_to_hidden) or ``m_t``; ``o = hidden(z)``.

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
    dtype : {"float32", "float64", "float16", "bfloat16"}
        The precision of the weights and outputs; the half precisions compute the memory in float32 and only the
        torch backend builds them.

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
        _validate(self, SPEC_FIELDS, "LMUSpec")
        _check_rules(self)

    # ----------------------------------------------------------------- sizes the backends need
    @property
    def memory_size(self) -> int:
        """``memory_d · order``, the flattened memory's size (memory_d-major)."""
        return self.memory_d * self.order

    @property
    def enc_d(self) -> int:
        """The size of ``e``, which is ``input_d`` (+ ``hidden.units`` with hidden_to_memory)."""
        return self.input_d + (self.hidden.units if self.hidden is not None and self.hidden_to_memory else 0)

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
        shapes: dict[str, tuple[int, ...]] = {"memory": (batch, self.memory_size)}
        if self.hidden is not None:
            shapes["hidden"] = (batch, self.hidden.units)
            if self.hidden.kind == "lstm":
                shapes["cell"] = (batch, self.hidden.units)
        return shapes

    def replace(self, **changes) -> LMUSpec:
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
        out: dict[str, Any] = {"schema": SCHEMA_VERSION}
        for f in SPEC_FIELDS:
            value = getattr(self, f.name)
            out[f.name] = dataclasses.asdict(value) if isinstance(value, Hidden) else value
        return out

    @classmethod
    def from_dict(cls, data: Mapping) -> LMUSpec:
        """Inverse of :meth:`to_dict`; refuses unknown keys (listing the valid ones) and future schemas."""
        if not isinstance(data, dict):
            raise SpecError(f"an LMU spec must be a JSON object / dict (got {type(data).__name__})")
        data = dict(data)
        schema = data.pop("schema", SCHEMA_VERSION)
        if isinstance(schema, bool) or not isinstance(schema, int) or schema < 1:
            raise SpecError(f"spec 'schema' must be a positive integer (got {short(schema)})")
        if schema > SCHEMA_VERSION:
            raise SpecError(f"spec schema {schema} is newer than this lmu understands ({SCHEMA_VERSION}): "
                            "upgrade lmu (pip install -U lmu)")
        _refuse_unknown("LMUSpec", data, SPEC_FIELDS)
        missing = [f.name for f in SPEC_FIELDS if f.required and f.name not in data]
        if missing:
            raise SpecError(f"spec is missing the required field(s) {', '.join(missing)}")
        hidden = data.get("hidden")
        if hidden is not None and not isinstance(hidden, Hidden):
            if not isinstance(hidden, dict):
                raise SpecError(f"spec 'hidden' must be null or an object with kind and units (got "
                                f"{short(hidden)})")
            _refuse_unknown("Hidden", hidden, HIDDEN_FIELDS)
            if "kind" not in hidden or "units" not in hidden:
                raise SpecError(f"spec 'hidden' needs 'kind' and 'units' (got {short(hidden)})")
            data["hidden"] = Hidden(**hidden)
        return cls(**data)

    def to_json(self, **kwargs) -> str:
        """The spec as a JSON string (``kwargs`` go to :func:`json.dumps`)."""
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_json(cls, text: str | bytes) -> LMUSpec:
        """Parse a spec from JSON text; not-JSON, JSON nested or sized beyond any spec (:data:`MAX_JSON`) and every
        field problem give a :class:`SpecError`."""
        if isinstance(text, (bytes, bytearray)):
            text = text.decode("utf-8", errors="replace")
        if not isinstance(text, str):
            raise SpecError(f"LMUSpec.from_json needs a JSON string (got {type(text).__name__})")
        if len(text) > MAX_JSON:
            raise SpecError(f"spec JSON is {len(text)} characters long; a spec is at most {MAX_JSON}")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise SpecError(f"spec is not valid JSON ({err.msg} at line {err.lineno} column {err.colno})") from None
        except RecursionError:
            raise SpecError("spec JSON is nested too deeply to be a spec (a spec has two levels)") from None
        except ValueError as err:  # an integer of thousands of digits (Python's int_max_str_digits)
            raise SpecError(f"spec JSON holds a number no spec field accepts ({err})") from None
        return cls.from_dict(data)

    # ----------------------------------------------------------------- deprecated: lmu.arrays holds these
    def check_input(self, x) -> np.ndarray:
        """Deprecated: use :func:`lmu.arrays.check_input` (``lmu.run`` validates its input itself)."""
        _deprecated("LMUSpec.check_input(x)", "lmu.arrays.check_input(spec, x)")
        return arrays.check_input(self, x)

    def check_state(self, state, batch: int) -> dict[str, np.ndarray]:
        """Deprecated: use :func:`lmu.arrays.check_state`."""
        _deprecated("LMUSpec.check_state(state, batch)", "lmu.arrays.check_state(spec, state, batch)")
        return arrays.check_state(self, state, batch)


# ------------------------------------------------------------------------------------------------ rules across fields
def _check_rules(spec: LMUSpec) -> None:
    """The rules that span fields, checked after every field is valid on its own."""
    if spec.hidden_to_memory and spec.hidden is None:
        raise SpecError("LMUSpec.hidden_to_memory=True needs a hidden cell (got hidden=None): "
                        "set hidden=Hidden(...) or hidden_to_memory=False")
    if spec.kernel_initializer is None and spec.enc_d != spec.memory_d:
        what = "input_d + hidden.units" if spec.hidden_to_memory else "input_d"
        raise SpecError(f"LMUSpec.kernel_initializer=None means no input kernel (u = e), so {what} "
                        f"({spec.enc_d}) must equal memory_d ({spec.memory_d}): set memory_d={spec.enc_d} or "
                        f"give a kernel_initializer such as 'glorot_uniform'")
    if spec.recurrent_dropout > 0 and not spec.memory_to_memory:
        raise SpecError(f"LMUSpec.recurrent_dropout={spec.recurrent_dropout} drops m on the memory_to_memory "
                        "path, which is off: set memory_to_memory=True or recurrent_dropout=0")
    count = _weight_count(spec)
    if count > MAX_WEIGHTS:
        raise SpecError(f"LMUSpec has {count:.3g} weights (memory_d={spec.memory_d}, order={spec.order}, "
                        f"input_d={spec.input_d}, hidden units {spec.hidden.units if spec.hidden else 0}), more than "
                        f"the {MAX_WEIGHTS:.3g} lmu.spec.MAX_WEIGHTS allows: use smaller sizes")
    memory = COMPUTE_DTYPES[spec.dtype]
    if halving_steps(spec.order, spec.theta, spec.discretizer, memory) > horizon(memory):
        raise SpecError(unstable_theta(spec.order, spec.theta, spec.discretizer, memory))


def _weight_count(spec: LMUSpec) -> int:
    """How many numbers the spec's weights hold (as :func:`lmu.weights.weight_shapes` lays them out)."""
    count = spec.enc_d * spec.memory_d + spec.memory_d + spec.memory_size * spec.memory_d
    if spec.hidden is not None:
        width = spec.hidden.gates * spec.hidden.units
        count += (spec.z_d + spec.hidden.units + 1) * width
    return count


def unstable_theta(order: int, theta: float, discretizer: str, dtype: str, what: str = "LMUSpec.theta") -> str:
    """Why a θ cannot be computed: the memory, discretized and stored in ``dtype``, does not forget what it
    holds within the horizon of the dtype's round-off (or it grows, or its matrices overflow)."""
    head = (f"{what}={theta:g} cannot be computed with discretizer={discretizer!r}, order={order}, "
            f"dtype={dtype!r}: the discretized memory does not forget what it holds within {horizon(dtype):.3g} steps "
            f"(the horizon of {dtype} round-off), so its outputs would grow without bound or run to NaN")
    if discretizer == "euler":
        return (f"{head}; euler is stable only for theta above {euler_min_theta(order):.4g} at order {order} (more "
                f"in float32): use discretizer='zoh' or a longer theta")
    if theta >= 1:
        return f"{head}: use a shorter theta" + (" or dtype='float64'" if dtype == "float32" else "")
    return f"{head}: use a longer theta" + (" or discretizer='zoh'" if discretizer == "bilinear" else "")


def _refuse_unknown(owner: str, data: Mapping, table: tuple[Field, ...]) -> None:
    names = [f.name for f in table]
    unknown = sorted(set(map(str, data)) - set(names))
    if unknown:
        raise SpecError(f"unknown {owner} field(s) {', '.join(map(repr, unknown))}; valid fields are "
                        f"{', '.join(names)}")


def _deprecated(old: str, new: str) -> None:
    warnings.warn(f"{old} is deprecated and will be removed in lmu 0.6: use {new}", DeprecationWarning,
                  stacklevel=3)


# ------------------------------------------------------------------------------------------------ schema and docs
def json_schema() -> dict:
    """The JSON schema (draft 2020-12) of a spec document, as written by :meth:`LMUSpec.to_json`.

    Examples
    --------
    >>> schema = json_schema()
    >>> schema["required"], schema["properties"]["order"]["minimum"]
    (['memory_d', 'order', 'theta', 'input_d'], 1)
    """
    def obj(table, title):
        return {"title": title, "type": "object", "additionalProperties": False,
                "properties": {f.name: f.schema() for f in table},
                "required": [f.name for f in table if f.required]}

    out = {"$schema": "https://json-schema.org/draft/2020-12/schema", **obj(SPEC_FIELDS, "LMUSpec")}
    out["properties"] = {"schema": {"type": "integer", "minimum": 1, "maximum": SCHEMA_VERSION,
                                    "description": "the format version of the document",
                                    "default": SCHEMA_VERSION}, **out["properties"]}
    out["$defs"] = {"Hidden": obj(HIDDEN_FIELDS, "Hidden")}
    return out


def field_rows(table: tuple[Field, ...] = SPEC_FIELDS) -> list[tuple[str, str, str, str]]:
    """``(name, accepts, default, help)`` for each field: what the CLI's help and the docs' table print.

    Examples
    --------
    >>> name, accepts, default, _ = field_rows()[2]
    >>> name, accepts, default
    ('theta', 'a finite number > 0', 'required')
    """
    return [(f.name, f.expected(), "required" if f.required else repr(f.default), f.help) for f in table]
