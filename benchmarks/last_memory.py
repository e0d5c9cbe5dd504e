"""Peak memory and time of last-step inference (torch ``mode="last"``) as the sequence grows, 10³ to 10⁶ steps.

The model is the psMNIST memory (``memory_d=1``, order 256, θ 784, no hidden cell, the last step only), batch 8,
float32, CPU, under ``torch.no_grad()``. For each T it runs in a fresh process, twice: as the backend runs it
(sequences longer than ``lmu_torch.forward.LAST_CHUNK`` contracted chunk by chunk, so that what is held grows with
the chunk) and with the chunking switched off (one contraction with the impulse response over all T steps, as
before). It prints the peak resident memory the forward adds over what the process held before it (the input
itself, 4·8·T bytes, is allocated before), the time of the forward that computes and caches ``H``, and of one
more forward with the cache warm.

    python benchmarks/last_memory.py [--steps 1000,10000,100000,1000000] [--batch 8]
"""

import argparse
import json
import os
import subprocess
import sys
import time

import _common

CHILD = """
import json, resource, sys, time
sys.path[:0] = sys.argv[4].split(":")
import torch, lmu
from lmu_torch import forward
steps, batch, chunked = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "chunked"
if not chunked:
    forward.LAST_CHUNK = 10 ** 12
spec = lmu.LMUSpec(memory_d=1, order=256, theta=784, input_d=1)
model = lmu.build(spec, backend="torch", mode="last", weights=lmu.init_weights(spec, seed=0))
x = torch.randn(batch, steps, 1, generator=torch.Generator().manual_seed(0))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with torch.no_grad():
    t0 = time.perf_counter(); y = model(x); first = time.perf_counter() - t0
    t0 = time.perf_counter(); y2 = model(x); warm = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"added_mb": (peak - before) / 1024, "first_s": first, "warm_s": warm,
                  "y0": float(y[0, 0]), "finite": bool(torch.isfinite(y).all())}))
"""


def run(steps: int, batch: int, variant: str) -> dict:
    path = ":".join([_common.ROOT, os.path.join(_common.ROOT, "plugins")])
    out = subprocess.run([sys.executable, "-c", CHILD, str(steps), str(batch), variant, path], capture_output=True,
                         text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", default="1000,10000,100000,1000000")
    p.add_argument("--batch", type=int, default=8)
    args = p.parse_args()
    _, _, torch = _common.setup()
    from lmu_torch import forward

    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, LAST_CHUNK {forward.LAST_CHUNK}, batch {args.batch}; "
          f"date {time.strftime('%Y-%m-%d')}; command: python {' '.join(sys.argv)}")
    print(f"{'T':>9}  {'variant':<8}{'added MB':>10}{'first s':>9}{'warm s':>8}  same output (1e-5)")
    for steps in (int(s) for s in args.steps.split(",")):
        results = {v: run(steps, args.batch, v) for v in ("chunked", "whole")}
        for variant, r in results.items():
            if "error" in r:
                print(f"{steps:>9}  {variant:<8}  {r['error']}")
                continue
            other = results["whole" if variant == "chunked" else "chunked"]
            same = "" if "error" in other else f"{abs(r['y0'] - other['y0']) <= 1e-5 * max(1.0, abs(r['y0']))}"
            print(f"{steps:>9}  {variant:<8}{r['added_mb']:>10.0f}{r['first_s']:>9.2f}{r['warm_s']:>8.2f}  {same}",
                  flush=True)


if __name__ == "__main__":
    main()
