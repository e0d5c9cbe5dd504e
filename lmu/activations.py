"""The activation functions a spec may name, in one table that every backend maps from.

Design rule: the names and their meaning live here once, as NumPy functions (the reference computes with them);
a backend builds its own table with :func:`mapped`, which refuses a table that misses a name or invents one, so
that no backend can quietly drift from the spec's list. NaN propagates through every function, like arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import scipy.special

from .errors import ArgumentError

__all__ = ["ACTIVATIONS", "NAMES", "DEFAULTS", "mapped"]


def _linear(v):
    return v


def _relu(v):
    return np.maximum(v, 0.0)  # keeps NaN, as torch.relu and tf.nn.relu do


#: name → the NumPy function that defines it.
ACTIVATIONS: dict[str, Callable[[Any], Any]] = {
    "linear": _linear,
    "tanh": np.tanh,
    "relu": _relu,
    "sigmoid": scipy.special.expit,  # 1 / (1 + e^-v) without overflow warnings; expit(NaN) is NaN
}
#: The names, in the table's order.
NAMES: tuple[str, ...] = tuple(ACTIVATIONS)
#: The Keras default activation of each hidden kind (``Hidden(kind, units, activation=None)``).
DEFAULTS: dict[str, str] = {"dense": "linear", "rnn": "tanh", "lstm": "tanh"}


def mapped(table: Mapping[str, Any], framework: str, partial: bool = False) -> dict[str, Any]:
    """A backend's own activation table, checked against :data:`NAMES`.

    Parameters
    ----------
    table : mapping of name to the framework's object (a function, a neuron type, ...)
    framework : str
        Named in the error.
    partial : bool
        Allow the table to leave names out (a backend that computes some activations another way).

    Examples
    --------
    >>> import math
    >>> sorted(mapped({"linear": abs, "tanh": math.tanh, "relu": abs, "sigmoid": abs}, "example"))
    ['linear', 'relu', 'sigmoid', 'tanh']
    >>> mapped({"gelu": abs}, "example", partial=True)
    Traceback (most recent call last):
    ...
    lmu.errors.ArgumentError: the example activation table names 'gelu', which lmu.activations does not define \
(known: linear, tanh, relu, sigmoid)
    """
    unknown = [name for name in table if name not in ACTIVATIONS]
    missing = [name for name in NAMES if name not in table]
    if unknown:
        raise ArgumentError(f"the {framework} activation table names {', '.join(map(repr, unknown))}, which "
                            f"lmu.activations does not define (known: {', '.join(NAMES)})")
    if missing and not partial:
        raise ArgumentError(f"the {framework} activation table lacks {', '.join(map(repr, missing))} "
                            f"(it must cover {', '.join(NAMES)})")
    return dict(table)
