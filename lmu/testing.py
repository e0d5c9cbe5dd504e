"""The conformance kit: the checks every backend's tests run against the reference, on the battery of
:mod:`lmu.battery` (whose names this module re-exports).

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
import warnings
from collections.abc import Callable

import numpy as np

from .backend import EXACT, modes_that_apply
from .battery import (
    TOLERANCE,
    Case,
    case_input,
    case_weights,
    cases,
    reference_output,
    relative_error,
    tolerance,
)
from .errors import UnsupportedSpec
from .registry import build, check_spec, get_backend, get_weights, run, set_weights
from .signals import nrmse, white_noise
from .spec import LMUSpec

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

#: The checks run on every case: outputs vs the reference, the weights round trip, chunked streaming, NaN input.
CHECKS = ("outputs", "weights", "streaming", "nan")


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
    """A NaN in one step reaches exactly the outputs the reference says it reaches; the others stay finite and (for
    an exact backend) correct."""
    started, spec, weights, model, x = _setup(backend, case, options, input_seed=9)
    k = case.steps // 2
    x[0, k, 0] = np.nan
    y = np.asarray(run(model, x), dtype=np.float64)
    ref = reference_output(spec, weights, x)
    expect_nan = np.isnan(ref)
    msg = ""
    if y.shape != ref.shape:
        msg = f"shape {y.shape} != {ref.shape}"
    elif not np.array_equal(~np.isfinite(y), expect_nan):
        msg = (f"NaN at step {k} of sequence 0 should reach exactly {int(expect_nan.sum())} outputs "
               f"(got {int((~np.isfinite(y)).sum())} non-finite); other sequences and earlier steps must stay finite")
    exact = _declared(backend).nrmse is None
    err = relative_error(np.where(expect_nan, 0, y), np.where(expect_nan, 0, ref)) if not msg and exact else None
    tol = tolerance(spec)
    if err is not None and not err <= tol:
        msg = f"finite outputs beside the NaN: relative error {err:.3e} > {tol:.0e}"
    return Result(case.id, "nan", not msg, err, tol if exact else None, time.perf_counter() - started, msg)


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
    if _declared(impl).nrmse is not None and checks == CHECKS:  # a backend that approximates: NRMSE and NaN
        checks = ("nrmse", "nan")
    reasons = check_spec(impl, case.spec)
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
                  progress=None, **options) -> Report:
    """Run the whole battery (or the given list of cases) on a backend and collect a :class:`Report`.

    With ``every_option_set``, each case runs once per option set the backend declares for its spec
    (:func:`option_sets`: every torch ``mode`` that applies, Loihi's seed); else once with ``options``.
    ``progress(done, total)`` is called after each run, if given.

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
    runs = [(case, option_set) for case in (declared.battery(quick) if battery is None else battery)
            for option_set in (declared.option_sets(case.spec) if every_option_set else [options])]
    for done, (case, option_set) in enumerate(runs, 1):
        results.extend(check_case(impl, case, checks, **option_set))
        if progress is not None:
            progress(done, len(runs))
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
