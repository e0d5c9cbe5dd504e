"""P2 torch vs keras-lmu on the CPU: keras-lmu's own benchmark model, the matching modes side by side.

The model is the one keras-lmu times in its test suite (keras_lmu/tests/test_benchmarks.py): an LMU with
memory_d=32, order=256, theta=784, input_d=32, no hidden cell, return_sequences=False, then Dense(2); input
(batch 16, T 512, 32) uniform in [-1, 1], targets (16, 2), mse loss, RMSprop (Keras' defaults: lr 1e-3, rho 0.9,
eps 1e-7; torch.optim.RMSprop is given the same). Each figure is the median of several full training steps (forward
+ loss + backward + optimizer update) after warm-up steps (which include Keras' tf.function tracing): keras times
``model.train_on_batch(x, y)``, torch an explicit zero_grad / forward / mse / backward / step. The inference figures
time the forward pass only: keras ``model.predict_on_batch(x)`` (its compiled predict function), torch the model
under ``torch.no_grad()``.

Pairs compared (the two of a pair, and every pair of a group, timed in turns, so that a change in the machine's load
hits both alike):

    torch mode="fft"   vs  keras_lmu.LMUFeedforward(conv_mode="fft")
    torch mode="raw"   vs  keras_lmu.LMUFeedforward(conv_mode="raw")
    torch mode="step"  vs  keras.layers.RNN(keras_lmu.LMUCell(...))          (keras-lmu's "rnn" mode)
    torch mode="auto"  vs  the fastest of keras-lmu's three modes

Both frameworks start from the same weights: keras-lmu initializes its kernel (glorot uniform) and the Dense
layers, and the torch models get them through ``lmu.build(spec, backend="torch", weights={...})`` and the head's
``nn.Linear``; the forward outputs of each pair are compared once (max abs difference). Then the same with
return_sequences=True and a dense hidden cell of 64 units (keras: hidden_cell=keras.layers.Dense(64); torch:
hidden=lmu.Hidden("dense", 64)) and Dense(2) on every step, loss on the whole sequence: there the last-state
shortcut that torch's "auto" takes for the first model does not exist.

In that second model keras fft and raw get the Dense(64) *after* ``LMUFeedforward(hidden_cell=None)`` (the same
function, and the same weights): given as ``hidden_cell``, keras-lmu wraps it in ``keras.layers.TimeDistributed``,
which Keras 3 unrolls into T slices of the sequence, and the gradient of those slices needs time and memory ~ T^2
(6 to 24 GB at T 256 on the machine this was written on; at T 512 the process was killed at 23 GB).
``--keras-hidden-cell`` times that literal form, for T <= 128. keras rnn always gets it as LMUCell's hidden_cell.

Threads: by default both frameworks get every core (torch.set_num_threads, tensorflow's intra- and inter-op pools).
When other processes keep the cores busy, torch's OpenMP threads wait on each other at every operation, and its
many-small-ops paths (mode "step", and "last"'s backward) then slow down many-fold where tensorflow's do not: the load
average is printed; compare with ``--threads 1``.

Goal on a CPU: each torch mode at least 2x faster than the matching keras-lmu mode: torch ms / keras ms <= 0.5 (every
ratio in these benchmarks is torch time / peer time; ``benchmarks/p2.py`` prints the P2 rows of issue 16 in one run).

    /tmp/kvenv/bin/python benchmarks/vs_keras_lmu.py [--repeats 10] [--threads 2] [--json p2.json]
    /tmp/kvenv/bin/python benchmarks/vs_keras_lmu.py --quick      # T 128, fewer repeats: a smoke run
"""

import argparse
import gc
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before tensorflow is imported: no C++ info lines

import numpy as np  # noqa: E402

import _common  # noqa: E402

lmu, lmu_torch, torch = _common.setup()
from torch import nn  # noqa: E402

MEMORY_D, ORDER, THETA, INPUT_D, BATCH, T_FULL, OUT_D, HIDDEN_UNITS = 32, 256, 784.0, 32, 16, 512, 2, 64
TD_MAX_T = 128  # --keras-hidden-cell: longest T whose TimeDistributed gradient fits comfortably in memory
GOAL = 0.5  # torch ms / keras ms, for every pair (lower is better)
PAIRS = (("fft", "fft"), ("raw", "raw"), ("step", "rnn"), ("auto", "best"))  # (torch mode, keras mode)


class Headed(nn.Module):
    """The LMU then ``Linear(out, 2)``: on the last state, or on every step (a Linear acts on the last axis)."""

    def __init__(self, lmu_module, units):
        super().__init__()
        self.lmu = lmu_module
        self.head = nn.Linear(units, OUT_D)

    def forward(self, x):
        return self.head(self.lmu(x))


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def import_keras(threads: int):
    """Import tensorflow with its thread pools set (this must happen before its runtime starts), then keras and
    keras_lmu."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    import keras
    import keras_lmu

    tf.get_logger().setLevel("ERROR")  # retracing warnings: each model is traced once, on purpose
    if keras.backend.backend() != "tensorflow":
        raise SystemExit(f"keras-lmu needs the tensorflow backend of keras (KERAS_BACKEND is "
                         f"{keras.backend.backend()!r})")
    return tf, keras, keras_lmu


def alternate(steps: dict, repeats: int, warmup: int, budget: float | None = None, min_rounds: int = 3) -> dict:
    """Time the closures in ``steps`` in turns: ``warmup`` untimed calls each, then rounds of one timed call each
    (the order reversed every other round, so that none always follows the same one) until there are ``repeats``
    rounds, or ``min_rounds`` once the rounds have taken ``budget`` seconds. Returns per name the median, min and
    max ms and the number of timed calls."""
    for fn in steps.values():
        for _ in range(warmup):
            fn()
    names, times = list(steps), {n: [] for n in steps}
    start_all = time.perf_counter()
    rounds = 0
    while rounds < max(1, repeats):
        if budget is not None and rounds >= min_rounds and time.perf_counter() - start_all > budget:
            break
        for name in (names if rounds % 2 == 0 else names[::-1]):
            start = time.perf_counter()
            steps[name]()
            times[name].append((time.perf_counter() - start) * 1e3)
        rounds += 1
    return {n: {"ms": statistics.median(ms), "min_ms": min(ms), "max_ms": max(ms), "repeats": len(ms),
                "warmup": warmup} for n, ms in times.items()}


def build_keras(keras, keras_lmu, mode, steps, return_sequences, hidden, inner=True):
    """keras-lmu's benchmark model (or its variant with a dense hidden cell), compiled with RMSprop and mse.

    With ``hidden`` and ``inner`` the Dense(64) is keras-lmu's ``hidden_cell``; with ``inner=False`` (fft/raw only)
    the layer has ``hidden_cell=None`` and the same Dense(64) follows it (the same function: a Dense on a 3-d tensor
    acts on the last axis). Returns ``(model, body, cell, dense)``: ``body(x)`` the output before the head, ``cell``
    the object holding the LMU kernel, ``dense`` the hidden Dense (or None)."""
    dense = keras.layers.Dense(HIDDEN_UNITS) if hidden else None
    kw = dict(memory_d=MEMORY_D, order=ORDER, theta=THETA, hidden_cell=dense if inner else None)
    if mode == "rnn":
        cell = keras_lmu.LMUCell(**kw)
        layer = keras.layers.RNN(cell, return_sequences=return_sequences)
    else:
        layer = cell = keras_lmu.LMUFeedforward(conv_mode=mode, return_sequences=return_sequences, **kw)
    inputs = keras.layers.Input((steps, INPUT_D), batch_size=BATCH)
    out = layer(inputs)
    if hidden and not inner:
        out = dense(out)
    outputs = keras.layers.Dense(OUT_D)(out)
    model = keras.Model(inputs=inputs, outputs=outputs)
    model.compile(loss="mse", optimizer=keras.optimizers.RMSprop())

    def body(x):
        y = layer(x, training=False)
        return dense(y) if hidden and not inner else y

    return model, body, cell, dense


def keras_weights(model, cell, dense) -> dict:
    """The weights of a keras model as NumPy: the LMU kernel, the hidden Dense, the head."""
    head = model.layers[-1]
    w = {"kernel": cell.kernel.numpy(), "head/kernel": head.kernel.numpy(), "head/bias": head.bias.numpy()}
    if dense is not None:
        w["hidden/kernel"] = dense.kernel.numpy()
        w["hidden/bias"] = dense.bias.numpy()
    return w


def set_keras_weights(model, cell, dense, w) -> None:
    head = model.layers[-1]
    cell.kernel.assign(w["kernel"])
    head.kernel.assign(w["head/kernel"])
    head.bias.assign(w["head/bias"])
    if dense is not None:
        dense.kernel.assign(w["hidden/kernel"])
        dense.bias.assign(w["hidden/bias"])


def build_torch(spec, mode, w, units):
    lmu_weights = {k: v for k, v in w.items() if not k.startswith("head/")}
    model = Headed(lmu.build(spec, backend="torch", mode=mode, weights=lmu_weights), units)
    with torch.no_grad():
        model.head.weight.copy_(torch.from_numpy(w["head/kernel"].T.copy()))
        model.head.bias.copy_(torch.from_numpy(w["head/bias"]))
    return model


def torch_train_step(model, x, y):
    # Keras' RMSprop defaults, so that both optimizers do the same work (torch's own defaults differ)
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)
    return _common.step_closure(model, opt, nn.MSELoss(), x, y)


def torch_infer(model, x):
    def forward():
        with torch.no_grad():
            return model(x)

    return forward


def run_config(tf, keras, keras_lmu, name, title, steps, return_sequences, hidden, args):
    """Build, check and time one configuration; print its table; return its results for the JSON."""
    rng = np.random.default_rng(args.seed)
    x_np = rng.uniform(-1, 1, (BATCH, steps, INPUT_D)).astype(np.float32)
    y_shape = (BATCH, steps, OUT_D) if return_sequences else (BATCH, OUT_D)
    y_np = rng.uniform(-1, 1, y_shape).astype(np.float32)
    xk, yk = tf.constant(x_np), tf.constant(y_np)
    xt, yt = torch.from_numpy(x_np), torch.from_numpy(y_np)

    spec = lmu.LMUSpec(memory_d=MEMORY_D, order=ORDER, theta=THETA, input_d=INPUT_D,
                       hidden=lmu.Hidden("dense", HIDDEN_UNITS) if hidden else None,
                       return_sequences=return_sequences)
    units = HIDDEN_UNITS if hidden else MEMORY_D * ORDER

    print()
    print(title)
    sys.stdout.flush()
    keras.utils.set_random_seed(args.seed)
    kmodels, kcells, kbodies, w = {}, {}, {}, None
    for mode in ("fft", "raw", "rnn"):
        inner = mode == "rnn" or args.keras_hidden_cell
        model, body, cell, dense = build_keras(keras, keras_lmu, mode, steps, return_sequences, hidden, inner)
        if w is None:
            w = keras_weights(model, cell, dense)  # keras-lmu's own initialization, shared by every model
        else:
            set_keras_weights(model, cell, dense, w)
        kmodels[mode], kbodies[mode], kcells[mode] = model, body, cell
    if hidden:
        print("  keras hidden Dense(64): " + ("hidden_cell of LMUFeedforward (fft, raw) and LMUCell (rnn)"
                                               if args.keras_hidden_cell else
                                               "hidden_cell of LMUCell (rnn); after LMUFeedforward(hidden_cell=None) "
                                               "for fft and raw (see --keras-hidden-cell)"))
    tmodels = {mode: build_torch(spec, mode, w, units) for mode in ("fft", "raw", "step", "auto")}

    auto_runs = tmodels["auto"].lmu.pick_mode(steps, batch=BATCH)
    keras_ir = int(kcells["raw"].impulse_response.shape[0])
    torch_ir = min(tmodels["raw"].lmu.truncation(), steps)
    print(f"  torch mode 'auto' runs as {auto_runs!r} at T={steps}; raw convolution length: torch {torch_ir} "
          f"(tail < 1e-7 of peak), keras {keras_ir} (truncate_ir=1e-4)")
    print(f"  keras jit_compile: {kmodels['fft'].jit_compile} (Keras' 'auto' turns XLA off on a CPU-only machine)")

    # the same function in both frameworks: LMU layer outputs (before the head) on the same input, each also
    # against lmu's NumPy reference run in float64 with the same weights (which side a difference comes from)
    n = min(BATCH, 4)
    spec64 = lmu.LMUSpec.from_dict(dict(spec.to_dict(), dtype="float64"))
    ref = lmu.run(lmu.build(spec64, backend="numpy", weights={k: v.astype(np.float64) for k, v in w.items()
                                                              if not k.startswith("head/")}),
                  x_np[:n].astype(np.float64))
    checks = {}
    with torch.no_grad():
        for tmode, kmode in PAIRS[:3] + (("auto", "fft"),):
            t_out = tmodels[tmode].lmu(xt[:n]).double().numpy()
            k_out = np.asarray(kbodies[kmode](xk[:n]), dtype=np.float64)
            checks[f"{tmode}/{kmode}"] = {"torch_keras": float(np.max(np.abs(t_out - k_out))),
                                          "torch_ref64": float(np.max(np.abs(t_out - ref))),
                                          "keras_ref64": float(np.max(np.abs(k_out - ref)))}
    print(f"  forward check on {n} sequences, LMU output before the head (values up to {np.max(np.abs(ref)):.2g}), "
          "same weights and input; max abs difference torch-keras [torch-ref64, keras-ref64]:")
    print("    " + ", ".join(f"{k} {v['torch_keras']:.1e} [{v['torch_ref64']:.1e}, {v['keras_ref64']:.1e}]"
                            for k, v in checks.items()))
    sys.stdout.flush()

    results = {}
    for phase in ("train", "infer"):
        if phase == "train":
            t_fn = {m: torch_train_step(tmodels[m], xt, yt) for m in tmodels}
            k_fn = {m: (lambda mdl=kmodels[m]: mdl.train_on_batch(xk, yk)) for m in kmodels}
            for m in tmodels.values():
                m.train()
        else:
            for m in tmodels.values():
                m.eval()
            t_fn = {m: torch_infer(tmodels[m], xt) for m in tmodels}
            k_fn = {m: (lambda mdl=kmodels[m]: mdl.predict_on_batch(xk)) for m in kmodels}
        fast = {"torch fft": t_fn["fft"], "keras fft": k_fn["fft"], "torch raw": t_fn["raw"],
                "keras raw": k_fn["raw"], "torch auto": t_fn["auto"]}
        r = alternate(fast, args.repeats, args.warmup, args.budget)
        print(f"  [{phase}] measured: " + ", ".join(f"{k} {_common.fmt_ms(v)}" for k, v in r.items())
              + f" ms (load {_load()})", flush=True)
        slow = alternate({"torch step": t_fn["step"], "keras rnn": k_fn["rnn"]}, args.slow_repeats,
                         args.slow_warmup)
        print(f"  [{phase}] measured: " + ", ".join(f"{k} {_common.fmt_ms(v)}" for k, v in slow.items())
              + f" ms (load {_load()})", flush=True)
        r["load_after"] = os.getloadavg()[0]
        r.update(slow)
        best = min(("fft", "raw", "rnn"), key=lambda m: r[f"keras {m}"]["ms"])
        r["keras best"] = dict(r[f"keras {best}"], mode=best)
        results[phase] = r

    # the table
    label = {"fft": "fft  vs fft", "raw": "raw  vs raw", "step": "step vs rnn"}
    what = {"train": "training step (forward + mse + backward + RMSprop update)",
            "infer": "inference (forward only; keras predict_on_batch, torch no_grad)"}
    ratios = {}
    print()
    print(f"  {'ms, median':<38}{'torch':>10}{'keras':>10}{'torch/keras':>13}   goal <= {GOAL:g}")
    for phase in ("train", "infer"):
        r = results[phase]
        print(f"  {what[phase]}")
        for tmode, kmode in PAIRS:
            tr, kr = r[f"torch {tmode}"], r[f"keras {kmode}"]
            ratio = _common.ratio(tr, kr)
            ratios[f"{phase} {tmode}/{kmode}"] = ratio
            lab = label.get(tmode) or f"auto ({auto_runs}) vs keras best ({kr['mode']})"
            n = f"n={tr['repeats']}" if tr["repeats"] == kr["repeats"] else f"n={tr['repeats']}/{kr['repeats']}"
            print(f"    {lab:<36}{_common.fmt_ms(tr):>10}{_common.fmt_ms(kr):>10}"
                  f"{_common.fmt_ratio(ratio):>13}   {_verdict(ratio)}   {n}")
    sys.stdout.flush()
    del kmodels, kbodies, kcells, tmodels, t_fn, k_fn, fast
    keras.backend.clear_session()
    gc.collect()
    return {"name": name, "title": title, "T": steps, "return_sequences": return_sequences,
            "hidden": f"dense {HIDDEN_UNITS}" if hidden else None, "auto_runs_as": auto_runs,
            "raw_length": {"torch": torch_ir, "keras": keras_ir}, "forward_check": checks, "results": results,
            "ratios_torch_over_keras": ratios}


def _load() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def _verdict(r) -> str:
    return "-" if r is None else ("PASS" if r <= GOAL else "FAIL")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=None,
                   help="timed rounds for the fft/raw/auto group (default 10; 3 with --quick)")
    p.add_argument("--slow-repeats", type=int, default=None,
                   help="timed rounds for torch step vs keras rnn, seconds a step (default 3; 1 with --quick)")
    p.add_argument("--warmup", type=int, default=1,
                   help="untimed calls of each before timing (default 1: keras traces its tf.function on the first)")
    p.add_argument("--budget", type=float, default=120.0,
                   help="seconds after which the fft/raw/auto group stops at 3 rounds or more (default 120)")
    p.add_argument("--slow-warmup", type=int, default=1, help="untimed calls for step/rnn (default 1)")
    p.add_argument("--quick", action="store_true", help="T 128 and fewer repeats: a smoke run of well under a "
                                                        "minute, not the benchmark's sizes")
    p.add_argument("--T", type=int, default=None, help=f"sequence length (default {T_FULL}; 128 with --quick)")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for both frameworks: torch.set_num_threads and tensorflow's intra- and inter-op "
                        "pools (default: every core this process may use, for both)")
    p.add_argument("--only", choices=("last", "seq"), default=None,
                   help="run only the keras-lmu benchmark model ('last') or the return_sequences one ('seq')")
    p.add_argument("--keras-hidden-cell", action="store_true",
                   help="model B: give keras fft/raw the Dense(64) as LMUFeedforward's hidden_cell (keras-lmu then "
                        "wraps it in keras.layers.TimeDistributed, which Keras 3 unrolls into T slices whose "
                        "gradient needs memory ~ T^2: several GB at T 256, more than 23 GB at T 512); refused for "
                        f"T > {TD_MAX_T}")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="FILE", default=None, help="also write the results to FILE")
    args = p.parse_args()
    args.repeats = args.repeats or (3 if args.quick else 10)
    args.slow_repeats = args.slow_repeats or (1 if args.quick else 3)
    steps = args.T or (128 if args.quick else T_FULL)
    if args.keras_hidden_cell and steps > TD_MAX_T and args.only != "last":
        p.error(f"--keras-hidden-cell needs T <= {TD_MAX_T} (memory ~ T^2; use --T {TD_MAX_T} or --only last)")
    n_cores = cores()
    threads = args.threads or n_cores

    torch.set_num_threads(threads)
    tf, keras, keras_lmu = import_keras(threads)

    import keras_lmu.version as klv

    env = {"tensorflow": tf.__version__, "keras": keras.__version__, "keras_lmu": klv.version,
           "torch": torch.__version__, "lmu": getattr(lmu, "__version__", "?"), "numpy": np.__version__,
           "python": platform.python_version(), "cpu": cpu_name(), "cores": n_cores,
           "threads": {"torch": torch.get_num_threads(),
                       "tf_intra": tf.config.threading.get_intra_op_parallelism_threads(),
                       "tf_inter": tf.config.threading.get_inter_op_parallelism_threads()}}
    print("P2 torch vs keras-lmu on the CPU: keras-lmu's benchmark model, matching modes side by side")
    print(f"tensorflow {env['tensorflow']}, keras {env['keras']}, keras-lmu {env['keras_lmu']}, torch {env['torch']}, "
          f"lmu {env['lmu']}, numpy {env['numpy']}, python {env['python']}")
    print(f"CPU: {env['cpu']}, {n_cores} core(s) usable; threads: torch {env['threads']['torch']}, tensorflow "
          f"intra-op {env['threads']['tf_intra']} / inter-op {env['threads']['tf_inter']}"
          + ("" if args.threads else f" (default: all {n_cores} cores for both frameworks)"))
    print(f"sizes: memory_d {MEMORY_D}, order {ORDER}, theta {THETA:g}, input {INPUT_D}, batch {BATCH}, T {steps}"
          + ("   [--quick: not the benchmark's T 512]" if steps != T_FULL else ""))
    print(f"timing: medians; torch fft/raw/auto and keras fft/raw in turns, {args.repeats} rounds (or >= 3 once "
          f"{args.budget:g} s are spent) after {args.warmup} warm-up call(s) each; torch step and keras rnn in turns, "
          f"{args.slow_repeats} round(s) after {args.slow_warmup} warm-up (warm-up includes keras' tf.function "
          "tracing)")
    print(f"load average at start: {_load()} (1 min; above 0 means other processes share the {n_cores} cores)")
    sys.stdout.flush()

    configs = []
    if args.only in (None, "last"):
        configs.append(run_config(
            tf, keras, keras_lmu, "last", "A. keras-lmu's benchmark: return_sequences=False, hidden_cell=None, "
            f"Dense({OUT_D}) on the last state", steps, False, False, args))
    if args.only in (None, "seq"):
        configs.append(run_config(
            tf, keras, keras_lmu, "seq", f"B. return_sequences=True, dense hidden of {HIDDEN_UNITS}, "
            f"Dense({OUT_D}) on every step, mse on the whole sequence", steps, True, True, args))

    print()
    print(f"load average at the end: {_load()}")
    verdicts = [(c["name"], k, v) for c in configs for k, v in c["ratios_torch_over_keras"].items()]
    failed = [f"{name} {k} {_common.fmt_ratio(v)}" for name, k, v in verdicts if v is not None and v > GOAL]
    print(f"goal: every torch mode's time <= {GOAL:g} x the matching keras-lmu mode's: "
          + ("PASS (all pairs)" if not failed else f"FAIL for {', '.join(failed)}"))

    _common.write_json(args.json, {"benchmark": "vs_keras_lmu", "env": env, "quick": args.quick,
                                   "sizes": {"memory_d": MEMORY_D, "order": ORDER, "theta": THETA,
                                             "input_d": INPUT_D, "batch": BATCH, "T": steps},
                                   "repeats": args.repeats, "slow_repeats": args.slow_repeats, "goal": GOAL,
                                   "configs": configs})


if __name__ == "__main__":
    main()
