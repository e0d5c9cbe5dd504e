"""Mackey-Glass prediction (τ = 17, 15 steps ahead, as in the LMU paper's task): an LMU against an LSTM in torch.

The series (``lmu.datasets.mackey_glass``, sampled every time unit) is standardized and cut into sequences of
``--length`` steps; at every step each model predicts the value 15 steps later. Training uses the first 70 % of
the series, testing the rest. Prints the test NRMSE (RMSE / standard deviation of the target) per model, with
parameters and seconds per epoch, for each seed.

    python benchmarks/mackey_glass.py [--epochs 200] [--seeds 0,1] [--threads 1]
"""

import argparse
import time

import numpy as np

import lmu
from lmu.datasets import mackey_glass

AHEAD = 15


def windows(series, length):
    n = (len(series) - AHEAD) // length
    x = np.stack([series[i * length:(i + 1) * length] for i in range(n)])[..., None]
    y = np.stack([series[i * length + AHEAD:(i + 1) * length + AHEAD] for i in range(n)])[..., None]
    return x.astype(np.float32), y.astype(np.float32)


def models(seed):
    import torch
    from torch import nn

    torch.manual_seed(seed)
    spec = lmu.LMUSpec(memory_d=1, order=12, theta=50, input_d=1, hidden=lmu.Hidden("rnn", 40),
                       input_to_hidden=True, return_sequences=True)

    class LSTM(nn.Module):
        def __init__(self, units):
            super().__init__()
            self.lstm = nn.LSTM(1, units, batch_first=True)

        def forward(self, x):
            return self.lstm(x)[0]

    return {
        "lmu (order 12, θ 50, rnn 40)": nn.Sequential(lmu.build(spec, backend="torch",
                                                                weights=lmu.init_weights(spec, seed)),
                                                      nn.Linear(40, 1)),
        "lstm 24": nn.Sequential(LSTM(24), nn.Linear(24, 1)),
    }


def main():
    import torch

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--length", type=int, default=200)
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    series = mackey_glass(12000, seed=0)
    series = (series - series.mean()) / series.std()
    cut = int(0.7 * len(series))
    x_tr, y_tr = (torch.as_tensor(a) for a in windows(series[:cut], args.length))
    x_te, y_te = (torch.as_tensor(a) for a in windows(series[cut:], args.length))
    print(f"Mackey-Glass τ=17, predict {AHEAD} steps ahead; train {tuple(x_tr.shape)}, test {tuple(x_te.shape)}; "
          f"Adam 1e-2 full batch, {args.epochs} epochs, torch {torch.__version__}, {args.threads} thread(s)")
    for seed in (int(s) for s in args.seeds.split(",")):
        for name, net in models(seed).items():
            opt = torch.optim.Adam(net.parameters(), lr=1e-2)
            started = time.perf_counter()
            for _ in range(args.epochs):
                opt.zero_grad()
                loss = ((net(x_tr) - y_tr) ** 2).mean()
                loss.backward()
                opt.step()
            seconds = (time.perf_counter() - started) / args.epochs
            with torch.no_grad():
                pred = net(x_te)
            skip = 50  # the first steps of each test window have little history
            err = (pred - y_te)[:, skip:]
            nrmse = float(err.pow(2).mean().sqrt() / y_te[:, skip:].std())
            params = sum(p.numel() for p in net.parameters())
            print(f"seed {seed}  {name:28s} params {params:6d}  test NRMSE {nrmse:.4f}  {seconds * 1000:.0f} ms/epoch",
                  flush=True)


if __name__ == "__main__":
    main()
