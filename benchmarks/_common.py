"""Shared helpers for the torch training-step benchmarks (psmnist_step.py, trainable_theta.py).

Not a benchmark itself. What it gives the scripts:

- :func:`setup` makes ``import lmu`` and ``import lmu_torch`` work from a plain checkout (``PYTHONPATH=.:plugins``
  or nothing at all) and registers the torch backend in-process when the ``lmu.backends`` entry points are absent
  (lmu not pip-installed, as on the GPU machine);
- :func:`parser` the options every script takes (``--device``, ``--small``, ``--repeats``, ``--warmup``, ``--json``);
- :func:`train_step` / :func:`measure`: one full training step (forward, loss, backward, optimizer step) timed as
  the median of several, after warm-up steps, with the GPU synchronized before each clock reading, the compared
  configurations timed in turns (side by side);
- :func:`is_oom` / :func:`release` to turn a CUDA out-of-memory error into an "OOM" cell and go on.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def setup():
    """Import lmu and lmu_torch (from the checkout if they are not installed) and make sure ``torch`` is a
    registered backend. Returns ``(lmu, lmu_torch, torch)``."""
    for path in (ROOT, os.path.join(ROOT, "plugins")):
        if path not in sys.path:
            sys.path.append(path)  # appended: an installed lmu still wins
    import torch

    import lmu
    import lmu_torch

    if "torch" not in [b.name for b in lmu.backends()]:
        lmu.register(lmu_torch.TorchBackend)
    return lmu, lmu_torch, torch


def parser(description: str) -> argparse.ArgumentParser:
    import torch

    p = argparse.ArgumentParser(description=description)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu",
                   help="where to run (default: cuda if available)")
    p.add_argument("--small", action="store_true", help="small sizes for a CPU run of about a minute")
    p.add_argument("--repeats", type=int, default=None, help="timed steps per measurement (median is reported)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps before each measurement")
    p.add_argument("--min-time", type=float, default=0.3,
                   help="keep timing a cheap step until it has this many seconds in all (max 50 steps; default 0.3)")
    p.add_argument("--json", metavar="FILE", default=None, help="also write the results to FILE")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None,
                   help="torch.set_num_threads (default: 1 for --device cpu --small, which is far steadier on a busy "
                        "machine; else torch's own)")
    return p


def device_of(name: str, threads=None, small=False):
    import torch

    if threads is None and small and name == "cpu":
        threads = 1
    if threads:
        torch.set_num_threads(threads)

    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch.cuda.is_available() is False "
                         f"(torch {torch.__version__}); use --device cpu")
    return torch.device(name)


def environment(device) -> dict:
    """What the numbers were measured on (printed at the top and stored in the JSON)."""
    import torch

    import lmu

    env = {"torch": torch.__version__, "lmu": getattr(lmu, "__version__", "?"), "python": platform.python_version(),
           "device": str(device), "threads": torch.get_num_threads()}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(device_name=torch.cuda.get_device_name(device), cuda=torch.version.cuda,
                   cudnn=torch.backends.cudnn.version(), gpu_memory_gib=round(props.total_memory / 2**30, 1),
                   tf32_matmul=torch.backends.cuda.matmul.allow_tf32, tf32_cudnn=torch.backends.cudnn.allow_tf32)
    else:
        env["device_name"] = platform.processor() or platform.machine()
    return env


def print_header(title: str, env: dict, sizes: list[str]) -> None:
    print(title)
    line = f"torch {env['torch']}, lmu {env['lmu']}, python {env['python']}, device {env['device']}: " \
           f"{env['device_name']}"
    if env.get("cuda"):
        line += f" ({env['gpu_memory_gib']} GiB, CUDA {env['cuda']}, cuDNN {env['cudnn']}, " \
                f"TF32 matmul={env['tf32_matmul']} cudnn={env['tf32_cudnn']})"
    else:
        line += f" ({env['threads']} torch threads)"
    print(line)
    for s in sizes:
        print(s)
    sys.stdout.flush()


def sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def classifier(lmu_module, units: int, classes: int = 10):
    """The benchmarks' model: an LMU module followed by a Linear head on its output."""
    from collections import OrderedDict

    from torch import nn

    return nn.Sequential(OrderedDict(lmu=lmu_module, head=nn.Linear(units, classes)))


def train_step(forward, params, x, y, lr=1e-3):
    """A closure running one full training step: ``loss = cross_entropy(forward(x), y)``, backward, Adam step.

    ``params`` must hold every trainable parameter (the LMU's ``theta`` included when it is trainable)."""
    import torch

    return step_closure(forward, torch.optim.Adam(list(params), lr=lr), torch.nn.CrossEntropyLoss(), x, y)


def step_closure(forward, opt, loss_fn, x, y):
    """A closure running ``opt.zero_grad``, ``loss_fn(forward(x), y)``, backward and ``opt.step``."""

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(forward(x), y)
        loss.backward()
        opt.step()
        return loss

    return step


def measure(steps: dict, device, repeats: int, warmup: int, min_time: float = 0.0, max_repeats: int = 50) -> dict:
    """Time several training steps side by side: ``steps`` maps a name to a step closure.

    Each closure gets ``warmup`` untimed calls, then the closures are timed in turns (one call of each per round)
    so that a change in the machine's load hits all of them alike; rounds go on until each has ``repeats`` timed
    calls and, while under ``max_repeats``, until each has ``min_time`` seconds in all (cheap steps get more
    samples). The device is synchronized before each clock reading. Returns, per name, the median, min and max
    milliseconds, the number of timed calls and (on CUDA) the peak memory allocated during its calls; a step that
    runs out of memory gets ``{"error": "OOM"}`` and drops out, and any other error is raised."""
    import torch

    results, times, peaks, live = {}, {}, {}, dict(steps)

    def call(name):
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        sync(device)
        start = time.perf_counter()
        loss = live[name]()
        sync(device)
        elapsed = (time.perf_counter() - start) * 1e3
        if device.type == "cuda":
            peaks[name] = max(peaks.get(name, 0), torch.cuda.max_memory_allocated(device))
        return elapsed, loss

    def guarded(name, timed):
        try:
            elapsed, loss = call(name)
        except Exception as exc:  # noqa: BLE001
            if not is_oom(exc):
                raise
            results[name] = {"error": "OOM", "detail": str(exc).splitlines()[0][:300]}
            del live[name]
            release(device)
            return
        if timed:
            times.setdefault(name, []).append(elapsed)
        results[name] = loss

    for name in list(live):
        for _ in range(warmup):
            if name in live:
                guarded(name, timed=False)
    rounds = 0
    while live:
        for name in list(live):
            guarded(name, timed=True)
        rounds += 1
        done = [n for n in live if rounds >= max(1, repeats)
                and (rounds >= max_repeats or sum(times[n]) >= min_time * 1e3)]
        for name in done:
            del live[name]
    for name, ms in times.items():
        if isinstance(results.get(name), dict):
            continue  # OOM after some timed calls
        loss = results[name]
        results[name] = {"ms": statistics.median(ms), "min_ms": min(ms), "max_ms": max(ms), "repeats": len(ms),
                         "warmup": warmup, "loss": float(loss.detach())}
        if name in peaks:
            results[name]["peak_gib"] = round(peaks[name] / 2**30, 3)
    return results


def is_oom(exc: BaseException) -> bool:
    import torch

    if isinstance(exc, getattr(torch.cuda, "OutOfMemoryError", ())) or isinstance(exc, MemoryError):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "CUDA error: out of memory" in text
                                              or "DefaultCPUAllocator: can't allocate memory" in text)


def release(device) -> None:
    """Free what a failed (OOM) measurement left behind."""
    import torch

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def param_count(module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def fmt_ms(cell) -> str:
    """A table cell: ``12.3`` ms, or the error tag ("OOM", "ERR") stored in its place."""
    if isinstance(cell, dict):
        ms = cell.get("ms")
        if ms is None:
            return cell.get("error", "-")
        return f"{ms:.1f}" if ms >= 10 else f"{ms:.2f}"
    return "-" if cell is None else str(cell)


def ratio(a, b):
    """``a / b`` of two measurements' medians, or None when either failed."""
    if isinstance(a, dict) and isinstance(b, dict) and a.get("ms") and b.get("ms"):
        return a["ms"] / b["ms"]
    return None


def fmt_ratio(r) -> str:
    if r is None:
        return "-"
    return f"{r:.1f}x" if r >= 10 else f"{r:.2f}x"


def write_json(path, payload, quiet=False) -> None:
    if not path:
        return
    from lmu.files import write_text

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_text(path, json.dumps(payload, indent=2, default=str) + "\n")  # atomic, like every file lmu writes
    if not quiet:
        print(f"wrote {path}")
