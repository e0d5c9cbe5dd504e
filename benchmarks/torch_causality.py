"""Causality, its cost, and export of the torch backend, side by side in one run (issue 14's figures).

1. Causality: the largest change of the outputs before the last step, relative to the largest output, when only
   the last input step becomes 1e6, per mode and dtype, for the whole-sequence FFT that ``fft`` was before
   ("fft (before)", reproduced here) and for every mode now. psMNIST's LMU (order 256, θ 784, T 784, rnn 212,
   every step output), batch 4.
2. Speed: one psMNIST training step (batch 100, T 784, Linear(212, 10) head, Adam), per mode, against the
   whole-sequence FFT, timed in turns (``_common.measure``).
3. Export: mode × {jit.trace, torch.export, ONNX (onnxruntime), torch.compile(fullgraph)}: ✓ with the largest
   difference from the eager module at a sequence length other than the captured one, or ✗ with the error.

    python benchmarks/torch_causality.py [--device cpu] [--repeats 3] [--skip-speed] [--json out.json]
"""

import pathlib
import tempfile
import time
import warnings

import _common

lmu, lmu_torch, torch = _common.setup()
from lmu_torch import compute, forward  # noqa: E402

MODES = ("step", "fft", "raw", "last", "auto")


def whole_sequence_fft(model, u, mode, steps):
    """The memory as ``fft`` computed it before: one zero-padded rfft of the whole sequence (not causal in
    float32: its round-off scales with the largest input anywhere)."""
    H = model.impulse(steps)
    n = compute.fft_length(2 * steps - 1)
    U = torch.fft.rfft(u, n=n, dim=1)
    M = torch.fft.irfft(U.unsqueeze(-1) * torch.fft.rfft(H, n=n, dim=0)[None, :, None, :], n=n, dim=1)[:, :steps]
    return M.reshape(u.shape[0], steps, -1)


class Before:
    """Within the block, ``fft`` runs the whole-sequence FFT."""

    def __enter__(self):
        self.saved = forward.parallel_memory
        forward.parallel_memory = lambda model, u, mode, steps: (
            whole_sequence_fft(model, u, mode, steps) if mode == "fft" else self.saved(model, u, mode, steps))

    def __exit__(self, *exc):
        forward.parallel_memory = self.saved


def psmnist_spec(return_sequences=True, dense=False):
    hidden = lmu.Hidden("dense", 212, "relu") if dense else lmu.Hidden("rnn", 212)
    return lmu.LMUSpec(memory_d=1, order=256, theta=784, input_d=1, hidden=hidden, input_to_hidden=True,
                       return_sequences=return_sequences)


def causality(device):
    rows = {}
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4, 784, 1, generator=gen)
    for label, mode, before in [("fft (before)", "fft", True)] + [(m, m, False) for m in MODES]:
        spec = psmnist_spec(return_sequences=mode != "last", dense=mode == "last")
        base = lmu.build(spec, backend="torch", weights=lmu.init_weights(spec, seed=0), mode=mode, device=device)
        for dtype in ("float32", "float16", "bfloat16"):
            model = base.to(getattr(torch, dtype))
            xd = x.to(device=device, dtype=getattr(torch, dtype))
            future = xd.clone()
            future[:, -1] = 1e6 if dtype != "float16" else 6e4
            with torch.no_grad(), (Before() if before else _Null()):
                if mode == "last":  # one output: end the sequences one step early instead
                    lengths = torch.full((4,), 783)
                    a, b = model(xd, lengths=lengths), model(future, lengths=lengths)
                else:
                    a, b = model(xd)[:, :-1], model(future)[:, :-1]
            change = float((a.double() - b.double()).abs().max() / a.double().abs().max())
            rows.setdefault(label, {})[dtype] = change
    print("\n1. causality: max |change of earlier outputs| / max |output| under a 1e6 last step "
          "(6e4 in float16)")
    print(f"{'mode':<14}" + "".join(f"{d:>12}" for d in ("float32", "float16", "bfloat16")))
    for label, by in rows.items():
        print(f"{label:<14}" + "".join(f"{by[d]:>12.3g}" for d in by))
    return rows


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def speed(device, repeats, warmup):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(100, 784, 1, generator=gen).to(device)
    y = torch.randint(0, 10, (100,), generator=gen).to(device)
    spec = psmnist_spec(return_sequences=False)
    weights = lmu.init_weights(spec, seed=0)
    steps = {}
    for label, mode in (("fft (before)", "fft"), ("fft", "fft"), ("raw", "raw"), ("auto", "auto")):
        net = _common.classifier(lmu.build(spec, backend="torch", weights=weights, mode=mode, device=device),
                                 212).to(device)
        step = _common.train_step(net, net.parameters(), x, y)
        if label == "fft (before)":
            steps[label] = (lambda s: lambda: _run_before(s))(step)
        else:
            steps[label] = step
    results = _common.measure(steps, device, repeats=repeats, warmup=warmup)
    base = results["fft (before)"]["ms"]
    print(f"\n2. psMNIST training step (batch 100, T 784, order 256, rnn 212), median of {repeats}+ steps")
    print(f"{'mode':<14}{'ms':>10}{'× fft (before)':>16}")
    for label, r in results.items():
        print(f"{label:<14}{r['ms']:>10.0f}{r['ms'] / base:>16.2f}")
    return results


def _run_before(step):
    with Before():
        return step()


def export_table(device):
    import importlib.util

    spec_of = {m: lmu.LMUSpec(memory_d=2, order=12, theta=15.0, input_d=3, input_to_hidden=True,
                              hidden=lmu.Hidden("dense", 6, "relu") if m == "last" else lmu.Hidden("rnn", 6))
               for m in MODES}
    path = f"{_common.ROOT}/tests/backends/test_torch_export.py"
    module_spec = importlib.util.spec_from_file_location("export_checks", path)
    checks = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(checks)  # the tests' own capture function: the table shows what they test
    table = {}
    gen = torch.Generator().manual_seed(2)
    for mode in MODES:
        model = lmu.build(spec_of[mode], backend="torch", weights=lmu.init_weights(spec_of[mode], seed=0),
                          mode=mode).eval()
        x, other = torch.randn(2, 20, 3, generator=gen), torch.randn(5, 47, 3, generator=gen)
        for exporter in checks.EXPORTERS:
            start = time.perf_counter()
            try:
                with tempfile.TemporaryDirectory() as tmp:
                    run = checks._capture(model, exporter, x, pathlib.Path(tmp))
                    with torch.no_grad():
                        err = float((run(other).double() - model(other).double()).abs().max())
                table[(mode, exporter)] = ("✓", err, time.perf_counter() - start)
            except Exception as exc:  # noqa: BLE001 — the table reports it
                table[(mode, exporter)] = ("✗", str(exc).splitlines()[0][:60], time.perf_counter() - start)
    print("\n3. export: ✓ max |exported − eager| at batch 5, T 47 (captured at batch 2, T 20), capture seconds")
    print(f"{'mode':<8}" + "".join(f"{e:>26}" for e in checks.EXPORTERS))
    for mode in MODES:
        cells = []
        for e in checks.EXPORTERS:
            mark, value, secs = table[(mode, e)]
            cells.append(f"{mark} {value:.1e} ({secs:.0f} s)" if mark == "✓" else f"✗ {value}")
        print(f"{mode:<8}" + "".join(f"{c:>26}" for c in cells))
    return {f"{m}/{e}": list(v) for (m, e), v in table.items()}


def main():
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--skip-speed", action="store_true")
    p.add_argument("--skip-export", action="store_true")
    args = p.parse_args()
    device = _common.device_of(args.device, args.threads)
    env = _common.environment(device)
    _common.print_header("torch backend: causality, its cost, export", env, [])
    warnings.filterwarnings("ignore")
    out = {"environment": env, "causality": causality(device)}
    if not args.skip_speed:
        out["speed"] = speed(device, args.repeats or 3, args.warmup)
    if not args.skip_export:
        out["export"] = export_table(device)
    if args.json:
        _common.write_json(args.json, out)


if __name__ == "__main__":
    main()
