"""Peak memory of the numpy reference for a last-step output, T from 10³ to 10⁶ steps (order 512).

Without ``return_sequences`` the reference runs long sequences in chunks of ``lmu.reference.CHUNK`` steps, carrying
the state, so its peak memory should stay flat in T where the whole (T, memory) tensor grows linearly (10⁶ steps at
order 512: 4 GB in float64, the size that failed with MemoryError before). Peak memory is what ``tracemalloc``
sees (NumPy reports its allocations to it); time is one run each.

    python benchmarks/reference_memory.py [--order 512] [--max-steps 1000000]
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

import lmu


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--order", type=int, default=512)
    parser.add_argument("--max-steps", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    spec = lmu.LMUSpec(memory_d=1, order=args.order, theta=1000, input_d=1, hidden=lmu.Hidden("dense", 8))
    model = lmu.build(spec, backend="numpy")
    lmu.run(model, np.zeros((1, 100, 1)))  # warm: the system matrices
    print(f"numpy reference, order {args.order}, dense hidden, return_sequences=False, batch 1, chunks of "
          f"{lmu.reference.CHUNK} steps")
    print(f"{'T':>9}  {'peak MB':>8}  {'whole (T, memory) MB':>21}  {'seconds':>8}")
    steps = 1000
    while steps <= args.max_steps:
        x = np.random.default_rng(0).normal(size=(1, steps, 1))
        tracemalloc.start()
        started = time.perf_counter()
        lmu.run(model, x)
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        whole = steps * spec.memory_size * 8
        print(f"{steps:>9}  {peak / 1e6:>8.1f}  {whole / 1e6:>21.0f}  {seconds:>8.2f}", flush=True)
        steps *= 10


if __name__ == "__main__":
    main()
