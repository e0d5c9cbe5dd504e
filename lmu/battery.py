"""The conformance battery: the cases every backend is checked on, their weights and inputs, and the reference's
answer.

Design rule: data only, fixed and seeded, so that a result can be repeated anywhere: every spec field is covered in
float64 and float32, weights exercise every parameter (nonzero biases, a θ weight that differs from the spec's), and
the reference's answer is the NumPy backend run step by step in float64. :mod:`lmu.testing` runs the checks on it.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from . import legendre
from .reference import ReferenceLMU
from .spec import Hidden, LMUSpec
from .weights import LMUWeights, init_weights

__all__ = ["TOLERANCE", "Case", "cases", "tolerance", "relative_error", "case_weights", "case_input",
           "reference_output"]

#: The fixed relative tolerances, by dtype.
TOLERANCE = {"float64": 1e-9, "float32": 2e-5}


@dataclasses.dataclass(frozen=True)
class Case:
    """One conformance case: a spec, a sequence length and a batch size."""

    id: str
    spec: LMUSpec
    steps: int = 40
    batch: int = 2

    def __str__(self):
        return self.id


# ------------------------------------------------------------------------------------------------- the battery
def _battery() -> list[tuple[str, dict, int, int]]:
    H = Hidden
    base: dict = dict(memory_d=1, order=8, theta=16.0, input_d=2)
    rows: list[tuple[str, dict, int, int]] = [
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
