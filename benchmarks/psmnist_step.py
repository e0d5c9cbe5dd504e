"""psMNIST training step: the keras-lmu psMNIST model in torch, LMU mode "auto" vs "step" vs an LSTM.

The model (keras-lmu's psMNIST example): LMU memory_d=1, order=256, theta=784, input_d=1, an "rnn" hidden cell of
212 units, input_to_hidden=True, return_sequences=False, then Linear(212, 10); 101,771 parameters. Input: random
pixels (batch 100, T 784, 1), random labels, cross-entropy, Adam. Each figure is the median of several full training
steps (forward + loss + backward + Adam step) after warm-up steps, CUDA synchronized before each clock reading.
The baseline is torch.nn.LSTM(1, 128, batch_first=True) + Linear(128, 10) on the same data.

Goal on a GPU: auto >= 80x faster than step, and auto no slower than the LSTM.

    PYTHONPATH=.:plugins python3 benchmarks/psmnist_step.py [--device cuda] [--repeats 10] [--json p1.json]
    python benchmarks/psmnist_step.py --device cpu --small        # batch 16, T 196, order 64: about a minute
"""

import _common

lmu, lmu_torch, torch = _common.setup()
from torch import nn  # noqa: E402

KERAS_PARAMS = 101_771  # keras-lmu's psMNIST model at the full sizes


class LSTMClassifier(nn.Module):
    def __init__(self, units=128, classes=10):
        super().__init__()
        self.lstm = nn.LSTM(1, units, batch_first=True)
        self.head = nn.Linear(units, classes)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


def main():
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=None, help="default 100 (16 with --small)")
    p.add_argument("--T", type=int, default=None, help="sequence length (default 784; 196 with --small)")
    p.add_argument("--order", type=int, default=None, help="default 256 (64 with --small)")
    p.add_argument("--units", type=int, default=212)
    p.add_argument("--lstm-units", type=int, default=128)
    p.add_argument("--step-repeats", type=int, default=3, help="timed steps for the slow step mode (default 3)")
    args = p.parse_args()
    device = _common.device_of(args.device, args.threads, args.small)
    small = args.small
    batch = args.batch or (16 if small else 100)
    T = args.T or (196 if small else 784)
    order = args.order or (64 if small else 256)
    theta = float(T)  # psMNIST: the window is the whole sequence
    units = args.units
    repeats = args.repeats or (5 if small else 10)
    step_repeats = min(args.step_repeats, repeats)
    step_warmup = min(args.warmup, 1)

    env = _common.environment(device)
    sizes = [f"sizes: batch {batch}, T {T}, order {order}, theta {theta:g}, rnn hidden {units}, LSTM {args.lstm_units}"
             + ("  [--small: reduced sizes for a CPU run, not the psMNIST sizes]" if small else ""),
             f"timing: median of >= {repeats} train steps (more until {args.min_time:g} s) after {args.warmup} "
             f"warm-up, auto and LSTM in turns; step mode: {step_repeats} after {step_warmup}; "
             "a step = forward + cross-entropy + backward + Adam"]
    _common.print_header("P1 psMNIST training step: LMU auto vs step vs LSTM", env, sizes)

    torch.manual_seed(args.seed)
    x = torch.rand(batch, T, 1, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    spec = lmu.LMUSpec(memory_d=1, order=order, theta=theta, input_d=1, hidden=lmu.Hidden("rnn", units),
                       input_to_hidden=True, return_sequences=False)

    models = {}
    for mode in ("auto", "step"):
        torch.manual_seed(args.seed)  # the same head for both
        models[mode] = _common.classifier(lmu.build(spec, backend="torch", mode=mode, device=device), units).to(device)
    torch.manual_seed(args.seed)
    models["lstm"] = LSTMClassifier(args.lstm_units).to(device)

    # parameter counts: the canonical (Keras) layout vs what torch trains (the same: one bias, bias_hh a buffer)
    canonical = sum(a.size for a in lmu.get_weights(models["auto"].lmu).values()) + \
        sum(q.numel() for q in models["auto"].head.parameters())
    torch_count = _common.param_count(models["auto"])
    expect = f"expected {KERAS_PARAMS:,}: {'OK' if canonical == KERAS_PARAMS else 'MISMATCH'}" if not small else \
        f"{KERAS_PARAMS:,} at the full sizes"
    print(f"LMU model parameters: {canonical:,} canonical (keras-lmu layout; {expect}); {torch_count:,} torch "
          f"parameters")
    print(f"LSTM model parameters: {_common.param_count(models['lstm']):,}")
    auto_picks = models["auto"].lmu.pick_mode(T, batch=batch)
    print(f"mode 'auto' runs as {auto_picks!r} at T={T}")

    with torch.no_grad():  # both modes compute the same function: a sanity check, not part of the timing
        n = min(batch, 8)
        diff = (models["auto"](x[:n]) - models["step"](x[:n])).abs().max().item()
    print(f"max |logits(auto) - logits(step)| on {n} sequences: {diff:.2e}")

    steps = {name: _common.train_step(m, m.parameters(), x, y) for name, m in models.items()}
    # auto and the LSTM side by side (in turns); the slow step mode on its own, with fewer steps
    results = _common.measure({"auto": steps["auto"], "lstm": steps["lstm"]}, device, repeats, args.warmup,
                              args.min_time)
    print(f"  measured auto: {_common.fmt_ms(results['auto'])} ms, lstm: {_common.fmt_ms(results['lstm'])} ms",
          flush=True)
    results.update(_common.measure({"step": steps["step"]}, device, step_repeats, step_warmup))
    print(f"  measured step: {_common.fmt_ms(results['step'])} ms", flush=True)
    del steps

    label = {"auto": f"LMU mode='auto' (runs {auto_picks})", "step": "LMU mode='step'",
             "lstm": f"torch.nn.LSTM(1, {args.lstm_units}) + Linear"}
    has_peak = device.type == "cuda"
    print()
    print(f"{'model':<34}{'ms/step':>10}{'min':>9}{'max':>9}{'n':>6}" + (f"{'peak GiB':>10}" if has_peak else ""))
    for name in ("auto", "step", "lstm"):
        r = results[name]
        row = f"{label[name]:<34}{_common.fmt_ms(r):>10}"
        if "ms" in r:
            row += f"{r['min_ms']:>9.1f}{r['max_ms']:>9.1f}{r['repeats']:>6}" + \
                (f"{r['peak_gib']:>10.2f}" if has_peak else "")
        print(row)
    step_over_auto = _common.ratio(results["step"], results["auto"])
    auto_over_lstm = _common.ratio(results["auto"], results["lstm"])
    note = "" if device.type == "cuda" else "   (the goals are for a GPU)"
    print()
    print(f"step/auto = {_common.fmt_ratio(step_over_auto)}   goal >= 80x: "
          f"{_verdict(step_over_auto, lambda r: r >= 80)}{note}")
    print(f"auto/LSTM = {_common.fmt_ratio(auto_over_lstm)}   goal <= 1x: "
          f"{_verdict(auto_over_lstm, lambda r: r <= 1.0)}{note}")

    _common.write_json(args.json, {
        "benchmark": "psmnist_step", "env": env, "small": small,
        "sizes": {"batch": batch, "T": T, "order": order, "theta": theta, "units": units,
                  "lstm_units": args.lstm_units},
        "params": {"canonical": canonical, "torch": torch_count, "lstm": _common.param_count(models["lstm"])},
        "auto_runs_as": auto_picks, "max_abs_diff_auto_step": diff, "results": results,
        "ratios": {"step/auto": step_over_auto, "auto/lstm": auto_over_lstm},
    })


def _verdict(value, ok):
    return "-" if value is None else ("PASS" if ok(value) else "FAIL")


if __name__ == "__main__":
    main()
