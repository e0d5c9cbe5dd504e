"""``lmu.run`` from many threads at once gives what it gives from one and leaves the object as it found it; a bug
inside lmu propagates unchanged (nothing relabels it); memory for a last-step output does not grow with T."""

import threading
import tracemalloc

import numpy as np
import pytest

import lmu
from lmu import legendre

SPEC = lmu.LMUSpec(memory_d=2, order=12, theta=30, input_d=2, hidden=lmu.Hidden("lstm", 5), dropout=0.3)


def _hammer(model, inputs, threads=8, repeats=5):
    """Each input run by several threads at once, several times; every result must equal the sequential one."""
    expected = [lmu.run(model, x) for x in inputs]
    errors, barrier = [], threading.Barrier(threads)

    def work(k):
        barrier.wait()
        try:
            for r in range(repeats):
                i = (k + r) % len(inputs)
                np.testing.assert_array_equal(lmu.run(model, inputs[i]), expected[i])
        except BaseException as exc:  # noqa: BLE001 - collected and reported by the test
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    assert not errors, errors[:3]


def _inputs():
    rng = np.random.default_rng(0)
    return [rng.normal(size=(3, steps, 2)) for steps in (8, 40, 200, 5000)]  # step loop, fft, long, chunked


def test_the_numpy_reference_is_thread_safe():
    model = lmu.build(SPEC.replace(hidden=lmu.Hidden("dense", 5)), backend="numpy")
    _hammer(model, _inputs())


def test_set_weights_during_runs_never_mixes_two_sets_of_weights():
    spec = SPEC.replace(hidden=lmu.Hidden("dense", 5), return_sequences=True)
    model = lmu.build(spec, backend="numpy")
    x = np.random.default_rng(1).normal(size=(2, 60, 2))
    weights = [lmu.init_weights(spec, seed=s) for s in range(3)]
    allowed = [lmu.run(lmu.build(spec, weights=w), x) for w in weights]
    stop, seen, errors = threading.Event(), [], []

    def swap():
        k = 0
        while not stop.is_set():
            lmu.set_weights(model, weights[k % 3])
            k += 1

    def read():
        try:
            for _ in range(40):
                y = lmu.run(model, x)
                seen.append(any(np.array_equal(y, a) for a in allowed))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    swapper, readers = threading.Thread(target=swap), [threading.Thread(target=read) for _ in range(3)]
    swapper.start()
    for r in readers:
        r.start()
    for r in readers:
        r.join(120)
    stop.set()
    swapper.join()
    assert not errors and seen and all(seen)


def test_runs_of_a_torch_module_in_threads_leave_it_as_they_found_it():
    torch = pytest.importorskip("torch")
    model = lmu.build(SPEC, backend="torch", mode="step")
    model.train()  # a module in training mode: lmu.run must not switch it (and must not apply dropout)
    _hammer(model, _inputs()[:3], threads=4, repeats=3)
    assert model.training
    assert next(model.parameters()).dtype == torch.float32 and next(model.parameters()).device.type == "cpu"


def test_a_bug_inside_lmu_propagates_unchanged(monkeypatch):
    """No blanket except relabels an internal error: a ZeroDivisionError planted in the mathematics arrives as
    itself through lmu.build, lmu.run, save/load and the conformance kit's own error path."""
    def broken(*args, **kwargs):
        raise ZeroDivisionError("planted bug")

    monkeypatch.setattr(legendre, "discretize", broken)
    spec = lmu.LMUSpec(memory_d=1, order=4, theta=10, input_d=1)
    with pytest.raises(ZeroDivisionError, match="planted bug") as info:
        lmu.build(spec, backend="numpy")
    assert not isinstance(info.value, lmu.LMUError)
    monkeypatch.undo()
    model = lmu.build(spec, backend="numpy")
    monkeypatch.setattr(lmu.reference.scipy.fft, "rfft", broken)
    with pytest.raises(ZeroDivisionError, match="planted bug"):
        lmu.run(model, np.ones((1, 50, 1)))


def _peak(model, x):
    tracemalloc.start()
    try:
        y = lmu.run(model, x)
        return y, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_last_step_output_does_not_hold_the_whole_sequence():
    spec = lmu.LMUSpec(memory_d=1, order=128, theta=1000, input_d=1, hidden=lmu.Hidden("dense", 4))
    model = lmu.build(spec, backend="numpy")
    x = np.random.default_rng(0).normal(size=(1, 80_000, 1))
    short, peak_short = _peak(model, x[:, :20_000])
    long, peak_long = _peak(model, x)
    whole = x.shape[1] * spec.memory_size * 8  # what the (T, memory) tensor alone would take in float64
    assert peak_long < 1.3 * peak_short + x.nbytes, (peak_short, peak_long)  # 4× the steps, not 4× the memory
    assert peak_long < whole / 2, f"{peak_long / 1e6:.1f} MB for T=80000 (the whole memory: {whole / 1e6:.0f} MB)"
    step = lmu.run(lmu.build(spec, backend="numpy", mode="step"), x[:, :5000])
    assert np.allclose(lmu.run(model, x[:, :5000]), step, rtol=1e-6, atol=1e-8)  # chunks carry the state exactly
