"""Draw the validation-accuracy curves of the psMNIST runs under a directory (``history.csv`` of each run).

    python benchmarks/psmnist_curves.py runs/psfashion -o docs/_static/psfashion_curves.png [--protocol full]
"""

import argparse
import csv
import json
from collections import defaultdict
from pathlib import Path


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("root")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--protocol", default="full")
    args = p.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = defaultdict(list)
    hardware = set()
    for path in sorted(Path(args.root).rglob("history.csv")):
        if not path.parent.name.startswith(args.protocol + "-"):
            continue
        model = path.parent.name[len(args.protocol) + 1:].rsplit("-seed", 1)[0]  # PROTOCOL-MODEL-seedN
        result_path = path.parent / "result.json"
        result = json.loads(result_path.read_text()) if result_path.exists() else {}
        if "hardware" in result:
            hardware.add(result["hardware"])
        with open(path) as f:
            rows = list(csv.DictReader(f))
        curves[model].append(([int(r["epoch"]) for r in rows], [100 * float(r["val_accuracy"]) for r in rows]))
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for k, (model, runs) in enumerate(sorted(curves.items())):
        for i, (epochs, acc) in enumerate(runs):
            ax.plot(epochs, acc, marker="o", ms=3, color=f"C{k}",
                    label=f"{model} ({len(runs)} seed{'s' if len(runs) > 1 else ''})" if i == 0 else None)
    ax.set(xlabel="epoch", ylabel="validation accuracy (%)",
           title=f"psFashion-MNIST, {args.protocol} protocol" + (f" ({', '.join(sorted(hardware))})" if hardware else ""))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    from lmu.files import atomic_write

    with atomic_write(args.output) as f:  # like every file lmu writes: a failure leaves an older figure intact
        fig.savefig(f, dpi=110, format=Path(args.output).suffix.lstrip(".") or "png")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
