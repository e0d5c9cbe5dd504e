"""Checks on the arrays a user hands to an LMU: the input batch and the streaming state.

Design rule: one function per kind of array, each returning a NumPy array of the spec's dtype or raising one
:class:`lmu.ArgumentError` that names the argument, the shape or dtype expected and what was given. Shapes and
dtypes are checked; values never are (NaN and inf are data, and propagate). The spec is read through its
attributes (``input_d``, ``dtype``, ``state_shapes``), so this module sits below :mod:`lmu.spec`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .errors import ArgumentError

__all__ = ["real_array", "check_input", "check_state"]


def real_array(what: str, value: Any, shape: str) -> np.ndarray:
    """``np.asarray(value)``, refusing ragged nesting, non-numeric, object and complex data with one clear error.

    Examples
    --------
    >>> real_array("input x", [[1, 2], [3]], "(batch, T, 1)")
    Traceback (most recent call last):
    ...
    lmu.errors.ArgumentError: input x must be an array of shape (batch, T, 1) (got ragged nested sequences)
    """
    if type(value) is np.ndarray and value.dtype.kind in "fiub":  # the common case, on the streaming hot path
        return value
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError):  # ragged lists and the like
        raise ArgumentError(f"{what} must be an array of shape {shape} (got ragged nested sequences)") from None
    if np.iscomplexobj(arr):
        raise ArgumentError(f"{what} must hold real numbers (got a complex array)")
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ArgumentError(f"{what} must hold real numbers (got dtype {arr.dtype})")
    return arr


def check_input(spec, x) -> np.ndarray:
    """Validate an input batch ``(batch, T, input_d)`` and return it as an array of the spec's dtype.

    Examples
    --------
    >>> import lmu
    >>> spec = lmu.LMUSpec(memory_d=1, order=4, theta=8, input_d=2)
    >>> check_input(spec, [[[1, 2], [3, 4]]]).dtype
    dtype('float32')
    >>> check_input(spec, np.zeros((5, 2)))
    Traceback (most recent call last):
    ...
    lmu.errors.ArgumentError: input x must have shape (batch, T, 2), 3 axes (got shape (5, 2); add a batch axis \
with x[None])
    """
    arr = real_array("input x", x, f"(batch, T, {spec.input_d})")
    if arr.ndim != 3:
        hint = "; add a batch axis with x[None]" if arr.ndim == 2 else ""
        raise ArgumentError(f"input x must have shape (batch, T, {spec.input_d}), 3 axes (got shape "
                            f"{arr.shape}{hint})")
    if arr.shape[2] != spec.input_d:
        raise ArgumentError(f"input x has {arr.shape[2]} features but LMUSpec.input_d is {spec.input_d} "
                            f"(got shape {arr.shape})")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ArgumentError(f"input x needs at least one sequence and one time step (got shape {arr.shape})")
    return arr.astype(spec.dtype, copy=False)


def check_state(spec, state, batch: int) -> dict[str, np.ndarray]:
    """Validate a streaming state dict against ``spec.state_shapes(batch)``; arrays of the spec's dtype.

    Examples
    --------
    >>> import lmu
    >>> spec = lmu.LMUSpec(memory_d=1, order=4, theta=8, input_d=1)
    >>> check_state(spec, {"memory": np.zeros((1, 3))}, batch=1)
    Traceback (most recent call last):
    ...
    lmu.errors.ArgumentError: state['memory'] must have shape (1, 4) (got (1, 3))
    """
    shapes = spec.state_shapes(batch)
    if not isinstance(state, Mapping):
        raise ArgumentError(f"state must be a dict with keys {sorted(shapes)} (got {type(state).__name__})")
    if set(state) != set(shapes):
        got = sorted(map(repr, state))
        raise ArgumentError(f"state must have exactly the keys {sorted(shapes)} (got [{', '.join(got)}])")
    out = {}
    for key, shape in shapes.items():
        arr = real_array(f"state['{key}']", state[key], str(shape))
        if arr.shape != shape:
            raise ArgumentError(f"state['{key}'] must have shape {shape} (got {arr.shape})")
        out[key] = arr.astype(spec.dtype, copy=False)
    return out
