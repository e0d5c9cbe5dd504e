"""Causality of the torch module in every mode: an output at step t does not change, beyond float32 round-off of
the inputs up to t (1e-5 · max(1, max|x[≤t]|)), when the inputs after t change, however large they are.

A whole-sequence FFT fails this (its round-off scales with the largest value anywhere in the sequence, 1.8e-2 under
a 1e6 last step before the blocked FFT of ``lmu_torch.compute.memory_fft``), so each check can fail. The same
holds for padded batches: what lies past a sequence's ``lengths`` is its future.
"""

import pytest

torch = pytest.importorskip("torch")

import lmu  # noqa: E402
import lmu.testing as kit  # noqa: E402

HAS_CUDA = torch.cuda.is_available()
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not HAS_CUDA, reason="CUDA is not available here"))]
MODES = ("auto", "step", "fft", "raw", "last")
DTYPES = ("float32", "float16", "bfloat16")
HUGE = {"float32": 1e30, "float16": 6e4, "bfloat16": 1e30}  # the largest the dtype holds, roughly


def _model(mode, steps, dtype, device):
    hidden = lmu.Hidden("dense", 8, "relu") if mode == "last" else lmu.Hidden("rnn", 8)
    spec = lmu.LMUSpec(memory_d=1, order=32, theta=max(4.0, steps / 4), input_d=1, hidden=hidden,
                       return_sequences=mode != "last")
    model = lmu.build(spec, backend="torch", weights=kit.case_weights(spec), mode=mode, device=device)
    return model.to(getattr(torch, dtype)).eval()


def _bound(x, upto):
    """1e-5 · max(1, max|x[≤t]|) for every t < upto, per sequence: (batch, upto)."""
    running = x[..., 0].abs().double().cummax(dim=1).values[:, :upto]
    return 1e-5 * running.clamp_min(1.0)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("steps", [16, 784, 16384])
@pytest.mark.parametrize("mode", MODES)
def test_future_inputs_do_not_change_past_outputs(mode, steps, dtype, device):
    model = _model(mode, steps, dtype, device)
    gen = torch.Generator().manual_seed(steps)
    x = torch.randn(2, steps, 1, generator=gen).to(device=device, dtype=getattr(torch, dtype))
    cut = steps // 2
    future = x.clone()
    future[:, cut:] = HUGE[dtype]  # every input after the cut, huge
    with torch.no_grad():
        if mode == "last":  # only the last step is output: end the sequences at the cut with lengths
            lengths = torch.tensor([cut, cut])
            a, b = model(x, lengths=lengths), model(future, lengths=lengths)
            change = (a.double() - b.double()).abs().max(dim=1).values
            assert (change <= _bound(x.cpu(), cut)[:, -1].to(change.device)).all(), change
            return
        a, b = model(x)[:, :cut], model(future)[:, :cut]
    change = (a.double() - b.double()).abs().amax(dim=2).cpu()
    bound = _bound(x.cpu(), cut)
    worst = float((change / bound).max())
    assert worst <= 1.0, f"mode {mode}: an input after step {cut} moved an earlier output by {worst:.3g}× the bound"
    assert torch.isfinite(a).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", MODES)
def test_padding_past_lengths_does_not_change_a_sequence(mode, dtype):
    steps = 784
    model = _model(mode, steps, dtype, "cpu")
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(3, steps, 1, generator=gen).to(getattr(torch, dtype))
    lengths = torch.tensor([steps, 300, 17])
    garbage = x.clone()
    for row, length in enumerate(lengths.tolist()):
        garbage[row, length:] = HUGE[dtype] * (-1) ** row
        x[row, length:] = 0
    with torch.no_grad():
        clean, padded = model(x, lengths=lengths), model(garbage, lengths=lengths)
    bound = 1e-5 * x[..., 0].abs().double().amax(dim=1).clamp_min(1.0)
    change = (clean.double() - padded.double()).abs().flatten(1).amax(dim=1)
    assert (change <= bound).all(), f"mode {mode}: padding moved outputs by {change.tolist()}"
