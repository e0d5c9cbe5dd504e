"""``auto``'s choice: a pure function of the device type and the shapes, from the committed measurements of
``lmu_torch.modes.CPU_TABLE`` on a CPU (``benchmarks/auto_modes.py``), and the raw/fft rule elsewhere."""

import pytest

torch = pytest.importorskip("torch")

import lmu  # noqa: E402
from lmu_torch import modes  # noqa: E402

_spec = modes.table_spec  # the spec benchmarks/auto_modes.py measures for a row


def test_the_table_covers_every_kind_with_measured_modes():
    assert {row[0] for row in modes.CPU_TABLE} == set(modes.KINDS)
    for row in modes.CPU_TABLE:
        kind, md, order, steps, kernel, batch, units, fastest = row
        assert fastest in ("step", "raw", "fft"), row
        assert 1 <= kernel <= steps and min(md, order, batch, units) >= 1, row
        assert (units == 1) == (kind == "none"), row


@pytest.mark.parametrize("row", modes.CPU_TABLE, ids=lambda r: "-".join(map(str, r[:7])))
def test_a_measured_shape_runs_in_the_mode_measured_fastest_there(row):
    """The module asks the table with its own device, the batch, its units and its raw kernel length."""
    kind, md, order, steps, kernel, batch, units, fastest = row
    theta = steps if kernel == steps else steps // 8
    model = lmu.build(_spec(kind, md, order, theta, max(units, 1)), backend="torch")
    assert model.raw_length(steps) == kernel  # the table's kernel is what this θ gives
    assert model.pick_mode(steps, batch=batch) == fastest


def test_other_devices_keep_raw_up_to_the_kernel_limit_then_fft():
    spec = _spec("rnn", 1, 256, 784, 212)
    assert modes.pick("cpu", spec, 784, 784, 100) == "step"  # psMNIST's LMU, measured there
    assert modes.pick("cuda", spec, 784, 784, 100) == "raw"
    assert modes.pick("cuda", spec, 20_000, modes.RAW_MAX_KERNEL + 1, 100) == "fft"
    assert modes.pick("mps", spec, 784, 784) == "raw"


def test_a_raw_choice_beyond_the_kernel_limit_runs_fft(monkeypatch):
    raw_rows = [r for r in modes.CPU_TABLE if r[7] == "raw"]
    assert raw_rows, "the table has a shape where raw is fastest"
    kind, md, order, steps, kernel, batch, units, _ = raw_rows[0]
    spec = _spec(kind, md, order, steps, max(units, 1))
    assert modes.pick("cpu", spec, steps, kernel, batch) == "raw"
    monkeypatch.setattr(modes, "RAW_MAX_KERNEL", kernel - 1)
    assert modes.pick("cpu", spec, steps, kernel, batch) == "fft"


def test_the_choice_is_pure_and_needs_no_data():
    """The same shapes give the same mode, whatever the input holds, and the forward runs that mode."""
    spec = _spec("rnn", 1, 64, 256)
    model = lmu.build(spec, backend="torch")
    picked = model.pick_mode(256, batch=16)
    assert all(model.pick_mode(256, batch=16) == picked for _ in range(3))
    ran = []
    from lmu_torch import forward

    original_step, original_parallel = forward.forward_step, forward.forward_parallel
    try:
        forward.forward_step = lambda *a, **k: ran.append("step") or original_step(*a, **k)
        forward.forward_parallel = lambda m, x, st, mode, *a, **k: ran.append(mode) or original_parallel(
            m, x, st, mode, *a, **k)
        for x in (torch.randn(16, 256, 4), torch.full((16, 256, 4), float("nan"))):
            model(x)
    finally:
        forward.forward_step, forward.forward_parallel = original_step, original_parallel
    assert ran == [picked, picked]


def test_batch_none_is_the_tables_batch():
    spec = _spec("none", 16, 256, 1024)
    assert modes.pick("cpu", spec, 1024, 1024) == modes.pick("cpu", spec, 1024, 1024, modes.TABLE_BATCH)


def test_an_unknown_kind_is_refused_by_name():
    with pytest.raises(lmu.ArgumentError, match="kind must be 'none', 'dense' or 'rnn'"):
        modes.nearest("lstm", 1, 64, 256, 256, 16, 64)
