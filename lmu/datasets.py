"""Datasets for the LMU's benchmarks: MNIST-format files read from disk, the permuted sequential transform.

Design rule: nothing is downloaded and nothing is unpickled. Images and labels come from files the user already
has (IDX files, gzipped or not, or Keras' ``mnist.npz``, read by :mod:`lmu.npz`); every problem with a
file is one :class:`DatasetError` naming the file, what is wrong and what would be accepted.
"""

from __future__ import annotations

import dataclasses
import gzip
import math
import zlib
from pathlib import Path

import numpy as np

from .errors import ArgumentError, DatasetError
from .files import atomic_write
from .npz import Archive

__all__ = [
    "DatasetError",
    "FASHION_MNIST_DIR",
    "Split",
    "read_idx",
    "write_idx",
    "load_mnist",
    "permuted_sequential",
    "load_psmnist",
    "mackey_glass",
]

#: Where Debian's package ``dataset-fashion-mnist`` puts the Fashion-MNIST IDX files.
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"

#: MNIST and Fashion-MNIST have ten classes: labels are 0 to 9.
CLASSES = 10
_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
_DTYPES: dict[int, np.dtype] = {code: np.dtype(t) for code, t in
                                 {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}.items()}


#: The most bytes one dataset file may hold once decompressed (MNIST's training images are 47 MB).
MAX_DATASET_BYTES = 1 << 30
_READ_ERRORS = (OSError, EOFError, zlib.error, ValueError, OverflowError)  # gzip.BadGzipFile is an OSError


def read_idx(path, max_bytes: int = MAX_DATASET_BYTES) -> np.ndarray:
    """Read one IDX file (the MNIST format), gzipped or not, within a bound.

    The header's shape is checked against ``max_bytes`` before anything else is read, and a gzipped file is never
    decompressed past what its header declares; a file that is missing, not a regular file, truncated, longer than
    its header says, or not IDX at all is one :class:`lmu.DatasetError` naming it.

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "labels-idx1-ubyte")
    >>> write_idx(path, np.array([3, 1, 4], dtype=np.uint8))
    >>> read_idx(path)
    array([3, 1, 4], dtype=uint8)
    """
    path = Path(path)
    where = f"dataset file {str(path)!r}"
    if not path.exists():
        raise DatasetError(f"{where} does not exist")
    if not path.is_file():
        raise DatasetError(f"{where} is not a regular file (a directory, a device or a pipe)")
    try:
        with open(path, "rb") as raw:
            gz = raw.read(2) == b"\x1f\x8b"
        with (gzip.open(path, "rb") if gz else open(path, "rb")) as f:
            head = f.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in _DTYPES:
                raise DatasetError(f"{where} is not an IDX file (its first bytes are {head!r}; an IDX file starts "
                                   "with two zero bytes, a type code and the number of dimensions)")
            ndim = head[3]
            dims = f.read(4 * ndim)
            if len(dims) < 4 * ndim:
                raise DatasetError(f"{where} ends inside its header: it is truncated")
            shape = tuple(int(n) for n in np.frombuffer(dims, ">u4"))
            dtype = np.dtype(_DTYPES[head[2]])
            expected = math.prod(shape) * dtype.itemsize
            if expected > max_bytes:
                raise DatasetError(f"{where} declares shape {shape}: {expected} bytes, more than the {max_bytes} a "
                                   "dataset file may hold (lmu.datasets.MAX_DATASET_BYTES)")
            data = f.read(expected + 1)
    except DatasetError:
        raise
    except _READ_ERRORS as exc:
        raise DatasetError(f"{where} cannot be read ({type(exc).__name__}: {exc}): a truncated or corrupt gzip "
                           "file? Fetch it again") from None
    if len(data) != expected:
        raise DatasetError(f"{where} holds {4 + 4 * ndim + len(data)}{'+' if len(data) > expected else ''} bytes but "
                           f"its header {shape} says {4 + 4 * ndim + expected}: it is truncated or corrupt; fetch it "
                           "again")
    return np.frombuffer(data, dtype).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path, array: np.ndarray, compress: bool = False) -> None:
    """Write an array as an IDX file (``compress``: gzipped), e.g. small test datasets."""
    array = np.asarray(array)
    codes = {np.dtype(dtype).newbyteorder("="): code for code, dtype in _DTYPES.items()}
    code = codes.get(array.dtype.newbyteorder("="))
    if code is None:
        raise ArgumentError(f"write_idx cannot store dtype {array.dtype} (IDX holds uint8, int8, int16, int32, "
                            "float32, float64)")
    big = array.astype(np.dtype(_DTYPES[code]).newbyteorder(">"))
    payload = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, ">u4").tobytes() + big.tobytes()
    with atomic_write(path) as raw:  # a failed write leaves an older file as it was
        if compress:
            with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
                f.write(payload)
        else:
            raw.write(payload)


def _find(directory: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (directory / name).is_file():
            return directory / name
    return None


def load_mnist(directory) -> dict[str, np.ndarray]:
    """MNIST or Fashion-MNIST from a directory: the four IDX files, or Keras' ``mnist.npz``.

    Returns ``{"x_train": (60000, 28, 28) uint8, "y_train": (60000,), "x_test": (10000, 28, 28), "y_test":
    (10000,)}`` (whatever sizes the files hold).

    Examples
    --------
    >>> import os, tempfile
    >>> d = tempfile.mkdtemp()
    >>> rng = np.random.default_rng(0)
    >>> for name, shape in [("train-images-idx3-ubyte", (5, 28, 28)), ("t10k-images-idx3-ubyte", (2, 28, 28))]:
    ...     write_idx(os.path.join(d, name), rng.integers(0, 256, shape, dtype=np.uint8), compress=True)
    >>> write_idx(os.path.join(d, "train-labels-idx1-ubyte"), np.arange(5, dtype=np.uint8))
    >>> write_idx(os.path.join(d, "t10k-labels-idx1-ubyte"), np.arange(2, dtype=np.uint8))
    >>> {k: v.shape for k, v in load_mnist(d).items()}["x_train"]
    (5, 28, 28)
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise DatasetError(f"dataset directory {str(directory)!r} does not exist (for Fashion-MNIST on Debian: "
                           f"apt install dataset-fashion-mnist, which fills {FASHION_MNIST_DIR})")
    found = {key: _find(directory, stem) for key, stem in _FILES.items()}
    npz = directory / "mnist.npz"
    if all(found.values()):
        data = {key: read_idx(path) for key, path in found.items()}
    elif npz.is_file():
        with Archive(npz, DatasetError, max_members=8, what="Keras' mnist.npz (arrays x_train, y_train, x_test, "
                     "y_test)") as archive:
            data = {key: archive.read(key, kinds="iu", max_bytes=MAX_DATASET_BYTES) for key in _FILES}
    else:
        missing = [_FILES[k] + "[.gz]" for k, path in found.items() if path is None]
        raise DatasetError(f"dataset directory {str(directory)!r} lacks {', '.join(missing)} (and holds no "
                           "mnist.npz): it needs the four MNIST-format IDX files, gzipped or not")
    for split in ("train", "test"):
        x, y = data[f"x_{split}"], data[f"y_{split}"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise DatasetError(f"{split} images {x.shape} and labels {y.shape} in {str(directory)!r} do not match: "
                               "expected (n, rows, cols) images and (n,) labels")
        if x.dtype != np.uint8:
            raise DatasetError(f"{split} images in {str(directory)!r} are {x.dtype}; MNIST-format images are uint8 "
                               "(0 to 255)")
        if y.dtype.kind not in "iu" or len(y) and (y.min() < 0 or y.max() >= CLASSES):
            bad = int(np.flatnonzero((y < 0) | (y >= CLASSES))[0]) if y.dtype.kind in "iu" else 0
            raise DatasetError(f"{split} labels in {str(directory)!r} must be integers 0 to {CLASSES - 1} (label "
                               f"{bad} is {y[bad]!r})")
    return data


@dataclasses.dataclass(frozen=True)
class Split:
    """Sequences ``x`` (n, steps, 1) float32 in [0, 1] and integer labels ``y`` (n,)."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self):
        return len(self.y)


def permuted_sequential(images: np.ndarray, seed: int | None = 0) -> np.ndarray:
    """Images (n, rows, cols) as sequences of one pixel per step, (n, rows·cols, 1) float32 in [0, 1], the
    pixels in a fixed permutation drawn from ``seed`` (None: in order, i.e. sequential MNIST).

    Examples
    --------
    >>> x = permuted_sequential(np.arange(8, dtype=np.uint8).reshape(2, 2, 2), seed=None)
    >>> x.shape, round(float(x[1, 3, 0]) * 255)
    ((2, 4, 1), 7)
    """
    flat = np.asarray(images).reshape(len(images), -1)
    if seed is not None:
        flat = flat[:, np.random.default_rng(seed).permutation(flat.shape[1])]
    return (flat.astype(np.float32) / 255.0)[..., None]


def load_psmnist(directory, seed: int = 0, validation: int = 10000, limit: int | None = None) -> dict[str, Split]:
    """The permuted sequential task from MNIST-format files: the standard split of 50k train / 10k validation
    (the last ``validation`` training images) / 10k test, one fixed permutation from ``seed``.

    ``limit`` caps the number of training examples (the first ones) and of validation and test examples (for
    quick runs); the test set is otherwise complete.
    """
    data = load_mnist(directory)
    n_train = len(data["y_train"])
    if not 0 < validation < n_train:
        raise DatasetError(f"load_psmnist validation must be between 1 and {n_train - 1} (got {validation})")
    x_all = permuted_sequential(data["x_train"], seed)
    y_all = data["y_train"].astype(np.int64)
    cut = n_train - validation
    out = {"train": Split(x_all[:cut], y_all[:cut]), "validation": Split(x_all[cut:], y_all[cut:]),
           "test": Split(permuted_sequential(data["x_test"], seed), data["y_test"].astype(np.int64))}
    if limit is not None:
        out = {name: Split(s.x[:limit], s.y[:limit]) for name, s in out.items()}
    return out



def mackey_glass(steps: int, tau: float = 17.0, beta: float = 0.2, gamma: float = 0.1, n: float = 10.0,
                 dt: float = 0.1, sample_every: float = 1.0, discard: int = 500, seed: int | None = 0) -> np.ndarray:
    """The Mackey-Glass series ``dx/dt = β x(t−τ) / (1 + x(t−τ)^n) − γ x(t)``, sampled every ``sample_every``.

    Integrated with 4th-order Runge-Kutta at step ``dt`` (the delayed term read from the stored history, its
    half-step value as the mean of its neighbours), from a history of 1.2 plus small noise drawn from ``seed``
    (None: exactly 1.2); the first ``discard`` samples (the transient) are dropped. τ = 17 is the usual chaotic
    regime.

    Examples
    --------
    >>> x = mackey_glass(1000)
    >>> x.shape, 0.2 < float(x.min()) < float(x.max()) < 1.5
    ((1000,), True)
    """
    lag = int(round(tau / dt))
    every = int(round(sample_every / dt))
    if lag < 1 or every < 1 or abs(lag * dt - tau) > 1e-9 or abs(every * dt - sample_every) > 1e-9:
        raise ArgumentError(f"mackey_glass needs tau ({tau}) and sample_every ({sample_every}) to be whole multiples "
                         f"of dt ({dt})")
    total = (steps + discard) * every
    x = np.empty(lag + total + 1)
    rng = np.random.default_rng(seed) if seed is not None else None
    x[: lag + 1] = 1.2 + (0.0 if rng is None else 0.01 * rng.standard_normal(lag + 1))

    def f(now, delayed):
        return beta * delayed / (1.0 + delayed**n) - gamma * now

    for i in range(lag, lag + total):
        d0, d1 = x[i - lag], x[i - lag + 1]
        dh = 0.5 * (d0 + d1)
        k1 = f(x[i], d0)
        k2 = f(x[i] + 0.5 * dt * k1, dh)
        k3 = f(x[i] + 0.5 * dt * k2, dh)
        k4 = f(x[i] + dt * k3, d1)
        x[i + 1] = x[i] + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
    return x[lag + discard * every + every:: every][:steps].copy()
