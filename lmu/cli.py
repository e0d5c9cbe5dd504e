"""The ``lmu`` command line: ``backends``, ``check``, ``demo``, ``plot basis``, ``spec``, ``train`` and ``eval``.

Design rule: every command but ``train`` works with the core alone (NumPy backend, no framework); a user error
prints one line starting ``lmu: error:`` and exits with status 2, a failed conformance check exits with status 1.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import warnings

from ._version import __version__
from .errors import ArgumentError, BackendUnavailable, LMUError
from .files import read_bounded, write_text
from .spec import MAX_JSON
from .registry import backends as list_backends
from .registry import get_backend

__all__ = ["main"]


def _table(rows, header) -> str:
    rows = [header] + [[("-" if v is None else str(v)) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cmd_backends(args) -> int:
    rows = list_backends()
    if args.json:
        print(json.dumps([r.to_dict() for r in rows], indent=2))
        return 0
    table = [[r.name, "available" if r.available else "missing", r.version, r.provider,
              ("(core)" if not r.extra else f"installed (extra {r.extra})") if r.available else r.reason]
             for r in rows]
    print(_table(table, ["backend", "status", "version", "provider", "install / reason"]))
    return 0


def _cmd_check(args) -> int:
    from . import testing
    from .progress import bar

    if not args.verbose:  # the frameworks' own log lines would bury the result
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        warnings.filterwarnings("ignore")
        import logging

        for framework in ("tensorflow", "absl", "jax", "torch"):  # their Python loggers (tf.function retracing...)
            logging.getLogger(framework).setLevel(logging.ERROR)
    names = [args.backend] if args.backend else [r.name for r in list_backends()]
    rows: list[list] = []
    failed: list = []
    notes: list[str] = []
    records: list[dict] = []
    for name in names:
        try:
            get_backend(name)
        except BackendUnavailable as err:
            if args.backend:
                raise
            rows.append([name, "-", "-", "-", "-", "-", "skipped (not installed)"])
            notes.append(f"{name}: {err}")
            records.append({"backend": name, "skipped": str(err)})
            continue
        if not args.verbose:
            _import_quietly(get_backend(name).requires)
        progress = bar(0, f"checking {name}", enabled=not args.json)

        def tick(done, total, progress=progress):
            progress.total = total
            progress.update(done - progress.n)

        report = testing.check_backend(name, quick=args.quick, every_option_set=True, progress=tick)
        progress.close()
        errors = report.max_errors
        cases = len({r.case for r in report.results})
        limit = report.nrmse_limit
        worst = None
        if limit is None:
            measured = [f"{errors.get('float64', 0.0):.1e}", f"{errors.get('float32', 0.0):.1e}"]
        else:  # an approximate backend (spiking hardware): its own battery, NRMSE against the reference
            nrmse = [r for r in report.results if r.check == "nrmse" and r.error is not None]
            worst = max((float(r.error) for r in nrmse if r.error is not None), default=0.0)
            measured = ["-", f"NRMSE {worst:.3f} (≤ {limit})"]
            notes.extend(f"{name} {r.case}: NRMSE {r.error:.3f}" for r in nrmse)
        rows.append([name, cases, len(report.refused), *measured,
                     f"{report.seconds:.1f}s", "PASS" if report.passed else f"FAIL ({len(report.failures)})"])
        failed.extend(report.failures)
        records.append({"backend": name, "cases": cases, "refused": list(report.refused),
                        "max_error": {k: float(v) for k, v in errors.items()}, "nrmse": worst, "nrmse_limit": limit,
                        "seconds": round(report.seconds, 2), "passed": report.passed,
                        "failures": [str(f) for f in report.failures]})
        if report.refused and args.verbose:
            notes.append(f"{name} refuses: {', '.join(report.refused)}")
    if args.json:
        print(json.dumps(records, indent=2))
        return 1 if failed else 0
    header = ["backend", "cases", "refused", "err f64", "err f32", "time", "result"]
    print(_table(rows, header))
    print("err: the largest relative error against the float64 reference (limit 1e-9 in f64, 2e-5 in f32)")
    for line in notes:
        print(line)
    for result in failed:
        print(f"FAILED {result}")
    return 1 if failed else 0


def _import_quietly(modules) -> None:
    """Import a backend's frameworks with the process's stderr closed: TensorFlow's C++ logging writes there
    before Python can silence it. Errors are not hidden: a failing import raises here as it would later."""
    import importlib

    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            for module in modules:
                importlib.import_module(module)
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _cmd_demo(args) -> int:
    from . import demo

    if args.plot:  # a format matplotlib cannot write is refused before the work, not after
        from .plots import figure_format

        figure_format(args.plot)

    print(f"An untrained LMU (no kernel, no hidden cell, θ = {demo.THETA} steps) fed white noise band-limited to "
          "1 cycle per θ;\nthe input delayed by r·θ is decoded from the memory with the Legendre readout.\n")
    table = demo.delay_table(seed=args.seed)
    print("NRMSE of u(t − r·θ), by order and delay r:")
    print(_table([[f"order {res.order}"] + [f"{e:.4f}" for e in res.nrmse] for res in table],
                 [""] + [f"r={r:g}" for r in demo.DELAYS]))
    curves = demo.bandwidth_table(seed=args.seed)
    print("\nMean NRMSE over r in [0, 1] as the input's band limit grows (cycles per θ):")
    print(_table([[f"order {q}"] + [f"{e:.4f}" for _, e in curve] for q, curve in curves.items()],
                 [""] + [f"{b:g}" for b in demo.BANDS]))
    print("\nMore coefficients hold faster signals; no order holds what changes much faster than its window.")
    if args.plot:
        from .plots import plot_demo

        plot_demo(args.plot, seed=args.seed)
        print(f"\nwrote {args.plot}")
    return 0


def _cmd_plot(args) -> int:
    from .plots import plot_basis

    plot_basis(args.order, args.output)
    print(f"wrote {args.output}")
    return 0


def _cmd_spec(args) -> int:
    from .spec import LMUSpec, json_schema
    from .weights import weight_shapes

    if args.schema:
        print(json.dumps(json_schema(), indent=2))
        return 0
    if args.file is None:
        raise ArgumentError("lmu spec needs a spec FILE to check (or --schema to print the JSON schema)")
    spec = LMUSpec.from_json(read_bounded(args.file, MAX_JSON, "spec file (JSON)"))
    text = json.dumps(spec.to_dict(), indent=2)
    if args.output:
        write_text(args.output, text + "\n")  # atomically: a failure leaves an older file as it was
    else:
        print(text)
    shapes = weight_shapes(spec)
    params = sum(int(math.prod(s)) for s in shapes.values())
    print(f"# valid: output size {spec.output_size}, {params} trainable parameters, "
          f"{'LTI (parallel form allowed)' if spec.is_lti else 'not LTI (step loop)'}", file=sys.stderr)
    return 0


def _cmd_train(args) -> int:
    from . import datasets
    from .train import TrainOptions, prepare, provenance, psmnist_model, run_directory, train

    if args.resume is not None:
        out, recorded = _resume_arguments(args)
    elif args.data is None:
        raise ArgumentError("lmu train psmnist needs --data DIR (or --resume RUN_DIR to continue a run)")
    if args.epochs is None:
        args.epochs = _TRAIN_DEFAULTS["epochs"]
    options = TrainOptions(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                           device=args.device, progress=not args.no_progress)
    if args.resume is None:
        out = run_directory(args.out or f"runs/psmnist-{args.model}-{args.backend}-seed{args.seed}")
    prepare(args.backend, options, out)  # every mistake found before the data is read or a step is taken
    data = datasets.load_psmnist(args.data, seed=args.permutation_seed, validation=args.validation, limit=args.limit)
    if args.train_limit is not None:
        data["train"] = datasets.Split(data["train"].x[:args.train_limit], data["train"].y[:args.train_limit])
    steps = data["train"].x.shape[1]
    model = psmnist_model(args.model, steps=steps)
    print(f"psMNIST from {args.data}: {', '.join(f'{k} {len(v)}' for k, v in data.items())} sequences of "
          f"{steps} steps; model {args.model}: {_MODEL_LINE.get(args.model, '')}")
    record = provenance(args.backend, args.data, argv=args.argv)
    record.update(permutation_seed=args.permutation_seed, validation=args.validation, limit=args.limit,
                  train_limit=args.train_limit)
    if args.resume is not None:
        if recorded.get("data") != record.get("data"):
            raise ArgumentError(f"the data in {args.data!r} is not the data the run started with (its files or "
                                "their SHA-256 differ): resume with the same data, or start a new run")
        record = {**recorded, "resumed": [*recorded.get("resumed", []), record["command"]]}
    result = train(args.backend, model, data, options, out_dir=out, record=record, resume=args.resume is not None)
    rows = [[h["epoch"], f"{h['train_loss']:.4f}", f"{h['train_accuracy']:.4f}", f"{h['val_loss']:.4f}",
             f"{h['val_accuracy']:.4f}", f"{h['seconds']:.1f}"] for h in result["history"]]
    print(_table(rows, ["epoch", "train loss", "train acc", "val loss", "val acc", "seconds"]))
    print(f"test accuracy {result['test_accuracy']:.4f} (loss {result['test_loss']:.4f}) with the best validation "
          f"epoch ({result['best_epoch']}); {result['params']:,} parameters; {result['seconds_per_epoch']:.1f} s per "
          f"epoch on {result['hardware']}; wrote {out}/")
    return 0


#: ``lmu train psmnist``'s defaults: the option table and --resume's check of what was given.
_TRAIN_DEFAULTS = {"backend": "torch", "model": "lmu", "epochs": 10, "batch_size": 100, "lr": 1e-3, "limit": None,
                   "train_limit": None, "validation": 10000, "seed": 0, "permutation_seed": 0, "device": None,
                   "out": None, "data": None}
#: What --resume takes from the run (the rest may be given again: --epochs to train longer, --device, progress).
_RESUMED = ("data", "backend", "model", "batch_size", "lr", "limit", "train_limit", "validation", "seed",
            "permutation_seed", "out")


def _resume_arguments(args):
    """Fill ``args`` from RUN_DIR/run.json; an option given with another value than the run's is an error."""
    from pathlib import Path

    run = Path(args.resume)
    try:
        saved = json.loads(read_bounded(run / "run.json", MAX_JSON, "lmu train's run.json"))
    except json.JSONDecodeError as err:
        raise ArgumentError(f"{str(run / 'run.json')!r} is not JSON ({err.msg}): not an lmu train run") from None
    record = saved.get("provenance") if isinstance(saved, dict) else None
    if not isinstance(record, dict) or not isinstance(saved.get("options"), dict):
        raise ArgumentError(f"{str(run)!r} does not hold an lmu train run that can be resumed (its run.json "
                            "records no options)")
    recorded = {"backend": saved.get("backend"), "model": saved.get("model"),
                "data": (record.get("data") or {}).get("path"), "out": str(run),
                **{k: saved["options"].get(k) for k in ("batch_size", "lr", "seed")},
                **{k: record.get(k) for k in ("limit", "train_limit", "validation", "permutation_seed")}}
    for name in _RESUMED:
        given = getattr(args, name)
        if name == "out" and given is not None:
            given = str(Path(given))
        if given != _TRAIN_DEFAULTS[name] and given != recorded[name]:
            raise ArgumentError(f"lmu train --resume: --{name.replace('_', '-')} {given} differs from the run's "
                                f"{recorded[name]}; a resumed run keeps its settings (only --epochs, --device and "
                                "--no-progress may change)")
        setattr(args, name, recorded[name])
    if args.epochs is None:
        args.epochs = saved["options"].get("epochs")
    return run, record


def _cmd_eval(args) -> int:
    from .train import evaluate

    result = evaluate(args.run, data=args.data)
    recorded = result["recorded"]
    print(f"test accuracy {result['test_accuracy']:.4f} on {result['examples']} sequences of {result['data']}, "
          f"with the NumPy reference" + (f" (recorded at training: {recorded:.4f})" if recorded is not None else ""))
    return 0


_MODEL_LINE = {"lmu": "order 256, rnn 212", "lmu-parallel": "order 468, dense 346 (relu)", "lstm": "LSTM 160"}


def _spec_fields_help(width: int = 100) -> str:
    """The spec's fields, from the field table (``lmu.spec.SPEC_FIELDS``), for ``lmu spec --help``."""
    import textwrap

    from .spec import HIDDEN_FIELDS, SPEC_FIELDS, field_rows

    lines = []
    for title, table in (("LMUSpec fields", SPEC_FIELDS), ("Hidden fields (the value of \"hidden\")", HIDDEN_FIELDS)):
        lines.append(f"{title}:")
        for name, accepts, default, help_ in field_rows(table):
            lines.append(f"  {name} = {default}: {accepts}")
            lines.extend(textwrap.wrap(help_, width, initial_indent="      ", subsequent_indent="      "))
        lines.append("")
    return "\n".join(lines)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer (got {text!r})") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer (got {value})")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0 (got {text!r})")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0 (got {text!r})")
    return value


def _name(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("must name a backend (got an empty name); lmu backends lists them")
    return text


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Each option's default after its help; the description and the examples as written."""

    def _get_help_string(self, action):
        text = action.help or ""
        if any(action.default is v for v in (None, False, argparse.SUPPRESS)) or "(default" in text or "default " in text:
            return text
        return f"{text} (default: %(default)s)"


_TRAIN_DESCRIPTION = """Train a psMNIST classifier: each 28x28 image becomes a sequence of 784 pixels in a fixed
random order, one pixel per step, and the model names the class after the last step. Adam,
gradients clipped per variable; the epoch with the best validation accuracy is evaluated on
the test set. Every run writes its own directory: run.json (what the run is), checkpoint.npz
(after each epoch, for --resume), history.csv, result.json, the best weights, curves.png."""

_TRAIN_EXAMPLES = """examples:
  # Fashion-MNIST from Debian's dataset-fashion-mnist, the LMU in torch, 10 epochs
  lmu train psmnist --data /usr/share/datasets/fashion-mnist --out runs/lmu
  # a quick look: one epoch on 1,000 examples
  lmu train psmnist --data /usr/share/datasets/fashion-mnist --epochs 1 --limit 1000
  # it was stopped (Ctrl-C, a lost machine): go on from the last completed epoch, up to 20 epochs
  lmu train psmnist --resume runs/lmu --epochs 20
  # evaluate the saved best checkpoint again, with the NumPy reference
  lmu eval runs/lmu
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lmu", description="The Legendre Memory Unit, described once and "
                                     "built in any framework.")
    parser.add_argument("--version", action="version", version=f"lmu {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("backends", help="list backends: installed, missing, and how to install them")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_cmd_backends)

    p = sub.add_parser("check", help="run the conformance kit on every installed backend (exit 1 on failure)")
    p.add_argument("--backend", metavar="NAME", type=_name, help="check only this backend")
    p.add_argument("--quick", action="store_true", help="a 20-case subset of the battery (10 specs in 2 dtypes)")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="also list refused cases, and let the frameworks print their own log lines")
    p.add_argument("--json", action="store_true", help="machine-readable results on stdout (no progress bars)")
    p.set_defaults(func=_cmd_check)

    p = sub.add_parser("demo", help="an untrained LMU reconstructs delayed band-limited white noise")
    p.add_argument("--plot", metavar="FILE", help="also draw input, memory and reconstructions (PNG, SVG, PDF)")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the white noise")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("plot", help="draw a figure")
    what = p.add_subparsers(dest="figure", required=True, metavar="FIGURE")
    b = what.add_parser("basis", help="the shifted Legendre basis")
    b.add_argument("--order", type=_positive_int, default=12, help="how many polynomials (1 to 64; default 12)")
    b.add_argument("-o", "--output", required=True, metavar="FILE")
    b.set_defaults(func=_cmd_plot)

    p = sub.add_parser("train", help="train a benchmark model (psMNIST) and record its curves")
    task = p.add_subparsers(dest="task", required=True, metavar="TASK")
    t = task.add_parser("psmnist", help="permuted sequential MNIST (or Fashion-MNIST) from MNIST-format files",
                        description=_TRAIN_DESCRIPTION,
                        epilog=_TRAIN_EXAMPLES, formatter_class=_HelpFormatter)
    d = _TRAIN_DEFAULTS
    t.add_argument("--data", default=d["data"], metavar="DIR",
                   help="a directory with the four IDX files (gzipped or not) or Keras' mnist.npz; Debian's "
                        "dataset-fashion-mnist installs Fashion-MNIST in /usr/share/datasets/fashion-mnist "
                        "(required, unless --resume)")
    t.add_argument("--backend", default=d["backend"], choices=("torch", "keras"), help="the framework that trains")
    t.add_argument("--model", default=d["model"], choices=("lmu", "lmu-parallel", "lstm"),
                   help="lmu: keras-lmu's psMNIST LMU (order 256, SimpleRNN 212, 101,771 parameters); "
                        "lmu-parallel: order 468, relu dense 346, dropout 0.5; lstm: LSTM 160, the LMU's size")
    t.add_argument("--epochs", type=_positive_int, default=None, metavar="N",
                   help=f"epochs to train (default: {d['epochs']}; with --resume: the total to reach, default the "
                        "run's)")
    t.add_argument("--batch-size", type=_positive_int, default=d["batch_size"], metavar="N",
                   help="sequences per training step")
    t.add_argument("--lr", type=_positive_float, default=d["lr"], metavar="RATE", help="Adam's learning rate")
    t.add_argument("--limit", type=_positive_int, default=d["limit"], metavar="N",
                   help="use only the first N training, validation and test examples (quick runs; default all)")
    t.add_argument("--train-limit", type=_positive_int, default=d["train_limit"], metavar="N",
                   help="use only the first N training examples (validation and test stay whole; default all)")
    t.add_argument("--validation", type=_positive_int, default=d["validation"], metavar="N",
                   help="the last N training images are the validation set (MNIST's 60k: 50k train, 10k validation)")
    t.add_argument("--seed", type=_seed, default=d["seed"], metavar="N", help="seed of the initial weights, batch order, dropout")
    t.add_argument("--permutation-seed", type=_seed, default=d["permutation_seed"], metavar="N",
                   help="seed of the fixed pixel permutation")
    t.add_argument("--device", default=d["device"],
                   help="torch device, e.g. cpu, cuda, cuda:1 (default: cuda if available, else cpu)")
    t.add_argument("--out", metavar="DIR", default=d["out"],
                   help="the run's directory (default runs/psmnist-MODEL-BACKEND-seedS); a directory holding "
                        "files is never overwritten: the run goes to DIR-2, DIR-3, ...")
    t.add_argument("--resume", metavar="RUN_DIR", default=None,
                   help="continue the run in RUN_DIR from its last completed epoch (its settings and data come "
                        "from RUN_DIR/run.json; --epochs sets the total to reach)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar (epoch bar with ETA and running "
                                                                 "loss and accuracy otherwise)")
    t.set_defaults(func=_cmd_train)

    p = sub.add_parser("eval", help="evaluate a saved lmu train run on its test split (NumPy reference)")
    p.add_argument("run", metavar="RUN_DIR", help="the directory lmu train wrote")
    p.add_argument("--data", metavar="DIR", default=None, help="the data directory, if not the one recorded")
    p.set_defaults(func=_cmd_eval)

    p = sub.add_parser("spec", help="validate a spec JSON file and print it normalized",
                       description="Validate an LMU spec JSON file (as LMUSpec.to_json writes it) and print it\n"
                                   "normalized, or print the JSON schema of such files.",
                       epilog=_spec_fields_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", nargs="?", help="the spec file (JSON)")
    p.add_argument("-o", "--output", metavar="FILE", help="write the normalized spec to FILE instead of printing it")
    p.add_argument("--schema", action="store_true", help="print the JSON schema of a spec file and exit")
    p.set_defaults(func=_cmd_spec)
    return parser


def main(argv=None) -> int:
    """Entry point of the ``lmu`` console script and ``python -m lmu``: 0 on success, 1 for a failed check, 2 for a
    usage error (one line on stderr, no traceback), 130 when interrupted."""
    args = _parser().parse_args(argv)
    args.argv = ["lmu", *(sys.argv[1:] if argv is None else argv)]  # for the records of lmu train
    try:
        return args.func(args)
    except (LMUError, OSError) as err:
        print(f"lmu: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lmu: interrupted", file=sys.stderr)
        return 130
