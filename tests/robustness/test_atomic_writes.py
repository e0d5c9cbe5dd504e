"""Nothing is lost: every writer of the project replaces its file atomically, or leaves the old one byte for byte.

Faults are injected where every writer goes through (``lmu.files``): a write that raises after a generated number of
bytes, a disk that is full at fsync, and a process killed (SIGKILL) in the middle of a write. After each, the old
file's hash is unchanged and no temporary file is left in its directory.
"""

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from _generated import count, sizes
from hypothesis import given, settings
from hypothesis import strategies as st

import lmu
import lmu.files
from lmu.datasets import write_idx

SPEC = lmu.LMUSpec(memory_d=2, order=8, theta=20, input_d=3, hidden=lmu.Hidden("lstm", 4))


def _weights(tmp, version):
    lmu.save_weights(tmp / "w.npz", SPEC, lmu.init_weights(SPEC, seed=version))


def _idx(tmp, version):
    labels = np.random.default_rng(version).integers(0, 10, size=5000, dtype=np.uint8)  # ~2.5 kB gzipped
    write_idx(tmp / "labels-idx1-ubyte.gz", labels, compress=True)


def _text(tmp, version):
    lmu.files.write_text(tmp / "notes.json", json.dumps({"version": version, "pad": "x" * 5000}))


def _spec_cli(tmp, version):
    import contextlib
    import io

    from lmu.cli import main

    source = tmp / "source.json"
    source.write_text(SPEC.replace(order=8 + version).to_json())
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["spec", str(source), "-o", str(tmp / "spec.json")])
    if code != 0:  # what the command line printed instead of a traceback
        raise lmu.FileError(err.getvalue())


def _history(tmp, version):
    from lmu.train import _write_history

    _write_history(tmp / "history.csv", [dict(epoch=e, loss=1.0 / (e + version)) for e in range(1, 200)])


def _plot(tmp, version):
    pytest.importorskip("matplotlib")
    from lmu.plots import plot_basis

    plot_basis(3 + version % 5, tmp / "basis.png")


WRITERS = {"save_weights": (_weights, "w.npz"), "write_idx": (_idx, "labels-idx1-ubyte.gz"),
           "write_text": (_text, "notes.json"), "lmu spec -o": (_spec_cli, "spec.json"),
           "lmu train history": (_history, "history.csv"), "plot_basis": (_plot, "basis.png")}


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _leftovers(directory, keep):
    return sorted(p.name for p in directory.iterdir() if p.name not in keep)


class _Failing:
    """A file object that raises after ``limit`` bytes: a writer failing half-way."""

    def __init__(self, raw, limit):
        self._raw, self._limit, self._written = raw, limit, 0

    def write(self, data):
        if self._written + len(data) > self._limit:
            self._raw.write(bytes(data)[: max(0, self._limit - self._written)])
            raise RuntimeError("injected failure half-way through the write")
        self._written += len(data)
        return self._raw.write(data)

    def __getattr__(self, name):
        return getattr(self._raw, name)


@pytest.mark.parametrize("writer", WRITERS)
@sizes(ci=12, slow=400)
def test_a_writer_failing_half_way_leaves_the_old_file(tmp_path, monkeypatch, writer, examples):
    write, name = WRITERS[writer]
    write(tmp_path, 0)
    target = tmp_path / name
    keep = {p.name for p in tmp_path.iterdir()}
    real_fdopen = lmu.files._fdopen

    @settings(max_examples=examples)
    @given(limit=st.integers(min_value=0, max_value=20000), version=st.integers(min_value=1, max_value=1000))
    def check(limit, version):
        count(f"atomic:{writer}")
        before = _digest(target)
        monkeypatch.setattr(lmu.files, "_fdopen", lambda fd, mode: _Failing(real_fdopen(fd, mode), limit))
        try:
            write(tmp_path, version)
            failed = None
        except RuntimeError as err:  # the injected failure, propagated unchanged
            failed = err
        finally:
            monkeypatch.setattr(lmu.files, "_fdopen", real_fdopen)
        if failed is not None:
            assert "injected failure" in str(failed)
            assert _digest(target) == before, "the old file changed although the write failed"
        assert _leftovers(tmp_path, keep) == [], "a temporary file was left behind"

    check()


@pytest.mark.parametrize("writer", WRITERS)
def test_a_full_disk_at_fsync_leaves_the_old_file(tmp_path, monkeypatch, writer):
    write, name = WRITERS[writer]
    write(tmp_path, 0)
    target = tmp_path / name
    before, keep = _digest(target), {p.name for p in tmp_path.iterdir()}

    def full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(lmu.files.os, "fsync", full)  # (os.fsync: only the writers' commit calls it)
    with pytest.raises(lmu.FileError, match="No space left on device") as info:
        write(tmp_path, 1)
    assert isinstance(info.value, OSError) and str(target.name) in str(info.value)
    assert _digest(target) == before and _leftovers(tmp_path, keep) == []


KILLED = """
import os, sys, time, pathlib
import lmu, lmu.files
tmp, writer, marker = pathlib.Path(sys.argv[1]), sys.argv[2], pathlib.Path(sys.argv[3])
real = lmu.files._fdopen

class Slow:
    def __init__(self, raw):
        self.raw, self.n = raw, 0
    def write(self, data):
        self.n += len(data)
        out = self.raw.write(data)
        if self.n > 200:           # part of the new content is out: signal the parent, then never finish
            self.raw.flush()
            marker.write_text("started")
            time.sleep(600)
        return out
    def __getattr__(self, name):
        return getattr(self.raw, name)

lmu.files._fdopen = lambda fd, mode: Slow(real(fd, mode))
sys.path.insert(0, sys.argv[4])
import test_atomic_writes as t
t.WRITERS[writer][0](tmp, 1)
"""


@pytest.mark.parametrize("writer", ["save_weights", "write_idx", "write_text", "lmu train history"])
def test_a_process_killed_mid_write_leaves_the_old_file_and_nothing_else(tmp_path, writer):
    write, name = WRITERS[writer]
    write(tmp_path, 0)
    target = tmp_path / name
    before, keep = _digest(target), {p.name for p in tmp_path.iterdir()}
    marker = tmp_path.parent / f"{tmp_path.name}-marker"
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(KILLED), str(tmp_path), writer, str(marker),
                              os.path.dirname(__file__)], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert child.poll() is None, child.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "the child never started writing"
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert _digest(target) == before
    leftovers = _leftovers(tmp_path, keep)
    if lmu.files.strategy(str(tmp_path)) == "named":  # no O_TMPFILE here: the next write removes the leftover
        assert all(n.endswith(".lmu-tmp") for n in leftovers), leftovers
        write(tmp_path, 2)
        leftovers = _leftovers(tmp_path, keep)
    assert leftovers == [], "a temporary file was left behind"


def test_the_named_fallback_sweeps_what_a_killed_writer_left(tmp_path, monkeypatch):
    monkeypatch.setattr(lmu.files, "strategy", lambda directory=".": "named")
    target = tmp_path / "w.txt"
    lmu.files.write_text(target, "old")
    stale = tmp_path / ".w.txt.999999999.0123abcd.lmu-tmp"  # a pid no process has
    stale.write_text("half")
    running = tmp_path / f".w.txt.{os.getpid()}.89abcdef.lmu-tmp"  # a writer still running (this process)
    running.write_text("in progress")
    lmu.files.write_text(target, "new")
    assert target.read_text() == "new" and not stale.exists() and running.exists()
