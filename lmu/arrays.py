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

__all__ = ["real_array", "check_input", "check_state", "numpy_dtype", "cast", "mask_non_finite",
           "poison_reached"]


def numpy_dtype(dtype: str) -> str:
    """The NumPy dtype that holds arrays of a spec dtype: itself, except bfloat16 (which NumPy lacks), whose values
    are held in float32 arrays, rounded to bfloat16 by :func:`cast`.

    Examples
    --------
    >>> numpy_dtype("float16"), numpy_dtype("bfloat16")
    ('float16', 'float32')
    """
    return "float32" if dtype == "bfloat16" else dtype


def cast(arr, dtype: str) -> np.ndarray:
    """``arr`` in the NumPy dtype of the spec dtype ``dtype`` (bfloat16: float32 values rounded to bfloat16,
    to nearest even, as torch rounds).

    Examples
    --------
    >>> float(cast(np.array(1.00390625), "bfloat16"))  # 1 + 2⁻⁸ lies halfway: rounds to the even 1.0
    1.0
    """
    out = np.asarray(arr).astype(numpy_dtype(dtype), copy=False)
    if dtype != "bfloat16":
        return out
    flat = np.array(out, dtype=np.float32).reshape(-1)  # a copy, at least 1-d (0-d arrays cannot be viewed)
    bits = flat.view(np.uint32)
    rounded = ((bits + np.uint32(0x7FFF) + ((bits >> 16) & np.uint32(1))) & np.uint32(0xFFFF0000)).view(np.float32)
    return np.where(np.isfinite(flat), rounded, flat).reshape(np.shape(out))


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
    return cast(arr, spec.dtype)


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
        out[key] = cast(arr, spec.dtype)
    return out


def mask_non_finite(x: np.ndarray):
    """``(x with non-finite values set to 0, the first non-finite step of each row (T where there is none))``.

    The design's rule is that non-finite input propagates to every output from its step on and no backend raises on
    it. A backend that cannot carry NaN exactly (neurons turn it into a number; a fused kernel may turn it into 0)
    simulates the finite values and then puts NaN where the step order would have carried them (:func:`poison_reached`).

    Examples
    --------
    >>> clean, first = mask_non_finite(np.array([[[1.0], [np.nan], [2.0]], [[1.0], [2.0], [3.0]]]))
    >>> clean[:, :, 0].tolist(), first.tolist()
    ([[1.0, 0.0, 2.0], [1.0, 2.0, 3.0]], [1, 3])
    """
    bad = ~np.isfinite(x).reshape(x.shape[0], x.shape[1], -1).all(axis=2)
    first = np.where(bad.any(axis=1), bad.argmax(axis=1), x.shape[1])
    return np.where(np.isfinite(x), x, 0).astype(x.dtype, copy=False), first


def poison_reached(spec, x: np.ndarray, outputs: np.ndarray, state: Mapping | None = None):
    """NaN exactly where the design's step order carries the non-finite values of ``x`` (batch, T, input_d): the
    memory dimensions they reach (all of them through an input kernel, a hidden-to-memory or memory-to-memory
    path; only their own dimension without a kernel), every hidden unit from the first reached step, and an
    input-to-hidden copy of ``x`` as ``x`` itself. For a backend that simulated ``x`` with those values masked
    (:func:`mask_non_finite`); returns ``(outputs, state)`` as new arrays.

    Examples
    --------
    >>> import lmu
    >>> spec = lmu.LMUSpec(memory_d=2, order=1, theta=4, input_d=2, kernel_initializer=None, return_sequences=True)
    >>> x = np.zeros((1, 3, 2)); x[0, 1, 1] = np.nan
    >>> out, _ = poison_reached(spec, x, np.zeros((1, 3, 2)))
    >>> np.isnan(out[0]).tolist()
    [[False, False], [False, True], [False, True]]
    """
    batch, steps = x.shape[:2]
    md, order = spec.memory_d, spec.order
    bad = ~np.isfinite(x)
    first_feature = np.where(bad.any(axis=1), bad.argmax(axis=1), steps)  # (batch, input_d)
    first_any = first_feature.min(axis=1)
    if spec.kernel_initializer is None:  # u = e: a feature reaches its own memory dimension; a hidden state, next step
        reach = np.full((batch, md), steps)
        reach[:, :spec.input_d] = first_feature
        if spec.hidden_to_memory:
            reach[:, spec.input_d:] = np.minimum(first_any + 1, steps)[:, None]
    else:
        reach = np.repeat(first_any[:, None], md, axis=1)
    if spec.memory_to_memory:
        reach = np.minimum(reach, np.minimum(reach.min(axis=1) + 1, steps)[:, None])
    hidden_reach = reach.min(axis=1)
    if spec.input_to_hidden:
        hidden_reach = np.minimum(hidden_reach, first_any)
    outputs = np.array(outputs, copy=True)
    sequences = outputs.ndim == 3
    for b in range(batch):
        if spec.hidden is not None:
            if hidden_reach[b] < steps and sequences:
                outputs[b, hidden_reach[b]:] = np.nan
            elif hidden_reach[b] < steps:
                outputs[b] = np.nan
            continue
        for j in range(md):
            if reach[b, j] < steps:
                cols = slice(j * order, (j + 1) * order)
                if sequences:
                    outputs[b, reach[b, j]:, cols] = np.nan
                else:
                    outputs[b, cols] = np.nan
        if spec.input_to_hidden:
            outputs[b, ..., md * order:] = x[b] if sequences else x[b, -1]
    new_state = None if state is None else {k: np.array(v, copy=True) for k, v in state.items()}
    for key, value in (new_state or {}).items():
        for b in range(batch):
            if key == "memory":
                for j in range(md):
                    if reach[b, j] < steps:
                        value[b, j * order:(j + 1) * order] = np.nan
            elif hidden_reach[b] < steps:
                value[b] = np.nan
    return outputs, new_state
