"""lmu.datasets: IDX files written here (gzipped or not), Keras' mnist.npz, the psMNIST transform, clear errors."""

import gzip

import numpy as np
import pytest

from lmu import datasets
from lmu.datasets import DatasetError


def _mnist_dir(tmp_path, n_train=30, n_test=10, compress=True, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {"x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
              "y_train": rng.integers(0, 10, n_train, dtype=np.uint8),
              "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
              "y_test": rng.integers(0, 10, n_test, dtype=np.uint8)}
    for key, stem in datasets._FILES.items():
        datasets.write_idx(tmp_path / (stem + (".gz" if compress else "")), arrays[key], compress=compress)
    return arrays


@pytest.mark.parametrize("compress", [True, False])
def test_idx_files_round_trip(tmp_path, compress):
    arrays = _mnist_dir(tmp_path, compress=compress)
    got = datasets.load_mnist(tmp_path)
    for key in arrays:
        np.testing.assert_array_equal(got[key], arrays[key])


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_every_idx_type(tmp_path, dtype):
    a = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    datasets.write_idx(tmp_path / "a", a)
    b = datasets.read_idx(tmp_path / "a")
    assert b.dtype == np.dtype(dtype) and np.array_equal(a, b)


def test_keras_mnist_npz(tmp_path):
    rng = np.random.default_rng(1)
    arrays = {"x_train": rng.integers(0, 256, (12, 28, 28), dtype=np.uint8), "y_train": np.arange(12) % 10,
              "x_test": rng.integers(0, 256, (4, 28, 28), dtype=np.uint8), "y_test": np.arange(4)}
    np.savez(tmp_path / "mnist.npz", **arrays)
    got = datasets.load_mnist(tmp_path)
    np.testing.assert_array_equal(got["x_test"], arrays["x_test"])


def test_pickled_npz_is_refused(tmp_path):
    np.savez(tmp_path / "mnist.npz", x_train=np.array([{"a": 1}], dtype=object), y_train=np.zeros(1),
             x_test=np.zeros((1, 2, 2)), y_test=np.zeros(1))
    with pytest.raises(DatasetError, match="is not Keras' mnist.npz"):
        datasets.load_mnist(tmp_path)


def test_missing_directory_and_files(tmp_path):
    with pytest.raises(DatasetError, match="does not exist .*apt install dataset-fashion-mnist"):
        datasets.load_mnist(tmp_path / "nope")
    _mnist_dir(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetError, match=r"lacks t10k-labels-idx1-ubyte\[.gz\]"):
        datasets.load_mnist(tmp_path)


def test_truncated_and_corrupt_files(tmp_path):
    _mnist_dir(tmp_path, compress=False)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DatasetError, match="holds .* bytes but its header .* says .*truncated"):
        datasets.load_mnist(tmp_path)
    path.write_bytes(b"PK\x03\x04 not idx at all")
    with pytest.raises(DatasetError, match="is not an IDX file"):
        datasets.read_idx(path)
    gz = tmp_path / "broken.gz"
    gz.write_bytes(gzip.compress(b"\x00\x00\x08\x01" + b"\x00" * 100)[:-12])
    with pytest.raises(DatasetError, match="cannot be read .*truncated or corrupt gzip"):
        datasets.read_idx(gz)


def test_mismatched_images_and_labels(tmp_path):
    _mnist_dir(tmp_path)
    datasets.write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(7, np.uint8), compress=True)
    with pytest.raises(DatasetError, match="train images .* and labels .* do not match"):
        datasets.load_mnist(tmp_path)


def test_permuted_sequential_is_a_fixed_permutation():
    images = np.random.default_rng(0).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    a, b = datasets.permuted_sequential(images, seed=5), datasets.permuted_sequential(images, seed=5)
    assert a.shape == (3, 784, 1) and a.dtype == np.float32 and np.array_equal(a, b)
    assert not np.array_equal(a, datasets.permuted_sequential(images, seed=6))
    # the same pixels, moved: each sequence is a permutation of its image, the same permutation for all
    np.testing.assert_array_equal(np.sort(a[:, :, 0], axis=1), np.sort(images.reshape(3, -1) / 255.0, axis=1)
                                  .astype(np.float32))
    plain = datasets.permuted_sequential(images, seed=None)[:, :, 0]
    perm = np.random.default_rng(5).permutation(784)
    np.testing.assert_array_equal(a[:, :, 0], plain[:, perm])


def test_psmnist_split_and_limit(tmp_path):
    arrays = _mnist_dir(tmp_path, n_train=30, n_test=10)
    ps = datasets.load_psmnist(tmp_path, validation=8)
    assert (len(ps["train"]), len(ps["validation"]), len(ps["test"])) == (22, 8, 10)
    np.testing.assert_array_equal(ps["validation"].y, arrays["y_train"][22:])
    small = datasets.load_psmnist(tmp_path, validation=8, limit=5)
    assert (len(small["train"]), len(small["validation"]), len(small["test"])) == (5, 5, 5)
    with pytest.raises(DatasetError, match="validation must be between 1 and 29"):
        datasets.load_psmnist(tmp_path, validation=30)


def test_mackey_glass_obeys_its_delay_equation():
    x = datasets.mackey_glass(3000, seed=1)
    t = np.arange(20, 2999)
    slope = (x[t + 1] - x[t - 1]) / 2  # samples 1 time unit apart
    delayed = x[t - 17]
    rhs = 0.2 * delayed / (1 + delayed**10) - 0.1 * x[t]
    assert np.sqrt(np.mean((slope - rhs) ** 2)) < 0.1 * np.std(rhs)  # central differences of a smooth series
    assert 0.85 < x.mean() < 1.0 and 0.18 < x.std() < 0.28  # the chaotic regime's usual range
    assert not np.allclose(x, datasets.mackey_glass(3000, seed=2))  # seeds differ, and chaos separates them
    with pytest.raises(ValueError, match="whole multiples of dt"):
        datasets.mackey_glass(10, tau=17.05)
