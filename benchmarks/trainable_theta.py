"""Cost of a trainable θ: training-step time of a feedforward LMU with fixed vs trainable θ, per parallel mode.

The model: LMU memory_d=1, order=256, theta=min(784, T), input_d=1, a "dense" hidden cell of 212 units (default
activation), return_sequences=False, then Linear(212, 10) on the last step; batch 100, cross-entropy, Adam (with
trainable_theta=True the ``theta`` parameter is in the optimizer and must move). For each T in (784, 4096, 16384)
and each mode ("fft", "raw", "last", "auto") the table gives the median ms of a full training step (forward + loss +
backward + Adam step, CUDA synchronized before each clock reading) with fixed θ and with trainable θ, and the ratio
trainable/fixed. A cell that runs out of memory reads "OOM".

Goals on a GPU: trainable/fixed <= 2x at T=784 and <= 1.3x at T=16384.

    PYTHONPATH=.:plugins python3 benchmarks/trainable_theta.py [--device cuda] [--json p3.json]
    python benchmarks/trainable_theta.py --device cpu --small      # T in (196, 784), order 64, batch 16
"""

import _common

lmu, lmu_torch, torch = _common.setup()

MODES = ("fft", "raw", "last", "auto")
GOALS = {784: 2.0, 16384: 1.3}  # T -> largest trainable/fixed ratio


def main():
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--T", type=int, nargs="+", default=None, help="sequence lengths (default 784 4096 16384; "
                                                                   "196 784 with --small)")
    p.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    p.add_argument("--batch", type=int, default=None, help="default 100 (16 with --small)")
    p.add_argument("--order", type=int, default=None, help="default 256 (64 with --small)")
    p.add_argument("--theta", type=float, default=None, help="initial θ (default min(784, T))")
    p.add_argument("--units", type=int, default=212)
    p.add_argument("--long-repeats", type=int, default=3, help="timed steps at T > 4096 (default 3)")
    args = p.parse_args()
    device = _common.device_of(args.device, args.threads, args.small)
    small = args.small
    Ts = args.T or ([196, 784] if small else [784, 4096, 16384])
    batch = args.batch or (16 if small else 100)
    order = args.order or (64 if small else 256)
    units = args.units
    repeats = args.repeats or (7 if small else 5)

    def theta_for(T):
        return float(args.theta) if args.theta is not None else float(min(784, T))

    def repeats_for(T):
        return min(repeats, args.long_repeats) if T > 4096 else repeats

    env = _common.environment(device)
    sizes = [f"sizes: batch {batch}, T {', '.join(map(str, Ts))}, order {order}, theta "
             + (f"{args.theta:g}" if args.theta is not None else "min(784, T)")
             + f", dense hidden {units} (default activation), return_sequences=False, head Linear({units}, 10)"
             + ("  [--small: reduced sizes for a CPU run]" if small else ""),
             f"timing: median of >= {repeats} train steps ({', '.join(f'T={T}: {repeats_for(T)}' for T in Ts)}; "
             f"cheap steps more, until {args.min_time:g} s) after {args.warmup} warm-up, fixed and trainable in turns; "
             "a step = forward + cross-entropy + backward + Adam (θ in the optimizer when trainable)"]
    _common.print_header("P3 trainable θ: training step with fixed vs trainable θ", env, sizes)

    rows = []
    payload = {"benchmark": "trainable_theta", "env": env, "small": small, "complete": False,
               "sizes": {"batch": batch, "T": Ts, "order": order, "theta": args.theta or "min(784, T)",
                         "units": units},
               "goals": {str(k): v for k, v in GOALS.items()}, "rows": rows}
    has_peak = device.type == "cuda"
    head = f"{'T':>6}  {'mode':<12}{'fixed ms':>10}{'train ms':>10}{'ratio':>9}{'goal':>7}  {'θ moved':>10}"
    if has_peak:
        head += f"{'GiB fix':>9}{'GiB tr':>8}"
    print()
    print(head, flush=True)
    for T in Ts:
        theta = theta_for(T)
        torch.manual_seed(args.seed)
        x = torch.randn(batch, T, 1, device=device)
        y = torch.randint(0, 10, (batch,), device=device)
        for mode in args.modes:
            row = {"T": T, "mode": mode, "theta": theta, "batch": batch, "order": order}
            models, steps, theta0 = {}, {}, None
            for key, trainable in (("fixed", False), ("trainable", True)):
                spec = lmu.LMUSpec(memory_d=1, order=order, theta=theta, input_d=1,
                                   hidden=lmu.Hidden("dense", units), return_sequences=False,
                                   trainable_theta=trainable)
                torch.manual_seed(args.seed)
                model = _common.classifier(lmu.build(spec, backend="torch", mode=mode, device=device), units).to(device)
                row["runs_as"] = model.lmu.pick_mode(T, batch=batch)
                params = list(model.parameters())
                if trainable:
                    assert model.lmu.theta is not None and any(q is model.lmu.theta for q in params), \
                        "trainable θ is not among the parameters given to the optimizer"
                    theta0 = float(model.lmu.theta.detach())
                models[key] = model
                steps[key] = _common.train_step(model, params, x, y)
            # fixed and trainable in turns, so that the ratio sees the same machine
            row.update(_common.measure(steps, device, repeats_for(T), args.warmup, args.min_time))
            row["theta_moved"] = float(models["trainable"].lmu.theta.detach()) - theta0
            del models, steps, model
            _common.release(device)
            row["ratio"] = _common.ratio(row["trainable"], row["fixed"])
            goal = GOALS.get(T)
            row["goal"] = goal
            row["pass"] = None if goal is None or row["ratio"] is None else row["ratio"] <= goal
            rows.append(row)
            label = mode if mode != "auto" else f"auto={row.get('runs_as', '?')}"
            verdict = "" if row["pass"] is None else ("ok" if row["pass"] else "FAIL")
            moved = row.get("theta_moved")
            line = (f"{T:>6}  {label:<12}{_common.fmt_ms(row['fixed']):>10}{_common.fmt_ms(row['trainable']):>10}"
                    f"{_common.fmt_ratio(row['ratio']):>9}{verdict:>7}  "
                    f"{('-' if moved is None else f'{moved:+.2e}'):>10}")
            if has_peak:
                line += "".join(f"{r['peak_gib']:>9.2f}" if "peak_gib" in r else f"{'-':>9}"
                                for r in (row["fixed"], row["trainable"]))
            print(line, flush=True)
            _common.write_json(args.json, payload, quiet=True)  # partial results survive a time limit

    print()
    payload["complete"] = True
    goal_text = ", ".join(f"<= {g:g}x at T={t}" for t, g in GOALS.items())
    checked = [r for r in rows if r["pass"] is not None]
    failed = [f"T={r['T']} {r['mode']} ({_common.fmt_ratio(r['ratio'])})" for r in checked if not r["pass"]]
    note = "" if device.type == "cuda" else "  (the goals are for a GPU)"
    if checked:
        print(f"goals trainable/fixed {goal_text}: {len(checked) - len(failed)}/{len(checked)} cells pass"
              + (f"; over: {', '.join(failed)}" if failed else "") + note)
    else:
        print(f"goals trainable/fixed {goal_text}: no cell at those T{note}")
    print("θ moved: θ after minus θ before the warm-up and timed steps with trainable θ "
          "(nonzero: θ gets a gradient and is in the optimizer)")

    _common.write_json(args.json, payload)


if __name__ == "__main__":
    main()
