"""Training the psMNIST models (``lmu train psmnist``): the models, the protocol, the records it writes.

Design rule: the core holds what is the same whatever the framework (the model definitions as specs, the data,
the protocol's options, the files written) and imports no framework; each backend's plugin holds one function,
``fit(model, data, options)`` in its ``train`` module, that trains in its framework (with tqdm's progress bar, or
Keras' own) and returns plain NumPy. Checkpoints are ``.npz`` (the LMU's weights through :func:`lmu.save_weights`):
nothing is pickled.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib
import json
import math
import warnings
from typing import Any
from pathlib import Path

import numpy as np

from .checkpoints import Checkpoint
from .errors import ArgumentError, FileError
from .files import atomic_write, write_text
from .progress import bar
from .registry import get_backend
from .spec import Hidden, LMUSpec
from .weights import save_weights

__all__ = ["MODELS", "TRAINERS", "Model", "TrainOptions", "psmnist_model", "prepare", "train", "evaluate",
           "checkpoint_record", "check_resumable", "RESUME_FIXED"]

#: The models ``lmu train psmnist --model`` knows, with what they reproduce.
MODELS = {
    "lmu": "keras-lmu's psMNIST model (Voelker et al. 2019): order 256, θ = 784, SimpleRNN 212 with the input "
           "to the hidden, a kernel of ones, Dense(10): 101,771 parameters",
    "lmu-parallel": "the parallel LMU (Chilkuri & Eliasmith 2021): order 468, θ = 784, a relu dense hidden of 346 "
                    "units with the input, dropout 0.5, Dense(10): about 166k parameters",
    "lstm": "an LSTM of 160 units and Dense(10): about 105k parameters, the LMU's size",
}
#: backend → "module:function" that trains in that framework.
TRAINERS = {"torch": "lmu_torch.train:fit", "keras": "lmu_keras.train:fit"}


@dataclasses.dataclass(frozen=True)
class Model:
    """One of :data:`MODELS`: an LMU spec (None for the LSTM) with the classifier head's dropout."""

    name: str
    spec: LMUSpec | None
    lstm_units: int = 0
    head_dropout: float = 0.0
    classes: int = 10


def psmnist_model(name: str, steps: int = 784, classes: int = 10) -> Model:
    """The model ``name`` for sequences of ``steps`` pixels (θ is the sequence length).

    Examples
    --------
    >>> m = psmnist_model("lmu")
    >>> m.spec.order, m.spec.theta, m.spec.hidden.units
    (256, 784.0, 212)
    """
    if name == "lmu":
        spec = LMUSpec(memory_d=1, order=256, theta=steps, input_d=1, hidden=Hidden("rnn", 212),
                       input_to_hidden=True, kernel_initializer="ones")
        return Model(name, spec, classes=classes)
    if name == "lmu-parallel":
        spec = LMUSpec(memory_d=1, order=468, theta=steps, input_d=1, hidden=Hidden("dense", 346, "relu"),
                       input_to_hidden=True)
        return Model(name, spec, head_dropout=0.5, classes=classes)
    if name == "lstm":
        return Model(name, None, lstm_units=160, classes=classes)
    raise ArgumentError(f"psmnist model must be one of {', '.join(MODELS)} (got {name!r})")


@dataclasses.dataclass(frozen=True)
class TrainOptions:
    """The protocol: Adam at ``lr``, ``batch_size``, gradients clipped to norm ``clip_norm``, ``epochs``, the
    checkpoint with the best validation accuracy evaluated on the test set."""

    epochs: int = 10
    batch_size: int = 100
    lr: float = 1e-3
    clip_norm: float = 1.0
    seed: int = 0
    device: str | None = None
    progress: bool = True

    def __post_init__(self):
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ArgumentError(f"TrainOptions.{name} must be a positive integer (got {value!r})")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ArgumentError(f"TrainOptions.seed must be an integer >= 0 (got {self.seed!r})")
        for name in ("lr", "clip_norm"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value)
                                                                                       and value > 0):
                raise ArgumentError(f"TrainOptions.{name} must be a finite number > 0 (got {value!r})")


def _trainer(backend: str):
    if backend not in TRAINERS:
        raise ArgumentError(f"lmu train --backend must be one of {', '.join(TRAINERS)} (got {backend!r})")
    get_backend(backend)  # a missing framework: BackendUnavailable with the pip install command
    module, func = TRAINERS[backend].split(":")
    return getattr(importlib.import_module(module), func)


def prepare(backend: str, options: TrainOptions, out_dir=None) -> None:
    """Everything that can fail before training, checked before any data is read or framework imported (but torch,
    to check a ``device``): the backend is installed, ``out_dir`` can be created and written (by writing and
    removing a file there), the device exists."""
    if backend not in TRAINERS:
        raise ArgumentError(f"lmu train --backend must be one of {', '.join(TRAINERS)} (got {backend!r})")
    get_backend(backend)  # a missing framework: BackendUnavailable with the pip install command
    if options.device is not None and backend != "torch":
        raise ArgumentError(f"lmu train --device applies to the torch backend (the {backend} backend places its "
                            f"work itself; got --device {options.device!r})")
    if out_dir is not None:
        out = Path(out_dir)
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise FileError(f"lmu train --out {str(out)!r} cannot be created: {err.strerror or err}") from None
        write_text(out / ".lmu-write-check", "")  # raises lmu.FileError naming the path when it cannot
        (out / ".lmu-write-check").unlink()
    if options.device is not None:
        importlib.import_module("lmu_torch.backend").check_device(options.device)


def run_directory(out) -> Path:
    """The directory a new run writes to: ``out`` when it does not exist or is empty, else the first free
    ``out-2``, ``out-3``, ...: a run never overwrites another.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> (root / "run").mkdir(); (root / "run" / "result.json").write_text("{}") and None
    >>> run_directory(root / "run").name, run_directory(root / "new").name
    ('run-2', 'new')
    """
    out = Path(out)
    candidate, n = out, 1
    while candidate.exists() and (not candidate.is_dir() or any(candidate.iterdir())):
        n += 1
        candidate = out.with_name(f"{out.name}-{n}")
    return candidate


def provenance(backend: str, data_path=None, argv=None) -> dict:
    """What reproduces a run: the command line, versions of lmu, Python, NumPy and the backend's framework, and
    the data files with their SHA-256 (read in chunks)."""
    import hashlib
    import platform
    import sys

    from ._version import __version__
    from .registry import backends

    record: dict = {"command": list(sys.argv if argv is None else argv), "lmu": __version__,
                    "python": platform.python_version(), "numpy": np.__version__,
                    "framework": {r.name: r.version for r in backends() if r.name == backend}.get(backend),
                    "platform": platform.platform()}
    if data_path is not None:
        files = {}
        root = Path(data_path)
        for path in sorted(p for p in (root.iterdir() if root.is_dir() else [root]) if p.is_file()):
            digest = hashlib.sha256()
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
            files[path.name] = digest.hexdigest()
        record["data"] = {"path": str(root.resolve()), "sha256": files}
    return record


#: The options a resumed run must keep (its steps would not continue the same training otherwise); ``epochs``
#: may grow, ``device`` and ``progress`` may change.
RESUME_FIXED = ("batch_size", "lr", "clip_norm", "seed")


def checkpoint_record(model: Model, backend: str, options: TrainOptions, history: list[dict], best_epoch: int,
                      best_accuracy: float) -> dict:
    """The JSON record a trainer stores in its checkpoint after an epoch (with its arrays)."""
    return {"model": model.name, "backend": backend, "epoch": len(history), "history": history,
            "best_epoch": best_epoch, "best_accuracy": best_accuracy,
            "options": {name: getattr(options, name) for name in RESUME_FIXED}}


def check_resumable(record: dict, model: Model, backend: str, options: TrainOptions) -> None:
    """Refuse to resume from a checkpoint of another model, backend or protocol (one error naming what differs)."""
    theirs = {"model": record.get("model"), "backend": record.get("backend"), **(record.get("options") or {})}
    ours = {"model": model.name, "backend": backend, **{name: getattr(options, name) for name in RESUME_FIXED}}
    differ = [f"{key} {theirs.get(key)!r} (now {value!r})" for key, value in ours.items() if theirs.get(key) != value]
    if differ:
        raise ArgumentError(f"the checkpoint was written with {', '.join(differ)}: resume it with the settings it "
                            "was started with, or start a new run")
    if not isinstance(record.get("history"), list) or len(record["history"]) != record.get("epoch"):
        raise FileError("the checkpoint's record has no consistent history: not an lmu train checkpoint")


def train(backend: str, model: Model, data: dict, options: TrainOptions, out_dir=None,
          record: dict | None = None, resume: bool = False) -> dict:
    """Train ``model`` on ``data`` (:func:`lmu.datasets.load_psmnist`'s splits) with ``backend``'s framework.

    Returns a dict: ``model``, ``backend``, ``params``, ``history`` (one dict per epoch: train and validation loss
    and accuracy, seconds), ``best_epoch``, ``test_loss``, ``test_accuracy``, ``seconds_per_epoch``,
    ``hardware``. With ``out_dir`` it writes ``run.json`` (what the run is, to resume it) before the first epoch,
    ``checkpoint.npz`` (parameters, optimizer state, history) after every epoch, and at the end ``history.csv``,
    ``result.json``, the best checkpoint (``lmu_weights.npz`` and ``head.npz``, or ``lstm.npz``) and
    ``curves.png`` (with matplotlib). ``record`` (:func:`provenance`) is stored in ``run.json`` and
    ``result.json`` as ``provenance``. ``resume=True`` continues the run in ``out_dir`` from its checkpoint, up to
    ``options.epochs``: a resumed run takes the same steps as one never stopped.
    """
    prepare(backend, options, out_dir)
    fit = _trainer(backend)
    checkpoint = None
    if out_dir is not None:
        out = Path(out_dir)
        checkpoint = Checkpoint(out / "checkpoint.npz")
        if resume and not checkpoint.exists():
            raise FileError(f"{str(out)!r} has no checkpoint.npz: the run finished no epoch to resume from (start "
                            "it again without --resume)")
        if not resume and checkpoint.exists():
            raise ArgumentError(f"{str(out)!r} holds a run already: resume it with --resume, or write elsewhere")
        write_text(out / "run.json", json.dumps({"backend": backend, "model": model.name,
                                                  "options": dataclasses.asdict(options),
                                                  "provenance": record}, indent=2))
    elif resume:
        raise ArgumentError("train(resume=True) needs the out_dir of the run to resume")
    result = fit(model, data, options, checkpoint=checkpoint)
    arrays = result.pop("arrays")
    weights = result.pop("weights", None)
    summary = {"model": model.name, "backend": backend, **result,
               "seconds_per_epoch": float(np.mean([h["seconds"] for h in result["history"]])),
               "options": dataclasses.asdict(options),
               "examples": {name: len(split) for name, split in data.items()}}
    if record is not None:
        summary["provenance"] = record
    if out_dir is not None:
        out = Path(out_dir)  # every file written atomically: an interrupted run leaves no half-written file
        _write_history(out / "history.csv", summary["history"])
        write_text(out / "result.json", json.dumps(summary, indent=2))
        if weights is not None and model.spec is not None:
            save_weights(out / "lmu_weights.npz", model.spec, weights)
        with atomic_write(out / ("head.npz" if weights is not None else "lstm.npz")) as f:
            np.savez(f, **arrays)
        _plot(out / "curves.png", summary)
    return summary


def _write_history(path: Path, history: list[dict]) -> None:
    with atomic_write(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)


def _plot(path: Path, summary: dict) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    epochs = [h["epoch"] for h in summary["history"]]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.2))
    for key, label in (("train_loss", "train"), ("val_loss", "validation")):
        ax1.plot(epochs, [h[key] for h in summary["history"]], marker="o", label=label)
    for key, label in (("train_accuracy", "train"), ("val_accuracy", "validation")):
        ax2.plot(epochs, [h[key] for h in summary["history"]], marker="o", label=label)
    ax1.set(xlabel="epoch", ylabel="loss (cross-entropy)")
    ax2.set(xlabel="epoch", ylabel="accuracy (fraction correct)")
    from matplotlib.ticker import MaxNLocator

    for ax in (ax1, ax2):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    ax2.legend()
    fig.suptitle(f"{summary['model']} ({summary['backend']}): test accuracy {summary['test_accuracy']:.4f}")
    fig.tight_layout()
    with atomic_write(path) as f:
        fig.savefig(f, dpi=100, format="png")
    plt.close(fig)


class _Progress:
    """lmu 0.4's progress callable, ``Progress(label, enabled)(done, total, **values)``, over
    :func:`lmu.progress.bar`."""

    def __init__(self, label: str, enabled: bool = True, stream=None):
        self.label, self.enabled, self.stream = label, enabled, stream
        self._bar: Any = None

    def __call__(self, done: int, total: int, **values) -> None:
        if self._bar is None:
            self._bar = bar(total, self.label, self.enabled, self.stream)
        progress = self._bar
        progress.update(done - progress.n)
        if values:
            progress.set_postfix(**values)
        if done >= total:
            progress.close()


def __getattr__(name):
    if name == "Progress":
        warnings.warn("lmu.train.Progress is deprecated and will be removed in lmu 0.6: use lmu.progress.bar",
                      DeprecationWarning, stacklevel=2)
        return _Progress
    raise AttributeError(f"module 'lmu.train' has no attribute {name!r}")


def evaluate(run_dir, data=None) -> dict:
    """Evaluate a saved ``lmu train`` run on its test split with the NumPy reference (no framework needed).

    Reads ``result.json`` (its data path, permutation seed, validation size and limit) and the best checkpoint
    (``lmu_weights.npz`` and ``head.npz``); ``data`` overrides the recorded data directory. Returns
    ``{"test_accuracy", "recorded", "examples", "data"}``. An ``lstm`` run is refused: its weights are its
    framework's, not an LMU's.
    """
    from . import datasets
    from .files import read_bounded
    from .npz import Archive
    from .registry import build, run
    from .weights import load_weights

    run_dir = Path(run_dir)
    try:
        result = json.loads(read_bounded(run_dir / "result.json", 16 << 20, "lmu train's result.json"))
    except json.JSONDecodeError as err:
        raise FileError(f"{str(run_dir / 'result.json')!r} is not JSON ({err.msg}): not an lmu train run") from None
    if not isinstance(result, dict) or result.get("model") not in MODELS:
        raise FileError(f"{str(run_dir)!r} does not hold an lmu train run (result.json names no known model)")
    if result["model"] == "lstm":
        raise ArgumentError(f"{str(run_dir)!r} is an lstm run: its weights are its framework's, not an LMU's; "
                            "lmu eval evaluates LMU runs")
    record = result.get("provenance") or {}
    data = data if data is not None else (record.get("data") or {}).get("path")
    if data is None:
        raise ArgumentError(f"{str(run_dir)!r} does not record its data directory: give it with --data DIR")
    spec, weights = load_weights(run_dir / "lmu_weights.npz")
    units = spec.output_size
    with Archive(run_dir / "head.npz", what="the classifier head of an lmu train run") as archive:
        kernel = archive.read("head/kernel", shape=(units, 10), kinds="f", max_bytes=units * 10 * 8)
        bias = archive.read("head/bias", shape=(10,), kinds="f", max_bytes=80)
    splits = datasets.load_psmnist(data, seed=int(record.get("permutation_seed", 0)),
                                   validation=int(record.get("validation", result["examples"]["validation"])),
                                   limit=record.get("limit"))
    test = splits["test"]
    logits = run(build(spec, backend="numpy", weights=weights), test.x) @ kernel + bias
    accuracy = float(np.mean(logits.argmax(-1) == test.y))
    return {"test_accuracy": accuracy, "recorded": result.get("test_accuracy"), "examples": len(test.y),
            "data": str(data)}
