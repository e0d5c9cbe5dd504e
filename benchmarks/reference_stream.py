"""Streaming speed of the NumPy reference backend (batch 1, order 256, memory_d 1).

Prints steps per second for three ways of streaming, with and without an rnn hidden cell of 212 units:
- "sequence, step mode": one call on a 2,000-step sequence with mode="step" (the cell loop);
- "one call per step": lmu.run on one step at a time, passing the state on (validation included);
- "sequence, auto (FFT)": one call on the whole sequence, the LTI shortcut (for comparison).
Target (issue 2): >= 20,000 steps/s without hidden on one core. Run with OMP_NUM_THREADS=1 etc. set by this
script before NumPy loads, so the figure is for one core.

    python benchmarks/reference_stream.py [--steps 2000] [--repeats 5]
"""

import argparse
import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import time  # noqa: E402

import numpy as np  # noqa: E402

import lmu  # noqa: E402


def best_rate(fn, steps, repeats):
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return steps / best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    x = np.random.default_rng(0).normal(size=(1, args.steps, 1)).astype(np.float32)
    print(f"lmu {lmu.__version__}, numpy {np.__version__}, batch 1, order 256, memory_d 1, T {args.steps}, "
          f"best of {args.repeats}")
    print(f"{'hidden':<12}{'sequence, step mode':>22}{'one call per step':>20}{'sequence, auto':>18}")
    for hidden in (None, lmu.Hidden("rnn", units=212)):
        spec = lmu.LMUSpec(memory_d=1, order=256, theta=784, input_d=1, hidden=hidden, return_sequences=True)
        step_model = lmu.build(spec, mode="step")
        auto_model = lmu.build(spec)

        def per_step():
            state = None
            for t in range(args.steps):
                _, state = lmu.run(step_model, x[:, t : t + 1], state=state, return_state=True)

        rates = [best_rate(lambda: lmu.run(step_model, x), args.steps, args.repeats),
                 best_rate(per_step, args.steps, args.repeats),
                 best_rate(lambda: lmu.run(auto_model, x), args.steps, args.repeats)]
        label = "none" if hidden is None else "rnn 212"
        print(f"{label:<12}" + "".join(f"{r:>{w},.0f}" for r, w in zip(rates, (22, 20, 18))) + "  steps/s")


if __name__ == "__main__":
    main()
