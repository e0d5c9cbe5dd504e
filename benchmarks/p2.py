"""P2 on the CPU in one run: the torch backend against keras-lmu, training steps side by side (torch / peer).

Every ratio is torch time / peer time: lower is better, below 1 torch is faster. The rows (the goals of issue 16):

    P2a  keras-lmu's own benchmark model (keras_lmu/tests/test_benchmarks.py): memory_d 32, order 256, theta 784,
         input 32, T 512, batch 16, no hidden cell, Dense(2) on the last step, RMSprop, mse.
         torch fft / keras-lmu LMUFeedforward(conv_mode="fft"); raw / raw; step / keras RNN(LMUCell).  Goal <= 0.5.
         torch fft and raw run as ``last`` here (only the last step is read; the script prints what each ran as).
    P2a-seq  the same with return_sequences and Dense(2) on every step, torch fft / fft and raw / raw: the whole
         memory sequence computed by both, no goal (information: the convolutions themselves side by side).
    P2b  whole-sequence output through a dense hidden, Dense per step, mse, torch auto / the faster of keras-lmu's
         fft and raw (keras: LMUFeedforward(hidden_cell=None) then the same Dense; its hidden_cell=Dense would
         be wrapped in TimeDistributed, see vs_keras_lmu.py):
         (1) memory_d 1, order 256, theta 784, input 1, Dense 212 relu, T 784, batch 32, Dense(10);
         (2) memory_d 32, order 256, theta 784, input 32, Dense 64, T 512, batch 16, Dense(2).     Goal <= 0.5.
    P2c  the psMNIST model (memory_d 1, order 256, theta 784, input_to_hidden, SimpleRNN 212, Dense(10) on the
         last step), T 784, batch 100, Adam, cross-entropy: torch auto / keras_lmu.LMU as its docs build it.
                                                                                                   Goal <= 0.5.

Both sides start from the same weights (keras-lmu's initialization, moved into torch); the forward outputs are
compared once against lmu's float64 NumPy reference. A training step is forward + loss + backward + optimizer update
(keras ``train_on_batch``, torch zero_grad/forward/loss/backward/step); the two of a row are timed in turns, the
median of ``--repeats`` after a warm-up (which includes Keras' tracing). Threads: every core for both.

Roofline: for each torch row the script also measures, with torch's profiler, the bytes its training step
allocates (each allocated byte is written once and read at least once), and the machine's copy bandwidth (a
256 MiB ``copy_``); ``bytes / bandwidth`` is the least time that traffic can take. The column "at copy speed"
is that time over the measured step time: near 1 the step is bound by memory traffic. Beside it, the compute
side: the GFLOP of the step's matrix products (the profiler's count; it counts no conv1d, no FFT and no
elementwise work, so the raw rows show ~0) over the rate of one large float32 matrix product (2048², best of 6),
"GEMM floor": near the step time, the step is bound by arithmetic at the best rate this CPU reaches.

Two facts of the machine are reported rather than hidden. keras-lmu's ``conv_mode="raw"`` aborts TensorFlow 2.21
with oneDNN on some CPUs (a failed check in its oneDNN convolution): the script tries it in a child process first,
and where it aborts, the rows against keras-lmu raw run in a child process with ``TF_ENABLE_ONEDNN_OPTS=0`` (torch
timed beside it there), marked "(oneDNN off)". And both frameworks allocate and free hundreds of MB per step, which
glibc's malloc returns to the OS and takes back with fresh page faults every step; ``--malloc retain`` runs the
whole benchmark (both frameworks alike) with glibc told to keep freed memory (``MALLOC_MMAP_MAX_=0
MALLOC_TRIM_THRESHOLD_=1e12``), the setting users can give their own training runs.

    python benchmarks/p2.py [--repeats 5] [--only P2a,P2b,P2c] [--malloc default|retain] [--json p2.json]
    python benchmarks/p2.py --quick        # shorter sequences and 2 repeats: a smoke run, not the figures
"""

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

import _common  # noqa: E402
import vs_keras_lmu as vk  # noqa: E402  (alternate, import_keras, cpu_name, cores)

lmu, lmu_torch, torch = _common.setup()
from torch import nn  # noqa: E402

GOAL = 0.5


class Net(nn.Module):
    """An LMU, optional Dense layers after it, a head: the torch twin of the keras model."""

    def __init__(self, body, after, head):
        super().__init__()
        self.body, self.after, self.head = body, after, head

    def forward(self, x):
        return self.head(self.after(self.body(x)))


def config(name, md, order, theta, input_d, steps, batch, hidden, seq, out, opt, loss, torch_modes, keras_modes,
           rnn_hidden=False):
    return dict(name=name, md=md, order=order, theta=theta, input_d=input_d, T=steps, batch=batch, hidden=hidden,
                seq=seq, out=out, opt=opt, loss=loss, torch_modes=torch_modes, keras_modes=keras_modes,
                rnn_hidden=rnn_hidden)


def configs(quick: bool) -> list[dict]:
    s = (lambda t: max(64, t // 4)) if quick else (lambda t: t)
    return [
        config("P2a", 32, 256, 784.0, 32, s(512), 16, None, False, 2, "rmsprop", "mse",
               ("fft", "raw", "step"), ("fft", "raw", "rnn")),
        config("P2a-seq", 32, 256, 784.0, 32, s(512), 16, None, True, 2, "rmsprop", "mse",
               ("fft", "raw"), ("fft", "raw")),
        config("P2b-1", 1, 256, 784.0, 1, s(784), 32, (212, "relu"), True, 10, "rmsprop", "mse",
               ("auto",), ("fft", "raw")),
        config("P2b-2", 32, 256, 784.0, 32, s(512), 16, (64, "linear"), True, 2, "rmsprop", "mse",
               ("auto",), ("fft", "raw")),
        config("P2c", 1, 256, 784.0, 1, s(784), 100, None, False, 10, "adam", "ce", ("auto",), ("lmu",),
               rnn_hidden=True),
    ]


def build_keras(keras, keras_lmu, c, mode):
    """The keras model of config ``c`` with keras-lmu in ``mode`` (fft, raw, rnn, or lmu: the psMNIST layer)."""
    inputs = keras.Input((c["T"], c["input_d"]), batch_size=c["batch"])
    kw = dict(memory_d=c["md"], order=c["order"], theta=c["theta"])
    if mode == "lmu":
        layer = keras_lmu.LMU(hidden_cell=keras.layers.SimpleRNNCell(212), hidden_to_memory=False,
                              memory_to_memory=False, input_to_hidden=True, kernel_initializer="ones", **kw)
    elif mode == "rnn":
        layer = keras.layers.RNN(keras_lmu.LMUCell(hidden_cell=None, **kw), return_sequences=c["seq"])
    else:
        layer = keras_lmu.LMUFeedforward(hidden_cell=None, conv_mode=mode, return_sequences=c["seq"], **kw)
    y = layer(inputs)
    if c["hidden"] is not None:
        y = keras.layers.Dense(c["hidden"][0], activation=c["hidden"][1])(y)
    model = keras.Model(inputs, keras.layers.Dense(c["out"])(y))
    if c["loss"] == "ce":
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss)
    else:
        model.compile(optimizer=keras.optimizers.RMSprop(), loss="mse")
    return model


def build_torch(keras_model, c, mode):
    """The same function in torch, from the keras model's weights: the LMU (the dense hidden inside its spec)
    and the head."""
    if c["rnn_hidden"]:
        return lmu.convert_model(keras_model, backend="torch", mode=mode)
    spec, weights = lmu.from_keras(keras_model)
    dense = [layer for layer in keras_model.layers if type(layer).__name__ == "Dense"]
    after = nn.Identity()
    if c["hidden"] is not None:  # the Dense after keras' LMUFeedforward is the spec's dense hidden here
        units, activation = c["hidden"]
        spec = lmu.LMUSpec.from_dict(dict(spec.to_dict(), hidden={"kind": "dense", "units": units,
                                                                  "activation": activation}))
        kernel, bias = (np.asarray(w) for w in dense[0].get_weights())
        weights = {**dict(weights), "hidden/kernel": kernel, "hidden/bias": bias}
    body = lmu.build(spec, backend="torch", mode=mode, weights=weights)
    kernel, bias = (np.asarray(w) for w in dense[-1].get_weights())
    head = nn.Linear(*kernel.shape)
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(kernel.T.copy()))
        head.bias.copy_(torch.from_numpy(bias))
    return Net(body, after, head)


def torch_step(model, x, y, c):
    if c["opt"] == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    else:  # Keras' RMSprop defaults
        opt = torch.optim.RMSprop(model.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)
    return _common.step_closure(model, opt, nn.CrossEntropyLoss() if c["loss"] == "ce" else nn.MSELoss(), x, y)


def allocated_bytes(step) -> tuple[int, float]:
    """Bytes the step allocates on the CPU (torch profiler, positive allocations summed), and the floating-point
    operations of its matrix products (the profiler's count: no conv1d, FFT or elementwise work, a lower bound)."""
    from torch.profiler import ProfilerActivity, profile

    sys.stdout.flush()
    saved = [os.dup(1), os.dup(2)]
    null = os.open(os.devnull, os.O_WRONLY)
    try:  # the profiler prints start/stop lines from C++: to /dev/null
        os.dup2(null, 1)
        os.dup2(null, 2)
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True, with_flops=True) as prof:
            step()
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved + [null]:
            os.close(fd)
    events = prof.key_averages()
    return int(sum(max(0, e.self_cpu_memory_usage) for e in events)), float(sum(e.flops or 0 for e in events))


def best_seconds(run, rounds: int = 6) -> float:
    """The shortest of ``rounds`` timings of ``run()`` (the first warms caches and pages)."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def copy_bandwidth() -> float:
    """Bytes per second a large ``copy_`` moves (read + write), best of 6."""
    src = torch.empty(64 << 20, dtype=torch.float32).uniform_()
    dst = torch.empty_like(src)
    return 2 * src.numel() * 4 / best_seconds(lambda: dst.copy_(src))


def gemm_rate() -> float:
    """Floating-point operations per second of a large float32 matrix product (2048², best of 6)."""
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    return 2 * 2048**3 / best_seconds(lambda: torch.mm(a, b))


def reference(keras_model, c, x):
    """lmu's float64 NumPy reference of the keras model (the same weights)."""
    net = lmu.convert_model(keras_model, backend="numpy")
    return np.asarray(net(x.astype(np.float64)))


def pairs_of(c, allowed) -> list[tuple[str, str]]:
    """The (torch mode, keras mode) pairs of config ``c`` whose keras mode is in ``allowed``."""
    if c["name"].startswith("P2a"):
        return [(t, k) for t, k in zip(c["torch_modes"], c["keras_modes"]) if k in allowed]
    return [("auto", k) for k in c["keras_modes"] if k in allowed]


def run(tf, keras, keras_lmu, c, args, bandwidth, allowed, rate) -> list[dict]:
    pairs = pairs_of(c, allowed)
    if not pairs:
        return []
    rng = np.random.default_rng(args.seed)
    x = rng.uniform(-1, 1, (c["batch"], c["T"], c["input_d"])).astype(np.float32)
    if c["loss"] == "ce":
        y = rng.integers(0, c["out"], c["batch"])
        yk, yt = tf.constant(y), torch.from_numpy(y)
    else:
        y = rng.uniform(-1, 1, (c["batch"], c["T"], c["out"]) if c["seq"] else (c["batch"], c["out"]))
        yk, yt = tf.constant(y.astype(np.float32)), torch.from_numpy(y.astype(np.float32))
    xk, xt = tf.constant(x), torch.from_numpy(x)
    keras.utils.set_random_seed(args.seed)
    kmodels, weights = {}, None
    for mode in dict.fromkeys(k for _, k in pairs):
        kmodels[mode] = build_keras(keras, keras_lmu, c, mode)
        if weights is None:
            weights = kmodels[mode].get_weights()
        else:
            kmodels[mode].set_weights(weights)
    first = next(iter(kmodels.values()))
    tmodels = {mode: build_torch(first, c, mode) for mode in dict.fromkeys(t for t, _ in pairs)}
    n = min(4, c["batch"])
    ref = reference(first, c, x[:n])
    scale = float(np.abs(ref).max())
    with torch.no_grad():
        errs = {f"torch {m}": float(np.abs(t(xt[:n]).double().numpy() - ref).max()) / scale
                for m, t in tmodels.items()}
    errs.update({f"keras {m}": float(np.abs(np.asarray(k(xk[:n], training=False), np.float64) - ref).max()) / scale
                 for m, k in kmodels.items()})
    runs_as = {m: (t.body if hasattr(t, "body") else t[0]).pick_mode(c["T"], batch=c["batch"])
               for m, t in tmodels.items()}
    print(f"\n{c['name']}: memory_d {c['md']}, order {c['order']}, theta {c['theta']:g}, input {c['input_d']}, "
          f"T {c['T']}, batch {c['batch']}, hidden {c['hidden'] or ('SimpleRNN 212' if c['rnn_hidden'] else None)}, "
          f"{'every step' if c['seq'] else 'last step'}, {c['opt']}, {c['loss']}")
    print("  torch modes run as " + ", ".join(f"{m} -> {r}" for m, r in runs_as.items())
          + "; max |output - float64 reference| / max|reference|: "
          + ", ".join(f"{k} {v:.1e}" for k, v in errs.items()), flush=True)
    t_fn = {m: torch_step(t, xt, yt, c) for m, t in tmodels.items()}
    k_fn = {m: (lambda model=k: model.train_on_batch(xk, yk)) for m, k in kmodels.items()}
    fast = {f"torch {m}": f for m, f in t_fn.items() if m != "step"}
    fast.update({f"keras {m}": f for m, f in k_fn.items() if m != "rnn"})
    times = vk.alternate(fast, args.repeats, 1, args.budget)
    if "step" in t_fn:
        times.update(vk.alternate({"torch step": t_fn["step"], "keras rnn": k_fn["rnn"]}, args.slow_repeats, 1))
    rows = []
    if not c["name"].startswith("P2a"):  # torch auto against keras-lmu's faster form
        pairs = [min(pairs, key=lambda pair: times[f"keras {pair[1]}"]["ms"])]
    for tmode, kmode in pairs:
        t_ms, k_ms = times[f"torch {tmode}"]["ms"], times[f"keras {kmode}"]["ms"]
        moved, flops = allocated_bytes(t_fn[tmode])
        floor_ms = 2 * moved / bandwidth * 1e3
        flop_ms = flops / rate * 1e3
        goal = None if c["name"].endswith("-seq") else GOAL
        peer = f"keras-lmu {kmode}{args.peer_note}"
        rows.append(dict(row=c["name"], torch=f"{tmode} ({runs_as[tmode]})", peer=peer,
                         torch_ms=t_ms, peer_ms=k_ms, ratio=t_ms / k_ms, goal=goal, allocated_mb=moved / 1e6,
                         copy_floor_ms=floor_ms, at_copy_speed=floor_ms / t_ms, gflop=flops / 1e9,
                         gemm_floor_ms=flop_ms, error=errs))
        print(f"  torch {tmode}: {t_ms:.1f} ms, keras-lmu {kmode}: {k_ms:.1f} ms, ratio {t_ms / k_ms:.2f}; torch "
              f"allocates {moved / 1e6:.0f} MB a step: {floor_ms:.1f} ms at copy speed; its matrix products "
              f"are {flops / 1e9:.1f} GFLOP: {flop_ms:.1f} ms at the large-GEMM rate", flush=True)
    del kmodels, tmodels, t_fn, k_fn, fast
    keras.backend.clear_session()
    gc.collect()
    return rows


#: glibc malloc settings that keep freed memory in the process (no mmap for large blocks, no trimming): a large
#: tensor freed and allocated again every step then costs no fresh page faults.
RETAIN = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(10**12)}

RAW_PROBE = """
import os, numpy as np, tensorflow as tf, keras, keras_lmu
inputs = keras.Input((512, 32), batch_size=2)
y = keras_lmu.LMUFeedforward(memory_d=32, order=256, theta=784.0, hidden_cell=None, conv_mode="raw")(inputs)
keras.Model(inputs, y)(tf.zeros((2, 512, 32)))
"""


def keras_raw_runs() -> bool:
    """Whether keras-lmu's ``conv_mode="raw"`` runs here with TensorFlow's defaults: on some CPUs TF 2.21's oneDNN
    convolution aborts the process on it ("Check failed: dtype() == expected_dtype"), so it is tried in a child."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-c", RAW_PROBE], env=env, capture_output=True).returncode == 0


def raw_without_onednn(args) -> list[dict]:
    """The rows against keras-lmu ``raw``, run in a child process with ``TF_ENABLE_ONEDNN_OPTS=0``."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "raw.json")
        cmd = [sys.executable, os.path.abspath(__file__), "--only", args.only, "--keras-modes", "raw", "--json", out,
               "--repeats", str(args.repeats), "--budget", str(args.budget), "--seed", str(args.seed),
               "--peer-note", " (oneDNN off)"] + (["--quick"] if args.quick else [])
        print("\nkeras-lmu raw aborts TensorFlow with oneDNN on this CPU: its rows run in a child process "
              "with TF_ENABLE_ONEDNN_OPTS=0", flush=True)
        subprocess.run(cmd, env=dict(os.environ, TF_ENABLE_ONEDNN_OPTS="0"), check=True)
        with open(out) as f:
            return json.load(f)["rows"]


def merge(rows: list[dict], extra: list[dict]) -> list[dict]:
    """Add the child's rows; of two rows of one non-P2a config keep the one against the faster keras-lmu."""
    merged = {}
    for r in rows + extra:
        key = (r["row"], r["torch"], r["peer"]) if r["row"].startswith("P2a") else r["row"]
        if key not in merged or r["peer_ms"] < merged[key]["peer_ms"]:
            merged[key] = r
    order = [c["name"] for c in configs(False)]
    return sorted(merged.values(), key=lambda r: order.index(r["row"]))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=None, help="timed rounds per group (default 5; 2 with --quick)")
    p.add_argument("--slow-repeats", type=int, default=2, help="timed rounds of torch step vs keras rnn")
    p.add_argument("--budget", type=float, default=90.0, help="seconds after which a group stops at 3 rounds")
    p.add_argument("--only", default="P2a,P2b,P2c", help="comma-separated rows (P2a, P2b, P2c)")
    p.add_argument("--quick", action="store_true", help="a quarter of the sequence lengths: a smoke run")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="FILE", default=None)
    p.add_argument("--keras-modes", default="fft,raw,rnn,lmu", help=argparse.SUPPRESS)
    p.add_argument("--peer-note", default="", help=argparse.SUPPRESS)
    p.add_argument("--malloc", choices=("default", "retain"), default="default",
                   help="retain: run with glibc's malloc keeping freed memory (MALLOC_MMAP_MAX_=0, "
                        "MALLOC_TRIM_THRESHOLD_=1e12), for both frameworks alike")
    args = p.parse_args()
    args.repeats = args.repeats or (2 if args.quick else 5)
    if args.malloc == "retain" and os.environ.get("MALLOC_MMAP_MAX_") != "0":
        env = dict(os.environ, **RETAIN)
        os.execve(sys.executable, [sys.executable, os.path.abspath(__file__)] + sys.argv[1:], env)
    threads = vk.cores()
    torch.set_num_threads(threads)
    allowed = set(args.keras_modes.split(","))
    child = allowed == {"raw"}
    raw_here = child or keras_raw_runs()
    if not raw_here:
        allowed.discard("raw")
    tf, keras, keras_lmu = vk.import_keras(threads)
    import keras_lmu.version as klv

    env = {"cpu": vk.cpu_name(), "cores": threads, "torch": torch.__version__, "tensorflow": tf.__version__,
           "keras": keras.__version__, "keras_lmu": klv.version, "lmu": lmu.__version__, "numpy": np.__version__,
           "python": platform.python_version(), "date": time.strftime("%Y-%m-%d"), "command": " ".join(sys.argv),
           "malloc": " ".join(f"{k}={os.environ[k]}" for k in RETAIN if k in os.environ) or "glibc default"}
    bandwidth, rate = copy_bandwidth(), gemm_rate()
    if not child:
        print("P2 torch vs keras-lmu on the CPU, training steps; ratio = torch ms / keras-lmu ms (lower is better)")
        print(", ".join(f"{k} {v}" for k, v in env.items()))
        print(f"copy bandwidth {bandwidth / 1e9:.1f} GB/s (read + write of a 256 MiB copy_, best of 6); load average "
              f"{os.getloadavg()[0]:.2f}; large-GEMM rate {rate / 1e9:.0f} GFLOP/s (float32 2048², best of 6)"
              + ("   [--quick: not the goal's sizes]" if args.quick else ""), flush=True)
    wanted = args.only.split(",")
    rows = []
    for c in configs(args.quick):
        if c["name"].split("-")[0] in wanted:
            rows += run(tf, keras, keras_lmu, c, args, bandwidth, allowed, rate)
    if child:
        _common.write_json(args.json, {"rows": rows})
        return
    if not raw_here:
        rows = merge(rows, raw_without_onednn(args))
    print(f"\n{'row':<8}{'torch mode (runs as)':<22}{'peer':<28}{'torch ms':>10}{'peer ms':>10}{'ratio':>7}"
          f"{'goal':>7}  {'torch MB':>9}{'at copy speed':>15}{'GFLOP':>7}{'GEMM floor':>11}")
    for r in rows:
        verdict = "info" if r["goal"] is None else "met" if r["ratio"] <= r["goal"] else "NOT met"
        print(f"{r['row']:<8}{r['torch']:<22}{r['peer']:<28}{r['torch_ms']:>10.1f}{r['peer_ms']:>10.1f}"
              f"{r['ratio']:>7.2f}{'-' if r['goal'] is None else '<= ' + str(r['goal']):>7}"
              f"  {r['allocated_mb']:>9.0f}{r['copy_floor_ms']:>8.1f} ms {r['at_copy_speed']:>4.0%}"
              f"{r['gflop']:>7.1f}{r['gemm_floor_ms']:>8.1f} ms  {verdict}")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    _common.write_json(args.json, {"benchmark": "p2", "env": env, "bandwidth": bandwidth, "rows": rows,
                                   "quick": args.quick, "keras_raw_with_onednn": raw_here})


if __name__ == "__main__":
    main()
