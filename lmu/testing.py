"""The conformance kit: the battery of specs and the checks every backend's tests run against the reference.

Design rule: one battery, fixed tolerances, and checks that can fail. A backend conforms when, for every case it
does not refuse, its outputs equal the NumPy reference's (run step by step, in float64) within 1e-9 relative in
float64 and 2e-5 relative in float32, its weights round-trip through the canonical layout, and a sequence run in
chunks with the state passed on equals the sequence run whole. Relative errors are ``max|y − y_ref| / max|y_ref|``.
The kit's own tests run it on deliberately broken backends to show that it catches them.

A plugin's test file reuses it like this::

    import pytest, lmu.testing as kit

    @pytest.mark.parametrize("case", kit.cases(), ids=str)
    def test_conformance(case):
        kit.assert_conforms("torch", case)
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

import warnings
from collections.abc import Callable

from . import legendre
from .backend import EXACT, modes_that_apply
from .errors import UnsupportedSpec
from .reference import ReferenceLMU
from .registry import build, get_backend, get_weights, run, set_weights
from .signals import nrmse, white_noise
from .spec import Hidden, LMUSpec
from .weights import LMUWeights, init_weights

__all__ = [
    "TOLERANCE",
    "CHECKS",
    "Case",
    "Result",
    "Report",
    "cases",
    "tolerance",
    "relative_error",
    "case_weights",
    "case_input",
    "reference_output",
    "option_sets",
    "battery_of",
    "check_case",
    "check_backend",
    "assert_conforms",
]

#: The fixed relative tolerances, by dtype.
TOLERANCE = {"float64": 1e-9, "float32": 2e-5}
#: The checks run on every case: outputs vs the reference, the weights round trip, chunked streaming, NaN input.
CHECKS = ("outputs", "weights", "streaming", "nan")


@dataclasses.dataclass(frozen=True)
class Case:
    """One conformance case: a spec, a sequence length and a batch size."""

    id: str
    spec: LMUSpec
    steps: int = 40
    batch: int = 2

    def __str__(self):
        return self.id


@dataclasses.dataclass
class Result:
    """The outcome of one check on one case."""

    case: str
    check: str
    passed: bool
    error: float | None = None
    tolerance: float | None = None
    seconds: float = 0.0
    message: str = ""
    refused: bool = False

    def __str__(self):
        status = "refused" if self.refused else ("ok" if self.passed else "FAIL")
        err = "" if self.error is None else f" error {self.error:.2e} (tol {self.tolerance:.0e})"
        return f"{self.case} [{self.check}] {status}{err}{': ' + self.message if self.message else ''}"


@dataclasses.dataclass
class Report:
    """All results of :func:`check_backend` for one backend."""

    backend: str
    results: list[Result]
    seconds: float
    #: None for an exact backend; the NRMSE limit of an approximate one (its results are NRMSEs).
    nrmse_limit: float | None = None

    @property
    def passed(self) -> bool:
        """True when no check failed (refused cases do not fail)."""
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> list[Result]:
        """The results that failed."""
        return [r for r in self.results if not r.passed]

    @property
    def refused(self) -> list[str]:
        """The ids of the cases the backend refused (its ``check(spec)`` gave reasons)."""
        return sorted({r.case for r in self.results if r.refused})

    @property
    def max_error(self) -> float:
        """The largest finite relative error over every check."""
        return max(self.max_errors.values(), default=0.0)

    @property
    def max_errors(self) -> dict[str, float]:
        """The largest finite relative error per dtype, e.g. ``{"float64": 3e-15, "float32": 9e-8}``."""
        dtype_of = {tol: dtype for dtype, tol in TOLERANCE.items()}
        out: dict[str, float] = {}
        for r in self.results:
            if r.error is not None and np.isfinite(r.error) and r.tolerance in dtype_of:
                dtype = dtype_of[r.tolerance]
                out[dtype] = max(out.get(dtype, 0.0), r.error)
        return out


# ------------------------------------------------------------------------------------------------- the battery
def _battery() -> list[tuple[str, dict, int, int]]:
    H = Hidden
    base = dict(memory_d=1, order=8, theta=16.0, input_d=2)
    rows = [
        ("memory-only", {}, 40, 2),
        ("memory-only-seq", dict(return_sequences=True), 40, 2),
        ("dense-linear", dict(hidden=H("dense", 5)), 40, 2),
        ("dense-tanh-seq", dict(hidden=H("dense", 5, "tanh"), return_sequences=True), 40, 2),
        ("dense-relu", dict(hidden=H("dense", 5, "relu")), 40, 2),
        ("dense-sigmoid-nobias", dict(hidden=H("dense", 5, "sigmoid", use_bias=False)), 40, 2),
        ("rnn-tanh-seq", dict(hidden=H("rnn", 6), return_sequences=True), 40, 3),
        ("rnn-relu", dict(hidden=H("rnn", 6, "relu")), 40, 2),
        ("rnn-linear-nobias", dict(hidden=H("rnn", 6, "linear", use_bias=False)), 40, 2),
        ("rnn-sigmoid", dict(hidden=H("rnn", 6, "sigmoid")), 40, 2),
        ("lstm-seq", dict(hidden=H("lstm", 4), return_sequences=True), 40, 2),
        ("lstm-relu-tanhgates", dict(hidden=H("lstm", 4, "relu", recurrent_activation="tanh")), 40, 2),
        ("lstm-nobias", dict(hidden=H("lstm", 4, use_bias=False)), 40, 2),
        ("input-to-hidden", dict(input_to_hidden=True, return_sequences=True), 40, 2),
        ("input-to-hidden-rnn", dict(hidden=H("rnn", 6), input_to_hidden=True), 40, 2),
        ("hidden-to-memory-rnn-seq", dict(hidden=H("rnn", 6), hidden_to_memory=True, return_sequences=True),
         40, 2),
        ("hidden-to-memory-dense", dict(hidden=H("dense", 5, "tanh"), hidden_to_memory=True), 40, 2),
        ("hidden-to-memory-lstm", dict(hidden=H("lstm", 4), hidden_to_memory=True, return_sequences=True),
         40, 2),
        ("memory-to-memory", dict(memory_to_memory=True, return_sequences=True), 40, 2),
        ("memory-to-memory-rnn-long", dict(hidden=H("rnn", 6), memory_to_memory=True), 600, 2),
        ("bias", dict(use_bias=True, hidden=H("rnn", 6), return_sequences=True), 40, 2),
        ("no-kernel", dict(kernel_initializer=None, memory_d=2, return_sequences=True), 40, 2),
        ("no-kernel-hidden-to-memory", dict(kernel_initializer=None, input_d=1, memory_d=4,
                                            hidden=H("rnn", 3), hidden_to_memory=True), 40, 2),
        ("trainable-theta", dict(trainable_theta=True, hidden=H("dense", 5, "tanh"), return_sequences=True),
         40, 2),
        ("euler", dict(discretizer="euler", theta=40.0, return_sequences=True), 60, 2),
        ("bilinear", dict(discretizer="bilinear", hidden=H("rnn", 6)), 40, 2),
        ("memory-d-3", dict(memory_d=3, hidden=H("lstm", 4), return_sequences=True), 40, 2),
        ("dropout-ignored", dict(dropout=0.3, recurrent_dropout=0.2, memory_to_memory=True,
                                 hidden=H("rnn", 6)), 40, 2),
        ("long-theta", dict(order=64, theta=784.0, input_d=1, hidden=H("rnn", 8)), 300, 2),
        ("theta-above-T", dict(theta=500.0, return_sequences=True), 50, 2),
        ("theta-far-below-T", dict(order=4, theta=5.0, input_d=1, hidden=H("dense", 3, "relu"),
                                   return_sequences=True), 2000, 1),
        ("T-1", dict(hidden=H("lstm", 4)), 1, 3),
        ("T-1-seq", dict(return_sequences=True, memory_to_memory=True), 1, 2),
        ("everything", dict(memory_d=2, hidden=H("lstm", 4), hidden_to_memory=True, memory_to_memory=True,
                            input_to_hidden=True, use_bias=True, trainable_theta=True, return_sequences=True),
         80, 2),
        ("long-T-lti", dict(order=16, theta=200.0, hidden=H("rnn", 8), input_to_hidden=True), 2000, 1),
    ]
    return [(name, {**base, **kw}, steps, batch) for name, kw, steps, batch in rows]


_QUICK = ("memory-only-seq", "dense-relu", "rnn-tanh-seq", "lstm-seq", "hidden-to-memory-lstm",
          "memory-to-memory", "trainable-theta", "bilinear", "everything", "T-1")


def cases(quick: bool = False, dtypes=("float64", "float32")) -> list[Case]:
    """The conformance battery: every spec field covered, in float64 and float32.

    Parameters
    ----------
    quick : bool
        A subset of 10 specs that still touches every hidden kind and connection.
    dtypes : sequence of {"float64", "float32"}

    Examples
    --------
    >>> all_cases = cases()
    >>> len(all_cases) >= 60, str(all_cases[0])
    (True, 'memory-only-float64')
    """
    out = []
    for dtype in dtypes:
        for name, kw, steps, batch in _battery():
            if quick and name not in _QUICK:
                continue
            out.append(Case(f"{name}-{dtype}", LMUSpec(**kw, dtype=dtype), steps, batch))
    return out


def tolerance(spec: LMUSpec) -> float:
    """The fixed relative tolerance for a spec's dtype."""
    return TOLERANCE[spec.dtype]


def relative_error(actual, expected) -> float:
    """``max|actual − expected| / max|expected|`` (inf when shapes differ; NaN where expected is finite fails).

    Examples
    --------
    >>> relative_error([1.0, 2.0], [1.0, 2.5])
    0.2
    """
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if actual.shape != expected.shape:
        return float("inf")
    same_nan = np.isnan(actual) & np.isnan(expected)
    diff = np.where(same_nan, 0.0, np.abs(actual - expected))
    if np.isnan(diff).any():
        return float("inf")
    scale = np.max(np.abs(np.where(np.isfinite(expected), expected, 0.0)), initial=0.0)
    return float(np.max(diff, initial=0.0) / max(scale, np.finfo(np.float64).tiny))


# ------------------------------------------------------------------------------------------------- data
def case_weights(spec: LMUSpec, seed: int = 0) -> LMUWeights:
    """Weights that exercise every parameter: ``init_weights`` plus nonzero biases, a ``theta`` weight that
    differs from ``spec.theta`` (13% longer), and a memory_to_memory kernel scaled to keep the memory contractive
    (so that float32 stays meaningful at long T)."""
    weights = init_weights(spec, seed)
    rng = np.random.default_rng(seed + 1000)
    arrays = {name: np.array(arr, dtype=np.float64) for name, arr in weights.items()}
    for name in ("bias", "hidden/bias"):
        if name in arrays:
            arrays[name] = arrays[name] + rng.uniform(-0.2, 0.2, size=arrays[name].shape)
    if "theta" in arrays:
        arrays["theta"] = np.array(spec.theta * 1.13)
    if "recurrent_kernel" in arrays:
        arrays["recurrent_kernel"] = _contractive(spec, arrays)
    return LMUWeights(spec, arrays)


def _contractive(spec: LMUSpec, arrays) -> np.ndarray:
    theta = float(arrays["theta"]) if "theta" in arrays else spec.theta
    A_bar, B_bar = legendre.discretize(spec.order, theta, spec.discretizer)
    md, order = spec.memory_d, spec.order
    block = np.kron(np.eye(md), A_bar)  # flattened memory, memory_d-major, as a column vector
    rec = arrays["recurrent_kernel"] / np.linalg.norm(arrays["recurrent_kernel"])
    for _ in range(60):
        # m_new[d, i] += B̄[i] · (m_flat @ rec)[d]: row (d, i) of the transition gains B̄[i] · rec[:, d]
        full = block + np.repeat(rec.T, order, axis=0) * np.tile(B_bar, md)[:, None]
        if np.max(np.abs(np.linalg.eigvals(full))) < 0.999:
            return rec
        rec = rec * 0.5
    return rec


def case_input(case: Case, seed: int = 0) -> np.ndarray:
    """The kit's input for a case: standard normal, shape ``(batch, steps, input_d)``, in the spec's dtype."""
    rng = np.random.default_rng(seed + 7)
    x = rng.normal(size=(case.batch, case.steps, case.spec.input_d))
    return x.astype(case.spec.dtype)


def reference_output(spec: LMUSpec, weights: LMUWeights, x, state=None, return_state=False):
    """The reference's answer, computed step by step in float64 (no FFT shortcut)."""
    model = ReferenceLMU(spec, weights, mode="step")
    return model.run(np.asarray(x, np.float64), state, return_state)


# ------------------------------------------------------------------------------------------------- checks
def _compare(case, check, actual, expected, started, what=""):
    tol = tolerance(case.spec)
    err = relative_error(actual, expected)
    msg = ""
    if np.shape(actual) != np.shape(expected):
        msg = f"{what}shape {np.shape(actual)} != expected {np.shape(expected)}"
    elif not err <= tol:
        msg = f"{what}relative error {err:.3e} > {tol:.0e}"
    return Result(case.id, check, not msg, err, tol, time.perf_counter() - started, msg)


def _setup(backend, case, options, input_seed):
    """The kit's weights, the backend's model holding them, and an input; and the time it started."""
    started = time.perf_counter()
    weights = case_weights(case.spec)
    model = build(case.spec, backend, weights=weights, **options)
    return started, case.spec, weights, model, case_input(case, seed=input_seed)


def _check_outputs(backend, case, options):
    started, spec, weights, model, x = _setup(backend, case, options, input_seed=0)
    return _compare(case, "outputs", run(model, x), reference_output(spec, weights, x), started)


def _check_weights(backend, case, options):
    started = time.perf_counter()
    spec = case.spec
    first, second = case_weights(spec, seed=0), case_weights(spec, seed=1)
    model = build(spec, backend, weights=first, **options)
    got = get_weights(model)
    names_ok = sorted(got) == sorted(first)
    errors = [relative_error(got[n], first[n]) for n in first] if names_ok else [float("inf")]
    tol = tolerance(spec)
    if not names_ok or max(errors, default=0.0) > tol:
        return Result(case.id, "weights", False, max(errors, default=0.0), tol, time.perf_counter() - started,
                      f"get_weights after build gave names {sorted(got)} / values off")
    set_weights(model, second)
    again = get_weights(model)
    errors = [relative_error(again[n], second[n]) for n in second]
    if max(errors, default=0.0) > tol:
        return Result(case.id, "weights", False, max(errors), tol, time.perf_counter() - started,
                      "get_weights after set_weights differs from what was set")
    x = case_input(case, seed=3)
    return _compare(case, "weights", run(model, x), reference_output(spec, second, x), started,
                    "after set_weights: ")


def _check_streaming(backend, case, options):
    started, spec, weights, model, x = _setup(backend, case, options, input_seed=5)
    steps = case.steps
    cuts = sorted({0, steps // 3, (2 * steps) // 3, steps} - {0}) if steps >= 3 else [steps]
    state, outs, start = None, [], 0
    for stop in cuts:
        y, state = run(model, x[:, start:stop], state=state, return_state=True)
        outs.append(y)
        start = stop
    chunked = np.concatenate(outs, axis=1) if spec.return_sequences else outs[-1]
    whole, ref_state = reference_output(spec, weights, x, return_state=True)
    result = _compare(case, "streaming", chunked, whole, started, "chunked vs whole: ")
    if not result.passed:
        return result
    if sorted(state) != sorted(ref_state):
        result.passed, result.message = False, f"state keys {sorted(state)} != {sorted(ref_state)}"
        return result
    for key in ref_state:
        err = relative_error(state[key], ref_state[key])
        if not err <= result.tolerance:
            result.passed, result.error = False, err
            result.message = f"final state['{key}'] relative error {err:.3e}"
    return result


def _check_nan(backend, case, options):
    started, spec, weights, model, x = _setup(backend, case, options, input_seed=9)
    k = case.steps // 2
    x[0, k, 0] = np.nan
    y = np.asarray(run(model, x), dtype=np.float64)
    ref = reference_output(spec, weights, x)
    expect_nan = np.isnan(ref)
    msg = ""
    if y.shape != ref.shape:
        msg = f"shape {y.shape} != {ref.shape}"
    elif not np.array_equal(np.isnan(y), expect_nan):
        msg = (f"NaN at step {k} of sequence 0 should reach exactly {int(expect_nan.sum())} outputs "
               f"(got {int(np.isnan(y).sum())}); other sequences and earlier steps must stay finite")
    err = relative_error(np.where(expect_nan, 0, y), np.where(expect_nan, 0, ref)) if not msg else None
    tol = tolerance(spec)
    if not msg and not err <= tol:
        msg = f"finite outputs beside the NaN: relative error {err:.3e} > {tol:.0e}"
    return Result(case.id, "nan", not msg, err, tol, time.perf_counter() - started, msg)


def _lowpass(y, tau_steps):
    """``y`` (batch, T, n) through a discrete lowpass of time constant ``tau_steps`` (as nengo's Lowpass)."""
    a = np.exp(-1.0 / tau_steps)
    out, s = np.empty_like(y), np.zeros_like(y[:, 0])
    for t in range(y.shape[1]):
        s = a * s + (1 - a) * y[:, t]
        out[:, t] = s
    return out


def _check_nrmse(backend, case, options):
    """For an approximate backend: NRMSE of its outputs against the reference (read through the backend's
    readout lowpass), on band-limited input (1 cycle per θ, RMS 0.5), after the first θ/2 steps."""
    started = time.perf_counter()
    spec, weights = case.spec, case_weights(case.spec)
    model = build(spec, backend, weights=weights, **options)
    x = np.stack([white_noise(case.steps, 1.0 / spec.theta, rms=0.5, seed=i, dims=spec.input_d)
                  for i in range(case.batch)]).astype(spec.dtype)
    y = np.asarray(run(model, x), dtype=np.float64)
    ref = reference_output(spec, weights, x)
    declared = _declared(backend)
    tau = declared.lowpass(spec, options)
    if tau:
        ref = _lowpass(ref, tau) if spec.return_sequences else ref
    skip = int(spec.theta // 2)
    err = nrmse(y[:, skip:], ref[:, skip:]) if spec.return_sequences else nrmse(y, ref)
    limit = declared.nrmse
    msg = "" if err <= limit else f"NRMSE {err:.3f} > {limit}"
    return Result(case.id, "nrmse", not msg, err, limit, time.perf_counter() - started, msg)


_CHECKERS = {"outputs": _check_outputs, "weights": _check_weights, "streaming": _check_streaming,
             "nan": _check_nan, "nrmse": _check_nrmse}


# ------------------------------------------------------------------------------------------------- declarations
@dataclasses.dataclass(frozen=True)
class _Declared:
    """What the kit reads from a backend's declarations (:mod:`lmu.backend`): accuracy, battery, option sets."""

    nrmse: float | None
    lowpass: Callable[[LMUSpec, dict], float | None]
    battery: Callable[[bool], list[Case]]
    option_sets: Callable[[LMUSpec], list[dict]]


_LEGACY = ("approximate", "conformance_options", "conformance_battery", "readout_lowpass")


def _declared(backend) -> _Declared:
    """The backend's declarations; the hooks of lmu 0.4 (``approximate``, ``conformance_options(spec)``,
    ``conformance_battery(quick)``, ``readout_lowpass(spec, options)``) still work, with a DeprecationWarning."""
    accuracy = getattr(backend, "accuracy", EXACT)
    legacy = [name for name in _LEGACY if hasattr(backend, name)]
    if legacy:
        warnings.warn(f"backend {getattr(backend, 'name', '?')!r} declares {', '.join(legacy)}, which are "
                      "deprecated and will be removed in lmu 0.6: declare modes, accuracy and test_options "
                      "(see lmu.Backend)", DeprecationWarning, stacklevel=3)
    limit = getattr(backend, "approximate", accuracy.nrmse)

    def lowpass(spec, options):
        hook = getattr(backend, "readout_lowpass", None)
        return hook(spec, options) if hook is not None else accuracy.readout_lowpass

    def battery(quick):
        hook = getattr(backend, "conformance_battery", None)
        if hook is not None:
            return list(hook(quick))
        if limit is None:
            return cases(quick=quick)
        rows = accuracy.battery[: accuracy.quick] if quick else accuracy.battery
        return [Case(*row) if len(row) == 4 else Case(*row, batch=1) for row in rows]  # batch 1 unless given

    def sets(spec):
        hook = getattr(backend, "conformance_options", None)
        if hook is not None:
            return list(hook(spec))
        extra = list(getattr(backend, "test_options", ({},))) or [{}]
        modes = modes_that_apply(backend, spec)
        return [{"mode": m, **o} for m in modes for o in extra] if modes else extra

    return _Declared(limit, lowpass, battery, sets)


def option_sets(backend, spec: LMUSpec) -> list[dict]:
    """The option sets a backend is checked with on ``spec``: one per declared mode that applies (times its
    ``test_options``), or its ``test_options`` alone.

    Examples
    --------
    >>> import lmu
    >>> spec = lmu.LMUSpec(memory_d=1, order=4, theta=8, input_d=1, memory_to_memory=True)
    >>> option_sets("numpy", spec)
    [{'mode': 'auto'}, {'mode': 'step'}]
    """
    return _declared(get_backend(backend)).option_sets(spec)


def battery_of(backend, quick: bool = False) -> list[Case]:
    """The cases a backend is checked on: the kit's battery, or an approximate backend's own."""
    return _declared(get_backend(backend)).battery(quick)


# ------------------------------------------------------------------------------------------------- running checks
def check_case(backend, case: Case, checks=CHECKS, **options) -> list[Result]:
    """Run the kit's checks on one case; a refused spec gives one ``refused`` result; errors become failures.

    Results of a run with ``options`` name them after the case id, e.g. ``lstm-seq-float64[mode=fft]``."""
    impl = get_backend(backend)
    if _declared(impl).nrmse is not None and checks == CHECKS:  # a backend that approximates: its NRMSE check
        checks = ("nrmse",)
    reasons = list(impl.check(case.spec))
    if reasons:
        return [Result(case.id, "build", True, message="; ".join(reasons), refused=True)]
    label = case.id + (f"[{','.join(f'{k}={v}' for k, v in sorted(options.items()))}]" if options else "")
    results = []
    for name in checks:
        started = time.perf_counter()
        try:
            result = _CHECKERS[name](impl, case, options)
        except Exception as exc:  # a crash is a failure of that check, reported with its message
            result = Result(case.id, name, False, None, tolerance(case.spec), time.perf_counter() - started,
                            f"raised {type(exc).__name__}: {exc}")
        result.case = label
        results.append(result)
    return results


def check_backend(backend, battery=None, quick: bool = False, checks=CHECKS, every_option_set: bool = False,
                  **options) -> Report:
    """Run the whole battery (or the given list of cases) on a backend and collect a :class:`Report`.

    With ``every_option_set``, each case runs once per option set the backend declares for its spec
    (:func:`option_sets`: every torch ``mode`` that applies, Loihi's seed); else once with ``options``.

    Examples
    --------
    >>> report = check_backend("numpy", quick=True)
    >>> report.passed, report.max_error < 1e-5
    (True, True)
    """
    impl = get_backend(backend)
    declared = _declared(impl)
    started = time.perf_counter()
    results = []
    for case in declared.battery(quick) if battery is None else battery:
        for option_set in declared.option_sets(case.spec) if every_option_set else [options]:
            results.extend(check_case(impl, case, checks, **option_set))
    return Report(impl.name, results, time.perf_counter() - started, declared.nrmse)


def assert_conforms(backend, case: Case, checks=CHECKS, **options) -> None:
    """Assert that a backend passes every check on a case (for a plugin's pytest file).

    Raises :class:`lmu.UnsupportedSpec` when the backend refuses the case, ``AssertionError`` listing each
    failed check otherwise.
    """
    results = check_case(backend, case, checks, **options)
    refused = [r for r in results if r.refused]
    if refused:
        raise UnsupportedSpec(f"backend {get_backend(backend).name!r} refused {case.id}: {refused[0].message}")
    failed = [str(r) for r in results if not r.passed]
    assert not failed, "\n".join(failed)
