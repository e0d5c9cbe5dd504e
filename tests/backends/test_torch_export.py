"""The torch module exported and compiled: every mode through ``torch.jit.trace``, ``torch.export``, ONNX
(checked in onnxruntime) and ``torch.compile(fullgraph=True)``, run at a sequence length other than the one it was
captured with and compared with the eager module (≤ 1e-5).

Each exporter is given the module exactly as a user would give it; the exported program must take another batch
size and another T (a program that pinned T would fail there), so each check can fail.
"""

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import lmu  # noqa: E402
import lmu.testing as kit  # noqa: E402

EXPORTERS = ("jit.trace", "torch.export", "onnx", "compile")
TOL = 1e-5


def _spec(mode, hidden="rnn"):
    """A psMNIST-shaped spec, small: rnn hidden on memory and input; ``last`` needs a dense (or no) hidden."""
    cell = lmu.Hidden("dense", 6, "relu") if mode == "last" else lmu.Hidden(hidden, 6)
    return lmu.LMUSpec(memory_d=2, order=12, theta=15.0, input_d=3, hidden=cell, input_to_hidden=True)


def _model(spec, mode):
    return lmu.build(spec, backend="torch", weights=kit.case_weights(spec), mode=mode).eval()


def _capture(model, exporter, x, tmp_path):
    """The model captured from ``x`` as a function of a tensor (dynamic batch and T)."""
    batch, steps = torch.export.Dim("batch", min=1, max=4096), torch.export.Dim("T", min=2, max=1 << 20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporters' own notices (TracerWarning, deprecations)
        if exporter == "jit.trace":
            traced = torch.jit.trace(model, (x,), check_trace=False)
            return lambda v: traced(v)
        if exporter == "torch.export":
            program = torch.export.export(model, (x,), dynamic_shapes=({0: batch, 1: steps},))
            return lambda v: program.module()(v)
        if exporter == "onnx":
            ort = pytest.importorskip("onnxruntime")
            path = tmp_path / "lmu.onnx"
            onnx_program = torch.onnx.export(model, (x,), dynamic_shapes=({0: batch, 1: steps},), dynamo=True,
                                             verbose=False)
            onnx_program.save(str(path))
            session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            shape = session.get_inputs()[0].shape
            assert not isinstance(shape[1], int), f"the ONNX model pinned T to {shape[1]}"
            name = session.get_inputs()[0].name
            return lambda v: torch.from_numpy(session.run(None, {name: v.numpy()})[0])
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True)
    return lambda v: compiled(v)


CASES = [(mode, exporter) for mode in ("step", "fft", "raw", "last", "auto") for exporter in EXPORTERS]


@pytest.mark.parametrize("mode,exporter", CASES, ids=[f"{m}-{e}" for m, e in CASES])
def test_every_mode_exports_and_runs_at_another_length(mode, exporter, tmp_path):
    spec = _spec(mode)
    model = _model(spec, mode)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 20, 3, generator=gen)
    run = _capture(model, exporter, x, tmp_path)
    for shape in ((2, 20, 3), (5, 47, 3)):  # the captured shape, then another batch and another T
        v = torch.randn(*shape, generator=gen)
        with torch.no_grad():
            expected = model(v)
            got = run(v)
        assert got.shape == expected.shape
        err = float((got.double() - expected.double()).abs().max())
        assert err <= TOL, f"{exporter} of mode {mode} differs by {err:.3g} at shape {shape}"


@pytest.mark.parametrize("exporter", ["torch.export", "onnx"])
def test_auto_exports_on_both_sides_of_its_switch(exporter, tmp_path, monkeypatch):
    """``auto`` picks raw below :data:`lmu_torch.modes.RAW_MAX_KERNEL` steps of kernel and fft above (on a CPU
    where the table says raw): one exported program answers like the eager module on both sides."""
    from lmu_torch import modes

    monkeypatch.setattr(modes, "RAW_MAX_KERNEL", 16)
    spec = lmu.LMUSpec(memory_d=1, order=8, theta=10.0, input_d=1, hidden=lmu.Hidden("rnn", 4),
                       return_sequences=True)
    model = _model(spec, "auto")
    gen = torch.Generator().manual_seed(1)
    run = _capture(model, exporter, torch.randn(2, 12, 1, generator=gen), tmp_path)
    picked = []
    for steps in (12, 60):
        v = torch.randn(3, steps, 1, generator=gen)
        picked.append(model.pick_mode(steps))
        with torch.no_grad():
            err = float((run(v).double() - model(v).double()).abs().max())
        assert err <= TOL, f"at T={steps} ({picked[-1]}) the export differs by {err:.3g}"
    assert picked == ["raw", "fft"]


def test_exported_program_propagates_nan_like_the_module():
    spec = _spec("raw")
    model = _model(spec, "raw")
    x = torch.randn(2, 20, 3)
    program = torch.export.export(model, (x,), dynamic_shapes=({0: torch.export.Dim("b", max=64),
                                                                1: torch.export.Dim("T", max=4096)},))
    v = torch.randn(2, 30, 3)
    v[1, 10, 0] = float("nan")
    out, expected = program.module()(v), model(v)
    assert torch.isnan(out[1]).all() and torch.isnan(expected[1]).all()
    np.testing.assert_allclose(out[0].detach().numpy(), expected[0].detach().numpy(), atol=TOL)


@pytest.mark.parametrize("exporter", ["jit.trace", "torch.export"])
def test_a_trainable_theta_exports_in_step_form(exporter, tmp_path):
    spec = lmu.LMUSpec(memory_d=1, order=8, theta=15.0, input_d=1, hidden=lmu.Hidden("rnn", 4),
                       trainable_theta=True)
    model = _model(spec, "auto")
    with torch.no_grad():
        model.theta.fill_(11.0)  # trained away from the spec's θ: the export must use the parameter
    gen = torch.Generator().manual_seed(2)
    run = _capture(model, exporter, torch.randn(2, 20, 1, generator=gen), tmp_path)
    v = torch.randn(3, 37, 1, generator=gen)
    with torch.no_grad():
        err = float((run(v).double() - model(v).double()).abs().max())
    assert err <= TOL
