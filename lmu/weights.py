"""The canonical weight layout: names and shapes from a spec, Keras-default initialization, ``.npz`` files.

Design rule: the names and shapes of an LMU's weights follow from its spec alone, in the Keras orientation
``(in, out)``. Every backend maps to and from this layout; nothing else travels between frameworks. Files are
plain ``.npz`` archives with the spec's JSON inside, read with ``allow_pickle=False`` and checked name by name.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping

import numpy as np

from .errors import ArgumentError, MissingWeightsFile, SpecError, WeightsFileError
from .spec import LMUSpec

__all__ = ["LMUWeights", "weight_shapes", "init_weights", "save_weights", "load_weights", "FILE_FORMAT"]

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
        data = {}
        for name, shape in shapes.items():
            try:
                arr = np.asarray(arrays[name])
            except (ValueError, TypeError) as err:  # ragged nesting and the like
                raise SpecError(f"weight '{name}' must be an array of shape {shape} ({err})") from None
            if arr.dtype == object or not (np.issubdtype(arr.dtype, np.floating)
                                           or np.issubdtype(arr.dtype, np.integer)):
                raise ArgumentError(f"weight '{name}' must be a real numeric array (got dtype {arr.dtype})")
            if arr.shape != shape:
                raise SpecError(f"weight '{name}' must have shape {shape} for this spec (got {arr.shape})")
            arr = np.array(arr, dtype=spec.dtype, copy=True)
            arr.setflags(write=False)
            data[name] = arr
        if "theta" in data and not (np.isfinite(data["theta"]) and data["theta"] > 0):
            raise SpecError(f"weight 'theta' must be a finite number > 0 (got {float(data['theta'])!r})")
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

    __hash__ = None  # unhashable, like the dict it stands for

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
            arrays[name] = _initialize(spec.kernel_initializer, shape, rng)
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


# --------------------------------------------------------------------------- files
def save_weights(path, spec: LMUSpec, weights) -> None:
    """Save a spec and its weights as one ``.npz`` file (no pickled objects inside).

    Examples
    --------
    >>> import lmu, tempfile, os
    >>> spec = lmu.LMUSpec(memory_d=1, order=4, theta=8, input_d=1)
    >>> path = os.path.join(tempfile.mkdtemp(), "lmu.npz")
    >>> lmu.save_weights(path, spec, lmu.init_weights(spec))
    >>> lmu.load_weights(path)[0] == spec
    True
    """
    weights = weights if isinstance(weights, LMUWeights) and weights.spec == spec else LMUWeights(spec, weights)
    arrays = {name: np.asarray(arr) for name, arr in weights.items()}
    arrays[_SPEC_KEY] = np.array(spec.to_json())
    arrays[_FORMAT_KEY] = np.array(FILE_FORMAT)
    with open(os.fspath(path), "wb") as fh:
        np.savez(fh, **arrays)


_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_NPY_MAGIC = b"\x93NUMPY"


def load_weights(path) -> tuple[LMUSpec, LMUWeights]:
    """Load ``(spec, weights)`` from a file written by :func:`save_weights`.

    Nothing is unpickled; every name, shape and dtype is checked against the spec stored in the file, and any
    problem gives one :class:`lmu.WeightsFileError` (:class:`lmu.SpecError` for content that does not fit a spec)
    naming the file.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(6)
    except FileNotFoundError:
        raise MissingWeightsFile(f"no LMU weights file at {path!r}") from None
    except OSError as err:
        raise WeightsFileError(f"{path!r} cannot be read as an LMU weights file ({err})") from None
    if head.startswith(_NPY_MAGIC):
        raise WeightsFileError(f"{path!r} is a single .npy array, not an LMU weights archive from lmu.save_weights")
    if not head.startswith(_ZIP_MAGIC):
        what = "it is empty" if not head else "it does not start with a zip header"
        raise WeightsFileError(f"{path!r} is not an LMU weights file written by lmu.save_weights: an .npz (zip) "
                               f"archive is expected and {what}")
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise WeightsFileError(f"{path!r} is corrupt or truncated: not a complete .npz (zip) archive "
                               f"({err})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):  # pragma: no cover - the magic check above rules it out
        raise WeightsFileError(f"{path!r} is not an LMU weights archive from lmu.save_weights")
    with archive:
        try:
            arrays = {name: archive[name] for name in archive.files}
        except ValueError as err:
            if "allow_pickle" in str(err) or "Object arrays" in str(err):
                raise WeightsFileError(f"{path!r} holds a pickled object array; lmu never unpickles, "
                                       "re-save the weights with lmu.save_weights") from None
            raise WeightsFileError(f"{path!r} is corrupt or truncated ({err})") from None
        except (OSError, EOFError, zipfile.BadZipFile, KeyError) as err:
            raise WeightsFileError(f"{path!r} is corrupt or truncated ({err})") from None
    for name, arr in arrays.items():
        if not isinstance(arr, np.ndarray):
            raise WeightsFileError(f"{path!r}: entry {name!r} is not a .npy array; the file was not written by "
                                   "lmu.save_weights")
    if _SPEC_KEY not in arrays:
        raise WeightsFileError(f"{path!r} has no {_SPEC_KEY} entry: it was not written by lmu.save_weights")
    version = arrays.pop(_FORMAT_KEY, np.array(FILE_FORMAT))
    if version.shape != () or not np.issubdtype(version.dtype, np.integer) or int(version) < 1:
        raise WeightsFileError(f"{path!r}: {_FORMAT_KEY} must be a positive integer (got {version!r})")
    if int(version) > FILE_FORMAT:
        raise WeightsFileError(f"{path!r} uses weights file format {int(version)}, newer than this lmu reads "
                               f"({FILE_FORMAT}): upgrade lmu (pip install -U lmu)")
    text = arrays.pop(_SPEC_KEY)
    if text.shape != () or text.dtype.kind != "U":
        raise WeightsFileError(f"{path!r}: {_SPEC_KEY} must be a JSON string (got dtype {text.dtype})")
    try:
        spec = LMUSpec.from_json(str(text))
    except SpecError as err:
        raise SpecError(f"{path!r}: the stored spec is invalid: {err}") from None
    for name, arr in arrays.items():
        if arr.dtype != np.dtype(spec.dtype):
            raise SpecError(f"{path!r}: weight '{name}' has dtype {arr.dtype} but the spec's dtype is "
                            f"{spec.dtype}")
    try:
        return spec, LMUWeights(spec, arrays)
    except (SpecError, ArgumentError) as err:
        raise type(err)(f"{path!r}: {err}") from None
