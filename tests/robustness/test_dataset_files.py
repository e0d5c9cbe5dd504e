"""Dataset files from outside: an array or one DatasetError naming the file, bounded whatever the header claims,
labels only 0..9, images only uint8."""

import gzip
import os
import tracemalloc

import numpy as np
import pytest
from _generated import count, sizes
from hypothesis import given, settings
from hypothesis import strategies as st

import lmu
from lmu.datasets import DatasetError, load_mnist, read_idx, write_idx


@pytest.fixture(scope="module")
def idx_bytes(tmp_path_factory):
    path = tmp_path_factory.mktemp("idx") / "images-idx3-ubyte"
    write_idx(path, np.random.default_rng(0).integers(0, 256, (4, 5, 5), dtype=np.uint8))
    return path.read_bytes()


@sizes(ci=300, slow=10000)
def test_any_corruption_of_an_idx_file_is_one_dataset_error(tmp_path, idx_bytes, examples):
    @settings(max_examples=examples)
    @given(cut=st.integers(0, len(idx_bytes)), flips=st.lists(st.tuples(st.integers(0, 16), st.integers(0, 255)),
                                                               max_size=4),
           tail=st.binary(max_size=16), gz=st.booleans())
    def check(cut, flips, tail, gz):
        count("dataset:idx")
        data = bytearray(idx_bytes)
        for position, value in flips:
            data[position] = value
        data = bytes(data[:cut]) + tail
        path = tmp_path / ("f.gz" if gz else "f")
        path.write_bytes(gzip.compress(data) if gz else data)
        try:
            read_idx(path, max_bytes=1 << 20)
        except DatasetError as err:
            assert str(path) in str(err)

    check()


def test_a_header_claiming_terabytes_is_refused_before_reading(tmp_path):
    path = tmp_path / "huge-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 0x08, 3]) + np.array([1 << 20, 1 << 20, 1 << 10], ">u4").tobytes() + b"\0" * 10)
    with pytest.raises(DatasetError, match=r"declares shape \(1048576, 1048576, 1024\).*more than the"):
        read_idx(path)


def test_a_gzip_bomb_is_not_decompressed_past_what_the_header_declares(tmp_path):
    path = tmp_path / "labels-idx1-ubyte.gz"
    header = bytes([0, 0, 0x08, 1]) + np.array([10], ">u4").tobytes()
    with gzip.open(path, "wb", compresslevel=9) as f:
        f.write(header + b"\0" * 10)
        for _ in range(50):
            f.write(b"\0" * 2_000_000)  # 100 MB of zeros after the ten labels the header declares
    assert os.path.getsize(path) < 200_000
    tracemalloc.start()
    try:
        with pytest.raises(DatasetError, match="longer than|holds"):
            read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000, f"{peak / 1e6:.1f} MB decompressed for a 10-byte array"


def _mnist_dir(tmp_path, labels=None, images_dtype=np.uint8):
    rng = np.random.default_rng(0)
    for split, n in (("train", 20), ("t10k", 5)):
        write_idx(tmp_path / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)).astype(images_dtype))
        y = rng.integers(0, 10, n, dtype=np.uint8) if labels is None or split == "t10k" else labels
        write_idx(tmp_path / f"{split}-labels-idx1-ubyte", y)
    return tmp_path


@pytest.mark.parametrize("labels, words", [(np.full(20, 12, np.uint8), r"labels .* must be integers 0 to 9 \(label 0 is 12\)"),
                                           (np.full(20, -1, np.int8), r"must be integers 0 to 9")])
def test_labels_outside_0_to_9_are_refused(tmp_path, labels, words):
    with pytest.raises(DatasetError, match=words):
        load_mnist(_mnist_dir(tmp_path, labels=labels))


def test_images_that_are_not_uint8_are_refused(tmp_path):
    with pytest.raises(DatasetError, match="images .* are float32; MNIST-format images are uint8"):
        load_mnist(_mnist_dir(tmp_path, images_dtype=np.float32))


def test_a_pickled_or_hostile_mnist_npz_is_refused(tmp_path):
    np.savez(tmp_path / "mnist.npz", x_train=np.array([{"a": 1}], dtype=object), y_train=np.zeros(1),
             x_test=np.zeros((1, 2, 2)), y_test=np.zeros(1))
    with pytest.raises(lmu.DatasetError, match="pickled object array"):
        load_mnist(tmp_path)
    (tmp_path / "mnist.npz").write_bytes(b"PK\x03\x04" + b"\xff" * 100)
    with pytest.raises(lmu.DatasetError, match="corrupt or truncated"):
        load_mnist(tmp_path)
