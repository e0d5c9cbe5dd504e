"""The measurements behind ``auto`` on a CPU: one training step per mode (step, raw, fft) over a grid of shapes.

``lmu_torch.modes`` keeps the result as a committed table (``CPU_TABLE``) and ``auto`` picks, for a call, the mode
that was fastest at the nearest measured shape. This script prints the table to paste there, with the times behind
each choice. Grid: the hidden cell (none or a dense cell, every step out; a SimpleRNN, last step out), memory_d,
order, T and the kernel ``raw`` convolves with (θ = T, so the whole sequence, or θ = T/8) at batch 16, and
order 256 with θ = T at batch 100 (input 4, SimpleRNN/dense 64 units), and psMNIST's own LMU (input 1,
input_to_hidden, SimpleRNN 212) at batch 100 for T 256, 784, 1024; Adam on the mean square of the output. Each
shape's modes are timed in turns (``_common.measure``, median of ``--repeats``, default 3 at batch 16 and 2 above);
about 25 minutes on 2 cores.

    python benchmarks/auto_modes.py [--repeats 3] [--parts grid16,grid100,psmnist] [--json auto_modes.json]
"""

import itertools
import json
import platform

import _common

lmu, lmu_torch, torch = _common.setup()
from lmu_torch import modes  # noqa: E402

MODES = ("step", "raw", "fft")
PARTS = ("grid16", "grid100", "psmnist")


def shapes(part):
    """``(kind, memory_d, order, T, θ divisor, batch, units)`` of one part of the grid."""
    if part == "grid16":  # the whole grid at batch 16
        return [(k, md, o, t, d, 16, 64) for k, md, o, t, d in
                itertools.product(modes.KINDS, (1, 16), (64, 256), (256, 1024), (1, 8))]
    if part == "grid100":  # order 256, θ = T at batch 100
        return [(k, md, 256, t, 1, 100, 64) for k, md, t in itertools.product(modes.KINDS, (1, 16), (256, 1024))]
    return [("rnn", 1, 256, t, 1, 100, 212) for t in (256, 784, 1024)]  # psMNIST's LMU and cell, batch 100


def row(kind, md, order, steps, theta_div, batch, units, repeats):
    spec = modes.table_spec(kind, md, order, steps // theta_div, units)
    x = torch.randn(batch, steps, spec.input_d, generator=torch.Generator().manual_seed(0))
    closures = {}
    for mode in MODES:
        model = lmu.build(spec, backend="torch", mode=mode)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        closures[mode] = _common.step_closure(model, opt, lambda out, _: out.square().mean(), x, None)
    times = _common.measure(closures, torch.device("cpu"), repeats, 1)
    ms = {m: round(times[m]["ms"], 1) for m in MODES}
    return dict(kind=kind, memory_d=md, order=order, steps=steps, kernel=model.raw_length(steps), batch=batch,
                units=modes.kind_of(spec)[1], ms=ms, fastest=min(ms, key=ms.get))


def main():
    p = _common.parser(__doc__)
    p.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated parts of the grid ({', '.join(PARTS)})")
    args = p.parse_args()
    rows = []
    row("rnn", 1, 64, 64, 1, 16, 64, 1)  # discarded: the process's first training steps pay one-time costs
    for part in args.parts.split(","):
        for kind, md, order, steps, theta_div, batch, units in shapes(part):
            rows.append(r := row(kind, md, order, steps, theta_div, batch, units,
                                 args.repeats or (3 if batch <= 16 else 2)))
            print(f"{kind:6} md {md:3} order {order:4} T {steps:5} kernel {r['kernel']:5} batch {batch:4} units "
                  f"{r['units']:4}  " + "  ".join(f"{m} {r['ms'][m]:8.1f}" for m in MODES) + f"  -> {r['fastest']}",
                  flush=True)
    print(f"\n# {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch "
          f"{torch.__version__}")
    print("CPU_TABLE = (  # (kind, memory_d, order, T, kernel, batch, units, fastest)")
    for r in rows:
        print(f"    ({r['kind']!r}, {r['memory_d']}, {r['order']}, {r['steps']}, {r['kernel']}, {r['batch']}, "
              f"{r['units']}, {r['fastest']!r}),")
    print(")")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
