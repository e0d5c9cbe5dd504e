"""The measurements behind ``auto`` on a CPU: one training step per mode (step, raw, fft) over a grid of shapes.

``lmu_torch.modes`` keeps the result as a committed table (``CPU_TABLE``) and ``auto`` picks, for a call, the mode
that was fastest at the nearest measured shape. This script prints the table to paste there, with the times behind
each choice. Grid: the hidden cell (none or a dense cell, every step out; a SimpleRNN, last step out), memory_d,
order, T and the kernel ``raw`` convolves with (θ = T, so the whole sequence, or θ = T/8); batch 16, input 4,
SimpleRNN/dense 64 units, Adam on the mean square of the output. Each shape's modes are timed in turns
(``_common.measure``, median of ``--repeats``).

    python benchmarks/auto_modes.py [--repeats 3] [--json auto_modes.json]
"""

import itertools
import json
import platform

import _common

lmu, lmu_torch, torch = _common.setup()

MODES = ("step", "raw", "fft")
KINDS = ("none", "dense", "rnn")


def spec_of(kind, md, order, steps, theta_div):
    hidden = {"none": None, "dense": lmu.Hidden("dense", 64, "relu"), "rnn": lmu.Hidden("rnn", 64)}[kind]
    return lmu.LMUSpec(input_d=4, memory_d=md, order=order, theta=float(steps // theta_div), hidden=hidden,
                       return_sequences=kind != "rnn")


def row(kind, md, order, steps, theta_div, repeats):
    spec = spec_of(kind, md, order, steps, theta_div)
    x = torch.randn(16, steps, 4, generator=torch.Generator().manual_seed(0))
    closures = {}
    for mode in MODES:
        model = lmu.build(spec, backend="torch", mode=mode)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)

        def step(model=model, opt=opt):
            opt.zero_grad(set_to_none=True)
            loss = model(x).square().mean()
            loss.backward()
            opt.step()
            return loss

        closures[mode] = step
    times = _common.measure(closures, torch.device("cpu"), repeats, 1)
    ms = {m: round(times[m]["ms"], 1) for m in MODES}
    return dict(kind=kind, memory_d=md, order=order, steps=steps, kernel=model.raw_length(steps), ms=ms,
                fastest=min(ms, key=ms.get))


def main():
    p = _common.parser(__doc__)
    args = p.parse_args()
    rows = []
    grid = itertools.product(KINDS, (1, 16), (64, 256), (256, 1024), (1, 8))
    for kind, md, order, steps, theta_div in grid:
        r = row(kind, md, order, steps, theta_div, args.repeats or 3)
        rows.append(r)
        print(f"{kind:6} md {md:3} order {order:4} T {steps:5} kernel {r['kernel']:5}  "
              + "  ".join(f"{m} {r['ms'][m]:8.1f}" for m in MODES) + f"  -> {r['fastest']}", flush=True)
    print(f"\n# {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch "
          f"{torch.__version__}")
    print("CPU_TABLE = (  # (kind, memory_d, order, T, kernel) -> fastest")
    for r in rows:
        print(f"    ({r['kind']!r}, {r['memory_d']}, {r['order']}, {r['steps']}, {r['kernel']}, {r['fastest']!r}),")
    print(")")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
