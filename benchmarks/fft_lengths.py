"""Which FFT length the torch backend's fft mode should pad to: a 7-smooth length of its own, or scipy's.

``lmu_torch.compute.fft_length`` pads ``2T − 1`` to the smallest 2·3·5·7-smooth length, computed in Python (so
that ``torch.compile`` traces it); ``scipy.fft.next_fast_len`` gives a 5-smooth length for real transforms
(``real=True``) and an 11-smooth one otherwise. This script times the fft mode's convolution (rfft of the input
and of H, product, irfft; batch 32, order 256) at each of the three lengths, for sequence lengths where they
differ, side by side in one run, and prints each time relative to the 7-smooth one.

    python benchmarks/fft_lengths.py [--device cuda] [--repeats 20]
"""

from __future__ import annotations

import argparse
import time

import scipy.fft
import torch

from lmu_torch.compute import fft_length as smooth7


def _time(fn, repeats, device):
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - started)
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--order", type=int, default=256)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    torch.manual_seed(0)
    rows = []
    for steps in range(100, 20001, 37):
        n = 2 * steps - 1
        lengths = {"7-smooth (lmu_torch)": smooth7(n), "scipy real (5-smooth)": scipy.fft.next_fast_len(n, True),
                   "scipy (11-smooth)": scipy.fft.next_fast_len(n)}
        if len(set(lengths.values())) == 1:
            continue
        rows.append((steps, lengths))
    rows = rows[:: max(1, len(rows) // 12)][:12]  # a dozen sequence lengths spread over the range
    print(f"FFT convolution, batch {args.batch}, order {args.order}, {device}, torch {torch.__version__}; "
          "best of {args.repeats}; time relative to the 7-smooth length (lower is faster)".replace("{args.repeats}",
                                                                                 str(args.repeats)))
    names = list(rows[0][1])
    print(f"{'T':>6}  " + "  ".join(f"{name:>22}" for name in names))
    totals = dict.fromkeys(names, 0.0)
    for steps, lengths in rows:
        u = torch.randn(args.batch, steps, 1, device=device)
        H = torch.randn(steps, args.order, device=device)
        times = {}
        for name, n in lengths.items():
            def conv(n=n):
                U = torch.fft.rfft(u, n=n, dim=1)
                Hf = torch.fft.rfft(H, n=n, dim=0)
                return torch.fft.irfft(U.unsqueeze(-1) * Hf[None, :, None, :], n=n, dim=1)[:, :steps]

            times[name] = _time(conv, args.repeats, device)
        base = times[names[0]]
        for name in names:
            totals[name] += times[name] / base
        print(f"{steps:>6}  " + "  ".join(f"{lengths[n]:>7} {times[n] / base:>6.2f}x {1e3 * times[n]:>6.1f}ms"
                                          for n in names))
    print("mean   " + "  ".join(f"{'':>7} {totals[n] / len(rows):>6.2f}x {'':>8}" for n in names))


if __name__ == "__main__":
    main()
