"""Online learning (PES, ``lmu_nengo.learn_readout`` with its default arguments) on 5 signals fixed in advance.

Prints one row per signal and backend: the task is the input delayed by θ/2 (θ = 0.5 s, order 6), 8 simulated
seconds, learning stopped at 80%; NRMSE over the last 20% with learning, and of the same network with learning
rate 0; pass iff learned ≤ 0.5 × unlearned. The signals and the judge are those of the tests
(``tests/backends/_online.py``). nengo runs the exact mode and neurons mode (100 neurons per dimension), Loihi
nengo-loihi's emulator (100 neurons per dimension; several minutes per signal on a slow CPU, hence ``--jobs``).

    python benchmarks/online_learning.py [--backends nengo,nengo-neurons,loihi] [--signals A,B,C,D,E] [--jobs 2]
"""

import argparse
import os
import platform
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow, when a plugin imports it, stays quiet
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _path in (os.path.join(ROOT, "tests", "backends"), os.path.join(ROOT, "plugins"), ROOT):
    if _path not in sys.path:
        sys.path.append(_path)

#: label → (backend, build options, simulator factory name)
BACKENDS = {"nengo": ("nengo", {}), "nengo-neurons": ("nengo", {"neurons": 100}), "loihi": ("loihi", {"neurons": 100})}


def one(label, name):
    import nengo

    from _online import SIGNALS, judge

    nengo.rc["decoder_cache"]["enabled"] = "False"
    backend, build = BACKENDS[label]
    signal = next(s for s in SIGNALS if s.name == name)
    simulator = None
    if backend == "loihi":
        import lmu_loihi

        simulator = lmu_loihi.Simulator
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = judge(backend, signal, simulator=simulator, **build)
    return label, result, time.perf_counter() - started


def versions():
    import nengo
    import numpy

    import lmu

    out = [f"lmu {getattr(lmu, '__version__', '?')}", f"nengo {nengo.__version__}", f"numpy {numpy.__version__}",
           f"python {platform.python_version()}"]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import nengo_loihi
        out.insert(2, f"nengo-loihi {nengo_loihi.__version__}")
    except ImportError:
        pass
    return ", ".join(out) + f"; {os.cpu_count()} CPUs ({platform.processor() or platform.machine()})"


def main():
    from _online import RATIO, SECONDS, SIGNALS

    from lmu_nengo.train import LEARNING_RATE

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="nengo,nengo-neurons,loihi")
    parser.add_argument("--signals", default=",".join(s.name for s in SIGNALS))
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel processes (default 1)")
    args = parser.parse_args()
    labels, names = args.backends.split(","), args.signals.split(",")
    for label in labels:
        if label not in BACKENDS:
            parser.error(f"--backends: unknown {label!r} (choose from {', '.join(BACKENDS)})")
    print(f"online learning: delay θ/2, {SECONDS:g} s, learning stopped at 80%, NRMSE of the last 20%; "
          f"pass iff learned ≤ {RATIO} × unlearned")
    print(versions())
    print("command: python " + " ".join(sys.argv))
    print(f"learning rates (learn_readout defaults): {LEARNING_RATE}")
    print(f"{'signal':8} {'seed':>4} {'cutoff':>7} {'rms':>5}  {'backend':14} {'learned':>8} {'unlearned':>9} "
          f"{'ratio':>6}  pass  {'wall s':>6}", flush=True)
    jobs = [(label, name) for name in names for label in labels]
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [pool.submit(one, label, name) for label, name in jobs]
        for future in futures:
            label, r, wall = future.result()
            s = r.signal
            print(f"{s.name:8} {s.seed:>4} {s.cutoff:>7g} {s.rms:>5g}  {label:14} {r.learned:8.3f} "
                  f"{r.unlearned:9.3f} {r.ratio:6.3f}  {'yes' if r.passed else 'NO':4}  {wall:6.1f}", flush=True)


if __name__ == "__main__":
    main()
