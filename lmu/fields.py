"""The rows of a spec's field table: how one field is validated, described in the JSON schema and documented.

Design rule: a field is data (name, kind, range, default, help); one method validates a value of it, one gives
its JSON schema, one says in words what it accepts, so that the validation, the schema, ``lmu spec --help`` and
the docs' table cannot disagree. The tables themselves are in :mod:`lmu.spec`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from .errors import SpecError

__all__ = ["Field", "REQUIRED", "short"]

REQUIRED: Any = type("Required", (), {"__repr__": lambda self: "REQUIRED"})()  # the default of a required field


def short(value: Any, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters (a value in a message must not swamp it); an integer too long
    for Python to print (over 4300 digits) is described by its size.

    Examples
    --------
    >>> short(10**5000)
    'an integer of about 5000 digits'
    """
    if isinstance(value, int) and value.bit_length() > 14000:
        return f"an integer of about {round(value.bit_length() * math.log10(2))} digits"
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - the user's object cannot describe itself: describe its type instead
        text = f"<a {type(value).__name__} whose repr() fails>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_bool(value) -> bool:
    return isinstance(value, (bool, np.bool_))


def _as_float(value) -> float:
    """``float(value)``, with ints too large for a float mapped to ``inf`` (they fail the range checks)."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _dtype_name(value) -> str | None:
    """``numpy.dtype(value).name`` for a dtype-like (``np.float32``, ``np.dtype("float64")``), else None."""
    try:
        return np.dtype(value).name
    except (TypeError, ValueError):  # not a dtype-like: refused by the caller with the field's message
        return None


@dataclasses.dataclass(frozen=True)
class Field:
    """One field of a spec: how it is validated, described in the JSON schema and documented.

    ``kind`` is one of ``"int"`` (an integer ≥ ``minimum``), ``"number"`` (a finite number > 0), ``"rate"`` (a
    number in [0, 1)), ``"bool"``, ``"choice"`` (one of ``choices``), ``"dtype"`` (a dtype name, or anything
    ``numpy.dtype`` turns into one) and ``"instance"`` (an instance of ``cls``); ``nullable`` also accepts None.

    Examples
    --------
    >>> order = Field("order", "int", "Legendre coefficients per memory dimension")
    >>> order.validate("LMUSpec", 8), order.expected(), order.schema()["minimum"]
    (8, 'a positive integer', 1)
    """

    name: str
    kind: str
    help: str
    default: Any = REQUIRED
    minimum: int = 1
    maximum: int | None = None
    choices: tuple = ()
    nullable: bool = False
    cls: type | None = None
    accepts: str = ""  # what it accepts, in words, when the kind's own description will not do

    @property
    def required(self) -> bool:
        """Whether the field has no default."""
        return self.default is REQUIRED

    def expected(self, with_maximum: bool = True) -> str:
        """What the field accepts, as the end of the sentence "X must be ..." (the refusal of a value too small or
        of the wrong kind leaves the maximum out; a value too large gets a message of its own)."""
        if self.accepts:
            return self.accepts
        if self.kind == "int":
            low = "a positive integer" if self.minimum == 1 else f"an integer >= {self.minimum}"
            return low if self.maximum is None or not with_maximum else f"{low}, at most {self.maximum}"
        if self.kind == "number":
            return "a finite number > 0"
        if self.kind == "rate":
            return "a number in [0, 1)"
        if self.kind == "bool":
            return "True or False"
        listed = ", ".join(repr(c) for c in self.choices)
        return f"one of {listed}" + (", or None" if self.nullable else "")

    def validate(self, owner: str, value: Any) -> Any:
        """The normalized value (plain ``int``, ``float``, ``bool``, ``str``), or a :class:`lmu.SpecError`."""
        kind = self.kind
        if value is None and self.nullable:
            return None
        if kind == "int":
            if not _is_bool(value) and isinstance(value, (int, np.integer)) and value >= self.minimum:
                if self.maximum is None or value <= self.maximum:
                    return int(value)
                raise SpecError(f"{owner}.{self.name} must be at most {self.maximum} (got {short(value)})")
        elif kind in ("number", "rate"):
            if not _is_bool(value) and isinstance(value, (int, float, np.integer, np.floating)):
                number = _as_float(value)
                if (kind == "number" and math.isfinite(number) and number > 0) or \
                        (kind == "rate" and 0.0 <= number < 1.0):
                    return number
        elif kind == "bool":
            if _is_bool(value):
                return bool(value)
        elif kind == "instance":
            if self.cls is not None and isinstance(value, self.cls):
                return value
        elif kind == "dtype":
            name = value if isinstance(value, str) else _dtype_name(value)
            if name in self.choices:
                return name
        elif isinstance(value, str) and value in self.choices:
            return value
        raise SpecError(f"{owner}.{self.name} must be {self.expected(with_maximum=False)} (got {short(value)})")

    def schema(self) -> dict:
        """The field's JSON schema (draft 2020-12)."""
        kind = self.kind
        if kind == "int":
            out: dict[str, Any] = {"type": "integer", "minimum": self.minimum}
            if self.maximum is not None:
                out["maximum"] = self.maximum
        elif kind == "number":
            out = {"type": "number", "exclusiveMinimum": 0}
        elif kind == "rate":
            out = {"type": "number", "minimum": 0, "exclusiveMaximum": 1}
        elif kind == "bool":
            out = {"type": "boolean"}
        elif kind == "instance":
            ref = {"$ref": f"#/$defs/{self.cls.__name__ if self.cls else 'object'}"}
            out = {"oneOf": [{"type": "null"}, ref]} if self.nullable else ref
        else:
            out = {"enum": list(self.choices) + ([None] if self.nullable else [])}
        out["description"] = self.help
        if not self.required:
            out["default"] = self.default
        return out
