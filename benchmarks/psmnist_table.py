"""Print the psMNIST results that ``lmu train`` wrote (``result.json`` files under a directory) as one table.

    python benchmarks/psmnist_table.py runs/psfashion

One row per protocol and model: test accuracy as the mean over seeds ± half the spread (max − min), parameters,
seconds per epoch and the hardware, as recorded by each run.
"""

import json
import sys
from collections import defaultdict
from pathlib import Path


def main(root):
    groups = defaultdict(list)
    for path in sorted(Path(root).resolve().rglob("result.json")):
        result = json.loads(path.read_text())
        protocol = path.parent.name.split("-")[0]  # runs are named PROTOCOL-MODEL-seedN
        groups[(protocol, result["model"], result["backend"])].append(result)
    print("| protocol | model | backend | test accuracy | seeds | params | s/epoch | train examples | epochs | hardware |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for (protocol, model, backend), runs in sorted(groups.items()):
        acc = [r["test_accuracy"] for r in runs]
        mean, half = sum(acc) / len(acc), (max(acc) - min(acc)) / 2
        secs = sum(r["seconds_per_epoch"] for r in runs) / len(runs)
        print(f"| {protocol} | {model} | {backend} | {100 * mean:.2f} ± {100 * half:.2f} % | {len(runs)} | "
              f"{runs[0]['params']:,} | {secs:.1f} | {runs[0]['examples']['train']} | "
              f"{runs[0]['options']['epochs']} | {runs[0]['hardware']} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/psfashion")
