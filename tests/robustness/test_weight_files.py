"""Weights files from outside: whatever the bytes, ``lmu.load_weights`` returns the weights or raises one error of the
project's (naming the file), reads nothing past what the stored spec allows, and never unpickles."""

import io
import json
import struct
import tracemalloc
import zipfile

import numpy as np
import pytest
from _generated import count, sizes
from hypothesis import given, settings
from hypothesis import strategies as st

import lmu

SPEC = lmu.LMUSpec(memory_d=2, order=6, theta=20, input_d=3, hidden=lmu.Hidden("rnn", 4), trainable_theta=True)


@pytest.fixture(scope="module")
def valid_bytes(tmp_path_factory):
    path = tmp_path_factory.mktemp("valid") / "w.npz"
    lmu.save_weights(path, SPEC, lmu.init_weights(SPEC, seed=3))
    return path.read_bytes()


def _load(path):
    try:
        spec, weights = lmu.load_weights(path)
    except (lmu.WeightsFileError, lmu.SpecError) as err:
        assert str(path) in str(err), str(err)  # names the file
        return None
    assert spec == SPEC or isinstance(spec, lmu.LMUSpec)
    return weights


@sizes(ci=300, slow=10000)
def test_any_corruption_of_a_weights_file_is_one_lmu_error(tmp_path, valid_bytes, examples):
    path = tmp_path / "w.npz"

    @settings(max_examples=examples)
    @given(cut=st.integers(0, len(valid_bytes)), flips=st.lists(st.tuples(st.integers(0, len(valid_bytes) - 1),
                                                                           st.integers(0, 255)), max_size=6),
           tail=st.binary(max_size=64))
    def check(cut, flips, tail):
        count("weights:bytes")
        data = bytearray(valid_bytes)
        for position, value in flips:
            data[position] = value
        path.write_bytes(bytes(data[:cut]) + tail)
        _load(path)

    check()


def _archive(members, compression=zipfile.ZIP_STORED):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _npy(array=None, header=None):
    buffer = io.BytesIO()
    if header is None:
        np.lib.format.write_array(buffer, array, allow_pickle=False)
        return buffer.getvalue()
    text = repr(header).encode("latin1")
    text += b" " * (63 - (len(text) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text


def _spec_member(spec=SPEC):
    return _npy(np.array(spec.to_json()))


def _valid_members():
    members = {"__lmu_spec__.npy": _spec_member(), "__lmu_format__.npy": _npy(np.array(1))}
    for name, array in lmu.init_weights(SPEC).items():
        members[name + ".npy"] = _npy(np.asarray(array))
    return members


HOSTILE = {
    "a member claiming a shape of 10^18 numbers": lambda: _archive({**_valid_members(), "kernel.npy": _npy(header={
        "descr": "<f4", "fortran_order": False, "shape": (10**9, 10**9)})}),
    "a spec member claiming 10^12 characters": lambda: _archive({**_valid_members(), "__lmu_spec__.npy": _npy(
        header={"descr": "<U1000000000000", "fortran_order": False, "shape": ()})}),
    "a deflate bomb of 60 MB in a 48-byte member": lambda: _archive({**_valid_members(),
                                                                     "kernel.npy": b"\0" * 60_000_000},
                                                                    zipfile.ZIP_DEFLATED),
    "a deflate bomb whose headers claim 100 bytes": lambda: _lie(_archive({**_valid_members(),
                                                                          "kernel.npy": b"\0" * 60_000_000},
                                                                         zipfile.ZIP_DEFLATED), "kernel.npy", 100),
    "an LZMA member": lambda: _archive(_valid_members(), zipfile.ZIP_LZMA),
    "a pickled object member": lambda: _archive({**_valid_members(), "kernel.npy": b"\x93NUMPY\x01\x00" +
                                                 struct.pack("<H", 118) + b"{'descr': '|O', 'fortran_order': False,"
                                                 b" 'shape': (3, 2), }" + b" " * 69 + b"\n" + b"garbage"}),
    "a spec nested 30000 deep": lambda: _archive({**_valid_members(),
                                                  "__lmu_spec__.npy": _npy(np.array("[" * 30000 + "]" * 30000))}),
    "a spec with a 5000-digit order": lambda: _archive({**_valid_members(), "__lmu_spec__.npy": _npy(np.array(
        json.dumps({**SPEC.to_dict(), "order": 1}).replace('"order": 1', '"order": ' + "7" * 5000)))}),
    "a spec member of numbers": lambda: _archive({**_valid_members(), "__lmu_spec__.npy": _npy(np.arange(3))}),
    "200 members": lambda: _archive({**_valid_members(), **{f"x{i}.npy": _npy(np.zeros(1)) for i in range(200)}}),
}


@pytest.mark.parametrize("what", HOSTILE)
def test_hostile_archives_are_refused_before_anything_large_is_allocated(tmp_path, what):
    path = tmp_path / "w.npz"
    path.write_bytes(HOSTILE[what]())
    tracemalloc.start()
    try:
        with pytest.raises((lmu.WeightsFileError, lmu.SpecError)) as info:
            lmu.load_weights(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(path) in str(info.value)
    assert peak < 20_000_000, f"{peak / 1e6:.0f} MB allocated while refusing {what}"


def test_an_encrypted_member_is_refused(tmp_path, valid_bytes):
    data = bytearray(valid_bytes)
    offset = data.find(b"PK\x01\x02")  # the first central directory entry: set its "encrypted" flag
    data[offset + 8] |= 0x1
    path = tmp_path / "w.npz"
    path.write_bytes(bytes(data))
    with pytest.raises(lmu.WeightsFileError, match="encrypted"):
        lmu.load_weights(path)


def _lie(data: bytes, name: str, size: int) -> bytes:
    """The archive with ``name``'s uncompressed size set to ``size`` in its local and central headers."""
    data = bytearray(data)
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = 0
        while (at := data.find(signature, at)) >= 0:
            name_at = at + (30 if signature == b"PK\x03\x04" else 46)
            length = struct.unpack("<H", data[at + offset + (4 if signature == b"PK\x03\x04" else 4):][:2])[0]
            if data[name_at:name_at + len(name)] == name.encode() and length == len(name):
                data[at + offset:at + offset + 4] = struct.pack("<I", size)
            at += 4
    return bytes(data)


def test_a_member_of_the_wrong_shape_is_named(tmp_path):
    members = _valid_members()
    members["kernel.npy"] = members["hidden/kernel.npy"]
    path = tmp_path / "w.npz"
    path.write_bytes(_archive(members))
    with pytest.raises(lmu.SpecError, match=r"weight 'kernel' must have shape \(3, 2\)"):
        lmu.load_weights(path)
