"""The canonical weight layout: names and shapes from a spec, Keras-default initialization, ``.npz`` files.

Design rule: the names and shapes of an LMU's weights follow from its spec alone, in the Keras orientation
``(in, out)``. Every backend maps to and from this layout; nothing else travels between frameworks. Files are
plain ``.npz`` archives with the spec's JSON inside, read with ``allow_pickle=False`` and checked name by name.
"""

from __future__ import annotations

import dataclasses
import math
import os
import zipfile
from collections.abc import Mapping

import numpy as np

from .arrays import cast, numpy_dtype
from .errors import ArgumentError, MissingWeightsFile, SpecError, WeightsFileError
from .files import atomic_write
from .legendre import halving_steps, horizon
from .npz import NPY_MAGIC, ZIP_MAGIC, Archive
from .spec import COMPUTE_DTYPES, LMUSpec, unstable_theta

__all__ = ["LMUWeights", "weight_shapes", "init_weights", "conform", "save_weights", "load_weights", "FILE_FORMAT",
           "TWIN_FIELDS", "MAX_SPEC_BYTES"]

FILE_FORMAT = 1
_SPEC_KEY = "__lmu_spec__"
_FORMAT_KEY = "__lmu_format__"


def weight_shapes(spec: LMUSpec) -> dict[str, tuple[int, ...]]:
    """The canonical names and shapes of a spec's weights, in a fixed order.

    Examples
    --------
    >>> from lmu import LMUSpec, Hidden
    >>> weight_shapes(LMUSpec(memory_d=1, order=4, theta=8, input_d=2, hidden=Hidden("lstm", 3)))
    {'kernel': (2, 1), 'hidden/kernel': (4, 12), 'hidden/recurrent_kernel': (3, 12), 'hidden/bias': (12,)}
    """
    if not isinstance(spec, LMUSpec):
        raise ArgumentError(f"weight_shapes needs an lmu.LMUSpec (got {type(spec).__name__})")
    shapes: dict[str, tuple[int, ...]] = {}
    if spec.kernel_initializer is not None:
        shapes["kernel"] = (spec.enc_d, spec.memory_d)
    if spec.use_bias:
        shapes["bias"] = (spec.memory_d,)
    if spec.memory_to_memory:
        shapes["recurrent_kernel"] = (spec.memory_size, spec.memory_d)
    if spec.trainable_theta:
        shapes["theta"] = ()
    hidden = spec.hidden
    if hidden is not None:
        width = hidden.gates * hidden.units
        shapes["hidden/kernel"] = (spec.z_d, width)
        if hidden.kind in ("rnn", "lstm"):
            shapes["hidden/recurrent_kernel"] = (hidden.units, width)
        if hidden.use_bias:
            shapes["hidden/bias"] = (width,)
    return shapes


class LMUWeights(Mapping):
    """The weights of one LMU: a read-only mapping name → array, tied to (and checked against) its spec.

    Parameters
    ----------
    spec : LMUSpec
    arrays : mapping of str to array_like
        Exactly the names of :func:`weight_shapes`; real arrays of those shapes, cast to ``spec.dtype``.

    Examples
    --------
    >>> import lmu
    >>> spec = lmu.LMUSpec(memory_d=1, order=4, theta=8, input_d=1)
    >>> w = lmu.init_weights(spec, seed=1)
    >>> sorted(w), w["kernel"].shape
    (['kernel'], (1, 1))
    >>> w2 = w.replace(kernel=w["kernel"] * 2)
    >>> w2 == w, w2.replace(kernel=w["kernel"]) == w
    (False, True)
    """

    def __init__(self, spec: LMUSpec, arrays: Mapping):
        if not isinstance(spec, LMUSpec):
            raise ArgumentError(f"LMUWeights needs an lmu.LMUSpec (got {type(spec).__name__})")
        if not isinstance(arrays, Mapping):
            raise ArgumentError(f"weights must be a mapping name -> array (got {type(arrays).__name__})")
        shapes = weight_shapes(spec)
        missing = [n for n in shapes if n not in arrays]
        unknown = [n for n in arrays if n not in shapes]
        if missing or unknown:
            parts = []
            if missing:
                parts.append(f"missing {', '.join(missing)}")
            if unknown:
                parts.append(f"unexpected {', '.join(map(str, unknown))}")
            raise SpecError(f"weights do not fit the spec ({'; '.join(parts)}); this spec needs exactly "
                            f"{', '.join(f'{n} {s}' for n, s in shapes.items()) or 'no weights'}")
        data, problems = {}, []
        for name, shape in shapes.items():
            try:
                arr = np.asarray(arrays[name])
            except (ValueError, TypeError) as err:  # ragged nesting and the like
                raise SpecError(f"weight '{name}' must be an array of shape {shape} ({err})") from None
            if arr.dtype == object or not (np.issubdtype(arr.dtype, np.floating)
                                           or np.issubdtype(arr.dtype, np.integer)):
                raise ArgumentError(f"weight '{name}' must be a real numeric array (got dtype {arr.dtype})")
            if arr.shape != shape:
                problems.append(f"weight '{name}' must have shape {shape} for this spec (got {arr.shape})")
                continue
            with np.errstate(over="ignore", invalid="ignore"):
                arr = np.array(cast(arr, spec.dtype), copy=True)
            if not np.isfinite(arr).all():
                where = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
                largest = np.finfo(numpy_dtype(spec.dtype)).max
                problems.append(f"weight '{name}' holds {arr[where]} at index {where}: weights must be finite "
                                f"{spec.dtype} numbers (a value beyond {largest:.3g} overflows)")
                continue
            arr.setflags(write=False)
            data[name] = arr
        if problems:
            raise SpecError("; ".join(problems))
        if "theta" in data:
            theta = float(data["theta"])
            if not theta > 0:
                raise SpecError(f"weight 'theta' must be a finite number > 0 (got {theta!r})")
            memory = COMPUTE_DTYPES[spec.dtype]
            if halving_steps(spec.order, theta, spec.discretizer, memory) > horizon(memory):
                raise SpecError(unstable_theta(spec.order, theta, spec.discretizer, memory, "weight 'theta'"))
        self._spec = spec
        self._data = data

    @property
    def spec(self) -> LMUSpec:
        """The spec these weights belong to."""
        return self._spec

    @property
    def theta(self) -> float:
        """The window in effect (the ``theta`` weight when trainable, else ``spec.theta``)."""
        return float(self._data["theta"]) if "theta" in self._data else self._spec.theta

    def __getitem__(self, name):
        return self._data[name]

    def __iter__(self):
        return iter(self._data)

    def __len__(self):
        return len(self._data)

    def __eq__(self, other):
        # Mapping's __eq__ compares arrays with ``==`` and fails on any array of more than one element.
        if not isinstance(other, LMUWeights):
            return NotImplemented
        return (self._spec == other._spec and self._data.keys() == other._data.keys()
                and all(np.array_equal(a, other._data[n], equal_nan=True) for n, a in self._data.items()))

    __hash__ = None  # type: ignore[assignment]  # unhashable, like the dict it stands for

    def replace(self, arrays: Mapping | None = None, /, **named) -> "LMUWeights":
        """A checked copy with some arrays replaced, given as a mapping (``{"hidden/kernel": ...}``) or by name."""
        new = dict(self._data)
        new.update(arrays or {})
        new.update(named)
        return LMUWeights(self._spec, new)

    def astype(self, dtype) -> "LMUWeights":
        """The same weights for the same spec in another dtype."""
        return LMUWeights(self._spec.replace(dtype=dtype), self._data)

    def __repr__(self):
        inner = ", ".join(f"{n}: {a.shape}" for n, a in self._data.items())
        return f"LMUWeights({{{inner}}}, dtype={self._spec.dtype})"


# --------------------------------------------------------------------------- initialization
def _fans(shape):
    return (shape[0], shape[1]) if len(shape) == 2 else (1, 1)


def _truncated_normal(rng, shape, std):
    # Keras' truncated normal: redraw beyond 2 std; scaled so the variance is std**2.
    std = std / 0.87962566103423978
    out = rng.normal(0.0, std, size=shape)
    bad = np.abs(out) > 2 * std
    while bad.any():
        out[bad] = rng.normal(0.0, std, size=int(bad.sum()))
        bad = np.abs(out) > 2 * std
    return out


def _orthogonal(rng, shape):
    rows, cols = shape
    flat = rng.normal(size=(max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(flat)
    q = q * np.sign(np.diag(r))
    return q.T if rows < cols else q


def _initialize(name: str, shape, rng) -> np.ndarray:
    if name == "zeros":
        return np.zeros(shape)
    if name == "ones":
        return np.ones(shape)
    if name == "orthogonal":
        return _orthogonal(rng, shape)
    fan_in, fan_out = _fans(shape)
    family, kind = name.split("_")
    variance = {"glorot": 2.0 / (fan_in + fan_out), "he": 2.0 / fan_in, "lecun": 1.0 / fan_in}[family]
    if kind == "uniform":
        limit = np.sqrt(3.0 * variance)
        return rng.uniform(-limit, limit, size=shape)
    return _truncated_normal(rng, shape, np.sqrt(variance))


def _check_seed(seed):
    if seed is None:
        return None
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise ArgumentError(f"init_weights seed must be a non-negative integer or None (got {seed!r})")
    if seed < 0:
        raise ArgumentError(f"init_weights seed must be a non-negative integer or None (got {seed!r})")
    return int(seed)


def init_weights(spec: LMUSpec, seed: int = 0) -> LMUWeights:
    """Fresh weights with Keras' defaults.

    Glorot-uniform kernels (the spec's ``kernel_initializer`` for ``kernel``), orthogonal recurrent kernels, zero
    biases except the LSTM's forget gate (ones), and ``theta = spec.theta`` when trainable.

    Parameters
    ----------
    spec : LMUSpec
    seed : int or None
        A non-negative integer: the same seed gives the same weights. None draws fresh entropy.

    Examples
    --------
    >>> import lmu
    >>> spec = lmu.LMUSpec(memory_d=1, order=4, theta=8, input_d=1, hidden=lmu.Hidden("lstm", 2))
    >>> lmu.init_weights(spec)["hidden/bias"].tolist()
    [0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    """
    shapes = weight_shapes(spec)
    rng = np.random.default_rng(_check_seed(seed))
    arrays = {}
    for name, shape in shapes.items():
        if name == "kernel":
            arrays[name] = _initialize(spec.kernel_initializer or "zeros", shape, rng)  # None has no kernel
        elif name in ("bias", "hidden/bias"):
            arrays[name] = np.zeros(shape)
        elif name == "theta":
            arrays[name] = np.array(spec.theta)
        elif name.endswith("recurrent_kernel"):
            arrays[name] = _initialize("orthogonal", shape, rng)
        else:
            arrays[name] = _initialize("glorot_uniform", shape, rng)
    if spec.hidden is not None and spec.hidden.kind == "lstm" and spec.hidden.use_bias:
        units = spec.hidden.units
        arrays["hidden/bias"][units : 2 * units] = 1.0
    return LMUWeights(spec, arrays)


# --------------------------------------------------------------------------- where weights enter
#: Spec fields that do not change what the weights mean: weights of a spec that differs from another only in these
#: are the other's too (cast to its dtype).
TWIN_FIELDS = ("dtype", "return_sequences", "dropout", "recurrent_dropout")


def conform(spec: LMUSpec, weights) -> LMUWeights:
    """``weights`` checked against ``spec``: how weights enter ``save_weights``, ``build`` and ``set_weights``.

    :class:`LMUWeights` of ``spec`` pass as they are, and those of a spec that differs only in
    :data:`TWIN_FIELDS` are cast to it; weights of any other spec are refused, naming the fields that differ (to
    reuse them on purpose, rebuild them: ``LMUWeights(spec, dict(weights))``). A plain mapping is checked name by
    name, shape by shape (all of them at once) and value by value (finite, in the spec's dtype).

    Examples
    --------
    >>> import lmu
    >>> small = lmu.LMUSpec(memory_d=1, order=4, theta=8, input_d=1)
    >>> conform(small.replace(order=8), lmu.init_weights(small))
    Traceback (most recent call last):
    ...
    lmu.errors.SpecError: these weights belong to another spec: order=4 where this spec has order=8 (to reuse them \
on purpose: lmu.LMUWeights(spec, dict(weights)))
    """
    if isinstance(weights, LMUWeights):
        if weights.spec == spec:
            return weights
        differ = [f.name for f in dataclasses.fields(LMUSpec) if f.name not in TWIN_FIELDS
                  and getattr(weights.spec, f.name) != getattr(spec, f.name)]
        if differ:
            theirs = ", ".join(f"{n}={getattr(weights.spec, n)!r}" for n in differ)
            ours = ", ".join(f"{n}={getattr(spec, n)!r}" for n in differ)
            have, need = weight_shapes(weights.spec), weight_shapes(spec)
            shapes = [f"{n} {have.get(n, 'absent')} where it needs {need.get(n, 'none')}"
                      for n in dict.fromkeys([*have, *need]) if have.get(n) != need.get(n)]
            raise SpecError(f"these weights belong to another spec: {theirs} where this spec has {ours}"
                            + (f" (weights {'; '.join(shapes)})" if shapes else "")
                            + " (to reuse them on purpose: lmu.LMUWeights(spec, dict(weights)))")
        return LMUWeights(spec, weights._data)
    if not isinstance(weights, Mapping):
        raise ArgumentError(f"weights must be lmu.LMUWeights or a mapping name -> array (got "
                            f"{type(weights).__name__})")
    return LMUWeights(spec, weights)


# --------------------------------------------------------------------------- files
#: The largest spec JSON a weights file may hold (a spec is a few hundred bytes).
MAX_SPEC_BYTES = 1 << 16


def save_weights(path, spec: LMUSpec, weights) -> None:
    """Save a spec and its weights as one ``.npz`` file (no pickled objects inside), atomically.

    The weights are checked against the spec first (:func:`conform`). The file is written next to its target and
    renamed over it only once complete (:func:`lmu.files.atomic_write`): a save that fails, or a process killed
    while saving, leaves a previous file at ``path`` as it was.

    Examples
    --------
    >>> import lmu, tempfile, os
    >>> spec = lmu.LMUSpec(memory_d=1, order=4, theta=8, input_d=1)
    >>> path = os.path.join(tempfile.mkdtemp(), "lmu.npz")
    >>> lmu.save_weights(path, spec, lmu.init_weights(spec))
    >>> lmu.load_weights(path)[0] == spec
    True
    """
    if not isinstance(spec, LMUSpec):
        raise ArgumentError(f"save_weights needs an lmu.LMUSpec (got {type(spec).__name__})")
    weights = conform(spec, weights)
    arrays = {name: np.asarray(arr) for name, arr in weights.items()}
    arrays[_SPEC_KEY] = np.array(spec.to_json())
    arrays[_FORMAT_KEY] = np.array(FILE_FORMAT)
    try:
        with atomic_write(path) as fh, zipfile.ZipFile(fh, "w") as archive:  # what np.savez writes, closed on error
            for name, array in arrays.items():
                with archive.open(name + ".npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, array, allow_pickle=False)
    except OSError as err:  # the file system refused (lmu.FileError says where): the weights file's kind of it
        raise WeightsFileError(f"cannot save LMU weights to {os.fspath(path)!r}: {err}") from err


def load_weights(path) -> tuple[LMUSpec, LMUWeights]:
    """Load ``(spec, weights)`` from a file written by :func:`save_weights`.

    Nothing is unpickled, and nothing is read beyond what the spec stored in the file says the weights are: every
    entry's declared size, shape and dtype is checked before its data is read or decompressed. Any problem is one
    :class:`lmu.WeightsFileError` (:class:`lmu.SpecError` for content that does not fit its spec) naming the file.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(6)
    except FileNotFoundError:
        raise MissingWeightsFile(f"no LMU weights file at {path!r}") from None
    except OSError as err:
        raise WeightsFileError(f"{path!r} cannot be read as an LMU weights file ({err})") from None
    if head.startswith(NPY_MAGIC):
        raise WeightsFileError(f"{path!r} is a single .npy array, not an LMU weights archive from lmu.save_weights")
    if not head.startswith(ZIP_MAGIC):
        what = "it is empty" if not head else "it does not start with a zip header"
        raise WeightsFileError(f"{path!r} is not an LMU weights file written by lmu.save_weights: an .npz (zip) "
                               f"archive is expected and {what}")
    with Archive(path, WeightsFileError, max_members=16, what="an LMU weights file") as archive:
        if _SPEC_KEY not in archive.names:
            raise WeightsFileError(f"{path!r} has no {_SPEC_KEY} entry: it was not written by lmu.save_weights")
        version = archive.read(_FORMAT_KEY, shape=(), kinds="iu", max_bytes=8) \
            if _FORMAT_KEY in archive.names else np.array(FILE_FORMAT)
        if int(version) < 1:
            raise WeightsFileError(f"{path!r}: {_FORMAT_KEY} must be a positive integer (got {int(version)})")
        if int(version) > FILE_FORMAT:
            raise WeightsFileError(f"{path!r} uses weights file format {int(version)}, newer than this lmu reads "
                                   f"({FILE_FORMAT}): upgrade lmu (pip install -U lmu)")
        text = archive.read(_SPEC_KEY, shape=(), kinds="U", max_bytes=4 * MAX_SPEC_BYTES)
        try:
            spec = LMUSpec.from_json(str(text))
        except SpecError as err:
            raise SpecError(f"{path!r}: the stored spec is invalid: {err}") from None
        shapes = weight_shapes(spec)
        names = [n for n in archive.names if n not in (_SPEC_KEY, _FORMAT_KEY)]
        missing, unknown = [n for n in shapes if n not in names], [n for n in names if n not in shapes]
        if missing or unknown:
            parts = ([f"missing {', '.join(missing)}"] if missing else []) + \
                ([f"unexpected {', '.join(unknown)}"] if unknown else [])
            raise SpecError(f"{path!r}: weights do not fit the spec ({'; '.join(parts)})")
        dtype = np.dtype(numpy_dtype(spec.dtype))
        for name, shape in shapes.items():  # every header checked before any data is read
            got_shape, got_dtype = archive.header(name)
            if got_shape != shape:
                raise SpecError(f"{path!r}: weight '{name}' must have shape {shape} for this spec (got {got_shape})")
            if got_dtype != dtype:
                raise SpecError(f"{path!r}: weight '{name}' has dtype {got_dtype} but the spec's dtype is "
                                f"{spec.dtype}")
        arrays = {name: archive.read(name, shape=shape, dtype=dtype, max_bytes=max(1, math.prod(shape)) *
                                     dtype.itemsize) for name, shape in shapes.items()}
    try:
        return spec, LMUWeights(spec, arrays)
    except (SpecError, ArgumentError) as err:
        raise type(err)(f"{path!r}: {err}") from None
