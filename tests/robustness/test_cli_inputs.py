"""The command line never prints a traceback for a user's mistake: exit 2 and one line for a usage error, never a
hang on a FIFO or /dev/zero, the error found before the work starts."""

import contextlib
import io
import os
import time

import pytest
from _generated import count, sizes
from hypothesis import given, settings
from hypothesis import strategies as st

from lmu.cli import main


def _run(argv):
    out, err = io.StringIO(), io.StringIO()
    started = time.monotonic()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exit_:  # argparse's usage errors
            code = exit_.code
    return code, out.getvalue(), err.getvalue(), time.monotonic() - started


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "fifo"
    os.mkfifo(path)
    return str(path)


BAD = {
    "spec of /dev/zero": (["spec", "/dev/zero"], "not a regular file"),
    "spec of a FIFO": (["spec", "FIFO"], "not a regular file"),
    "spec of a missing file": (["spec", "/nonexistent/spec.json"], "cannot read"),
    "spec of a directory": (["spec", "/tmp"], "not a regular file"),
    "spec of deeply nested JSON": (["spec", "DEEP"], "nested too deeply"),
    "spec without a file": (["spec"], "needs a spec FILE"),
    "train --batch-size 0": (["train", "psmnist", "--data", "/tmp", "--batch-size", "0"], "positive integer"),
    "train --batch-size -3": (["train", "psmnist", "--data", "/tmp", "--batch-size", "-3"], "positive integer"),
    "train --limit 0": (["train", "psmnist", "--data", "/tmp", "--limit", "0"], "positive integer"),
    "train --epochs 0": (["train", "psmnist", "--data", "/tmp", "--epochs", "0"], "positive integer"),
    "train --lr nan": (["train", "psmnist", "--data", "/tmp", "--lr", "nan"], "finite number > 0"),
    "train --device bogus": (["train", "psmnist", "--data", "/tmp", "--device", "bogus", "--out", "OUT"],
                             "device must be a device torch has here"),
    "train --device cuda (no GPU)": (["train", "psmnist", "--data", "/tmp", "--device", "cuda", "--out", "OUT"],
                                     "device"),
    "train --out unwritable": (["train", "psmnist", "--data", "/tmp", "--out", "/proc/nope/run"], "cannot be created"),
    "train --data missing": (["train", "psmnist", "--data", "/nonexistent", "--out", "OUT"], "does not exist"),
    "plot with an unknown extension": (["plot", "basis", "-o", "OUT/figure.xyz"], "not an image format"),
    "plot --order 100000": (["plot", "basis", "--order", "100000", "-o", "OUT/b.png"], "from 1 to 64"),
    "demo --plot with an unknown extension": (["demo", "--plot", "OUT/demo.xyz"], "not an image format"),
    "check --backend ''": (["check", "--backend", ""], "must name a backend"),
    "check --backend nosuch": (["check", "--backend", "nosuch"], "unknown backend 'nosuch'"),
}


@pytest.mark.parametrize("what", BAD)
def test_a_usage_error_is_one_line_and_exit_2(tmp_path, fifo, what):
    if "device" in what:
        pytest.importorskip("torch")
    if "plot" in what:
        pytest.importorskip("matplotlib")
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 30000 + "]" * 30000)
    argv = [a.replace("FIFO", fifo).replace("DEEP", str(deep)).replace("OUT", str(tmp_path)) for a in BAD[what][0]]
    code, out, err, seconds = _run(argv)
    assert code == 2, (code, out, err)
    assert "Traceback" not in err + out and BAD[what][1] in err, err
    assert seconds < 10, f"{what} took {seconds:.1f} s to refuse"
    if "demo" in what:
        assert "NRMSE" not in out  # refused before the tables were computed


@sizes(ci=200, slow=5000)
def test_any_arguments_exit_0_or_2_without_a_traceback(tmp_path, examples):
    words = ["backends", "--json", "spec", "--schema", "-o", str(tmp_path / "out.json"), "plot", "basis", "--order",
             "check", "--backend", "--quick", "numpy", "nosuch", "", "-1", "0", "3", "1e9", "nan", "/dev/null",
             "--version", "-h", "train", "psmnist", "--epochs", "--data", "--no-progress", "--seed", "x"]

    @settings(max_examples=examples)
    @given(argv=st.lists(st.sampled_from(words), min_size=1, max_size=5))
    def check(argv):
        count("cli:argv")
        if argv[0] in ("check", "train", "demo") or "--quick" in argv:
            return  # those run real work when valid: covered one by one above
        code, out, err, _ = _run(argv)
        assert code in (0, 1, 2), (argv, code)
        assert "Traceback" not in out + err, (argv, err)

    check()
