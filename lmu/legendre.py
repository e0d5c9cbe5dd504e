"""The mathematics of the Legendre memory, and the only place in the project where it lives.

Design rule: every formula of the LMU's linear memory (the continuous system, its discretizations, the impulse
response, the Legendre delay readout) is defined here once, in NumPy/SciPy, in float64. Backends and the reference
take their matrices from this module; none of them writes the six lines of math again.

Conventions: ``i, j = 0 … order-1``; θ is measured in time steps (dt = 1); the memory ``m`` holds one row of
``order`` coefficients per memory dimension, and one step is ``m_t = m_{t-1} Āᵀ + u_t B̄ᵀ``.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import scipy.linalg
import scipy.special

from .errors import ArgumentError

__all__ = [
    "DISCRETIZERS",
    "continuous",
    "discretize",
    "spectral_radius",
    "euler_spectral_radius",
    "euler_min_theta",
    "halving_steps",
    "horizon",
    "theta_range",
    "UNIT_ROUNDOFF",
    "propagate",
    "impulse_response",
    "impulse_response_dtheta",
    "impulse_response_and_powers",
    "discretize_arrays",
    "NumpyOps",
    "NUMPY",
    "truncation_length",
    "shifted_legendre",
    "delay_readout",
]

DISCRETIZERS = ("zoh", "euler", "bilinear")


class NumpyOps:
    """The few array primitives the formulas below need, for NumPy float64 arrays.

    A backend that needs the same formulas on its own arrays (differentiable in θ, on a GPU) passes an object with
    these six methods for its framework (``lmu_torch`` does); the formulas themselves stay here.
    """

    def asarray(self, x, like=None):
        return np.asarray(x, dtype=np.float64)

    def zeros(self, shape, like):
        return np.zeros(shape)

    def eye(self, n, like):
        return np.eye(n)

    def arange(self, n, like):
        return np.arange(n, dtype=np.float64)

    def expm(self, m):
        return scipy.linalg.expm(m)

    def solve(self, a, b):
        return np.linalg.solve(a, b)


NUMPY = NumpyOps()


def continuous(order: int) -> tuple[np.ndarray, np.ndarray]:
    """The continuous-time LMU system ``θ ṁ = A m + B u``.

    ``A[i, j] = (2i+1) · (−1 if i < j else (−1)^(i−j+1))`` and ``B[i] = (2i+1) · (−1)^i`` (Voelker et al. 2019).

    Parameters
    ----------
    order : int
        The number of Legendre coefficients ``q``.

    Returns
    -------
    A : ndarray, shape (order, order), float64 with integer values
    B : ndarray, shape (order,), float64 with integer values

    Examples
    --------
    >>> A, B = continuous(3)
    >>> A.astype(int).tolist(), B.astype(int).tolist()
    ([[-1, -1, -1], [3, -3, -3], [-5, 5, -5]], [1, -3, 5])
    """
    order = _check_order(order)
    i = np.arange(order)[:, None]
    j = np.arange(order)[None, :]
    sign = np.where(i < j, -1.0, (-1.0) ** (i - j + 1))
    A = (2 * i + 1) * sign
    B = (2 * np.arange(order) + 1) * (-1.0) ** np.arange(order)
    return A.astype(np.float64), B.astype(np.float64)


def discretize(order: int, theta: float, method: str = "zoh") -> tuple[np.ndarray, np.ndarray]:
    """Discretize the LMU system for a time step of 1 and a window of ``theta`` steps.

    Parameters
    ----------
    order : int
        The number of Legendre coefficients.
    theta : float
        The window length in time steps (> 0).
    method : {"zoh", "euler", "bilinear"}
        ``zoh``: ``Ā = expm(A/θ)`` and ``B̄`` from the block-matrix exponential (exact for input held constant over
        a step). ``euler``: ``Ā = I + A/θ``, ``B̄ = B/θ``; unstable unless θ exceeds
        ``euler_min_theta(order)``, which grows faster than the order (about 4·order at order 16, 26·order at 256).
        ``bilinear``: the Tustin transform. Each equals ``scipy.signal.cont2discrete(..., method, dt=1)``.

    Returns
    -------
    A_bar : ndarray, shape (order, order), float64
    B_bar : ndarray, shape (order,), float64

    Examples
    --------
    >>> A_bar, B_bar = discretize(4, theta=10.0)
    >>> A_bar.shape, B_bar.shape
    ((4, 4), (4,))
    >>> bool(spectral_radius(A_bar) < 1)
    True
    """
    order = _check_order(order)
    theta = float(theta)
    if not (math.isfinite(theta) and theta > 0):
        raise ArgumentError(f"theta must be a finite number > 0 (got {theta!r})")
    if method not in DISCRETIZERS:
        raise ArgumentError(f"discretizer must be one of {', '.join(DISCRETIZERS)} (got {method!r})")
    A_bar, B_bar = discretize_arrays(*continuous(order), theta, method)
    return A_bar, B_bar


def discretize_arrays(A, B, theta, method: str = "zoh", ops=NUMPY):
    """:func:`discretize` for given continuous ``A``, ``B`` and any array kind (see :class:`NumpyOps`).

    With torch arrays and a ``theta`` tensor that requires grad, ``Ā`` and ``B̄`` are differentiable in θ.

    Examples
    --------
    >>> A_bar, B_bar = discretize_arrays(*continuous(4), 10.0, "euler")
    >>> bool(np.allclose(A_bar, np.eye(4) + continuous(4)[0] / 10))
    True
    """
    order = A.shape[0]
    A, B = A / theta, B / theta
    if method == "zoh":
        block = ops.zeros((order + 1, order + 1), like=A)
        block[:order, :order] = A
        block[:order, order] = B
        expm = ops.expm(block)
        return expm[:order, :order] + 0.0, expm[:order, order] + 0.0  # copies, not views of the block
    if method == "euler":
        return ops.eye(order, like=A) + A, B
    if method == "bilinear":
        lhs = ops.eye(order, like=A) - 0.5 * A
        A_bar = ops.solve(lhs, ops.eye(order, like=A) + 0.5 * A)
        B_bar = ops.solve(lhs, B[:, None])[:, 0]
        return A_bar, B_bar
    raise ArgumentError(f"discretizer must be one of {', '.join(DISCRETIZERS)} (got {method!r})")


def spectral_radius(A_bar: np.ndarray) -> float:
    """The largest eigenvalue magnitude of a discrete transition matrix (stable when < 1).

    Notes
    -----
    ``A`` is far from normal and its eigenvalues grow ill-conditioned with the order (the dominant one of ``A``, and
    so of ``expm(A/θ)``, has condition number about 2e7 at order 256 and 4e11 at order 1024), so from order ~1000
    the result is only good to about 1e-5, against a margin ``1 − ρ`` of about 3e-4 at θ = 1e5. Where that matters,
    check that powers of ``Ā`` decay instead: ``ρ ≤ ‖Āᵏ‖^(1/k)`` in any induced norm.

    Examples
    --------
    >>> round(spectral_radius(discretize(8, theta=4.0, method="euler")[0]), 2) > 1
    True
    """
    return float(np.max(np.abs(np.linalg.eigvals(np.asarray(A_bar, dtype=np.float64)))))


@functools.lru_cache(maxsize=64)
def _continuous_eigenvalues(order: int) -> np.ndarray:
    lam = np.linalg.eigvals(continuous(order)[0])
    lam.flags.writeable = False  # shared by every caller through the cache
    return lam


def euler_spectral_radius(order: int, theta: float) -> float:
    """Spectral radius of the euler ``Ā = I + A/θ``, from the cached eigenvalues of ``A`` (cheap for validation).

    Equals ``spectral_radius(discretize(order, theta, "euler")[0])`` (the eigenvalues of ``I + A/θ`` are
    ``1 + λ/θ``) without an eigenvalue problem per θ.

    Examples
    --------
    >>> bool(euler_spectral_radius(8, theta=4.0) > 1), bool(euler_spectral_radius(8, theta=100.0) < 1)
    (True, True)
    """
    return float(np.max(np.abs(1.0 + _continuous_eigenvalues(_check_order(order)) / float(theta))))


def euler_min_theta(order: int) -> float:
    """The smallest θ for which the euler discretization is stable: ``max |λ|² / (−2 Re λ)`` over A's eigenvalues.

    ``|1 + λ/θ| < 1`` exactly when ``θ > |λ|² / (−2 Re λ)``. It grows faster than the order (about 1.3·order at
    order 4, 10·order at 64, 26·order at 256), so euler needs long windows at high orders; zoh has no such limit.

    Examples
    --------
    >>> 600 < euler_min_theta(64) < 700
    True
    """
    lam = _continuous_eigenvalues(int(order))
    return float(np.max(np.abs(lam) ** 2 / (-2.0 * lam.real)))


#: The unit round-off of each dtype a spec may have: the relative error of one rounding.
UNIT_ROUNDOFF = {"float32": 2.0**-24, "float64": 2.0**-53}


def horizon(dtype: str) -> float:
    """The number of steps over which one rounding per step adds up to the size of what it rounds: ``1/u``.

    A memory that does not forget (halve) within this many steps keeps its round-off: float32 gets 16.8 million
    steps, float64 9e15.

    Examples
    --------
    >>> horizon("float32")
    16777216.0
    """
    return 1.0 / UNIT_ROUNDOFF[dtype]


@functools.lru_cache(maxsize=1024)
def halving_steps(order: int, theta: float, method: str = "zoh", dtype: str = "float64") -> float:
    """Steps after which the discretized memory, as a backend stores it in ``dtype``, has provably halved anything
    it held: the smallest power of two ``K`` with ``‖Āᵏ‖₁ ≤ 1/2`` (so ``ρ(Ā) ≤ 2^(−1/K)``), up to
    :func:`horizon`. ``inf`` when it does not halve within the horizon, grows, or when ``Ā``, ``B̄`` overflow.

    Computed by squaring ``Ā`` (rounded to ``dtype``) in float64. Where the answer is known to be far inside the
    horizon (zoh and bilinear for 1 ≤ θ ≤ horizon/100, halving in about 1.3 θ steps; euler above 4 ×
    :func:`euler_min_theta`) it is not computed: the value returned is then ``θ`` itself, an estimate. Near the
    edges it decides what rounding does: euler at 1.1 × the stability limit is stable in float64 but not in
    float32 at order 256.

    Examples
    --------
    >>> halving_steps(12, 100.0) <= 1000, halving_steps(256, 7000.0, "euler", "float32")
    (True, inf)
    """
    order, theta = _check_order(order), float(theta)
    limit = horizon(dtype)
    safe = 1.0 <= theta <= limit / 100
    if method == "euler":
        exact_limit = order <= 1024
        min_theta = euler_min_theta(order) if exact_limit else 6560.0 * (order / 256) ** 1.68  # fitted law
        safe = safe and theta >= 4 * min_theta
        if not exact_limit:
            return theta if theta > min_theta and safe else math.inf
    elif order > 1024:  # an order whose squaring costs seconds: zoh and bilinear are stable in exact arithmetic
        safe = safe or 1e-3 <= theta <= limit / 100
    if safe:
        return theta
    with np.errstate(over="ignore", invalid="ignore"):
        A_bar, B_bar = discretize(order, theta, method)
    power = A_bar.astype(dtype).astype(np.float64)
    if not (np.isfinite(power).all() and np.isfinite(B_bar.astype(dtype)).all()):
        return math.inf
    steps = 1.0
    with np.errstate(over="ignore", invalid="ignore"):
        while steps <= limit:
            norm = float(np.abs(power).sum(axis=0).max())
            if norm <= 0.5:
                return steps
            if not norm < 1e100:
                return math.inf
            power, steps = power @ power, 2 * steps
    return math.inf


@functools.lru_cache(maxsize=256)
def theta_range(order: int, method: str, dtype: str, theta: float) -> tuple[float, float]:
    """The θ around a computable ``theta`` for which the memory stays computable (:func:`halving_steps` within the
    :func:`horizon`), each edge found to within 10% and then moved inwards by a factor of 2 (right at the edge the
    memory forgets within ~1e-7 per step, which no mode computes well): where a trainable θ is clamped. Searched
    down to 2⁻¹⁰ steps (zoh is computable down to about 1e-30 steps, where its matrix exponential overflows: its
    lower edge is 2⁻¹⁰ without a search) and up to 2⁶⁴ θ; never narrower than ``theta`` itself.

    Examples
    --------
    >>> low, high = theta_range(64, "euler", "float32", 2000.0)
    >>> 2 * euler_min_theta(64) < low < 2.4 * euler_min_theta(64) and 1e6 < high < horizon("float32") / 2
    True
    """
    def ok(t):
        return halving_steps(order, t, method, dtype) <= horizon(dtype)

    def edge(inside, factor, stop):  # outwards by factors of 2 while computable, then 5 bisections in log θ
        while (inside * factor - stop) * (inside - stop) > 0 and ok(inside * factor):
            inside *= factor
        outside = inside * factor
        for _ in range(5):
            middle = math.sqrt(inside * outside)
            inside, outside = (middle, outside) if ok(middle) else (inside, middle)
        return inside

    theta = float(theta)
    low = 2.0**-10 if method == "zoh" else 2 * edge(theta, 0.5, 2.0**-10)
    return min(low, theta), max(edge(theta, 2.0, theta * 2.0**64) / 2, theta)


def propagate(A_bar, v, length: int, ops=NUMPY, block: int | None = 256):
    """``out[t] = v Āᵗᵀ`` for ``t = 0 … length-1``, for one vector or a stack of them.

    Computed without a loop over time steps, so it serves both the impulse response (``v = B̄``) and the free
    response of a nonzero initial memory (``v = m₀ Āᵀ``): by doubling up to ``Ā^256``, then in blocks of 256 steps
    (``out[t + 256] = out[t] (Ā^256)ᵀ``), ``8 + length/256`` matrix products in all.

    Notes
    -----
    Squaring on past 256 steps would be ``O(log length)`` products but compounds rounding where the powers of Ā
    grow before they decay: for euler at order 256 and θ = 1.02 × its stability limit, ``‖Āᵏ‖`` reaches 3e4, and
    pure doubling made the response grow to 1e10 × its peak while stepping decays. In blocks, each product is as
    exact as ``Ā^256`` and the rounding behaves like stepping's (zoh, bilinear: same results to 1e-13).

    Parameters
    ----------
    A_bar : ndarray, shape (order, order)
    v : ndarray, shape (..., order)
    length : int
    block : int or None
        The largest power of Ā used (256); None doubles all the way (``O(log length)`` products, for zoh and
        bilinear, whose powers of Ā do not grow, where fewer products matter, e.g. on a GPU).

    Returns
    -------
    ndarray, shape (length, ..., order)

    Examples
    --------
    >>> A_bar, B_bar = discretize(3, theta=5.0)
    >>> out = propagate(A_bar, B_bar, 4)
    >>> bool(np.allclose(out[3], A_bar @ A_bar @ A_bar @ B_bar))
    True
    """
    A_bar, v = ops.asarray(A_bar, like=v), ops.asarray(v, like=v)
    length = int(length)
    out = ops.zeros((max(length, 0),) + tuple(v.shape), like=v)
    if length <= 0:
        return out
    out[0] = v
    filled = 1
    power_t = A_bar.T + 0.0  # (Ā^filled)ᵀ while doubling, then (Ā^block)ᵀ
    block = length if block is None else block
    while filled < length:
        step = min(filled, block)
        n = min(step, length - filled)
        # a copy of the rows read: autograd saves it for the gradient of power_t, and the write below changes out
        out[filled : filled + n] = (out[filled - step : filled - step + n] * 1.0) @ power_t
        filled += n
        if filled < length and filled <= block:
            power_t = power_t @ power_t
    return out



def impulse_response(A_bar, B_bar, length: int, ops=NUMPY):
    """The impulse response ``H[t] = Āᵗ B̄``, shape ``(length, order)``, without a loop over time steps.

    The memory of an LTI LMU is ``m_t = Σ_{s ≤ t} H[t − s] u_s`` (plus the free response of its initial state).

    Examples
    --------
    >>> A_bar, B_bar = discretize(6, theta=50.0)
    >>> H = impulse_response(A_bar, B_bar, 100_000)
    >>> H.shape
    (100000, 6)
    """
    return propagate(A_bar, ops.asarray(B_bar, like=B_bar).reshape(-1), length, ops)


def impulse_response_and_powers(A, B, theta, method, length: int, ops=NUMPY):
    """``(H, P)``: the impulse response and, for zoh, ``P[t] = Āᵗ B`` for ``t ≤ length`` (None otherwise).

    One propagation of the stacked vectors ``[B̄, B]`` gives both, so that :func:`impulse_response_dtheta` needs no
    second pass over the powers of ``Ā``.

    Examples
    --------
    >>> A, B = continuous(6)
    >>> H, P = impulse_response_and_powers(A, B, 20.0, "zoh", 50)
    >>> bool(np.allclose(H, impulse_response(*discretize(6, 20.0), 50)))
    True
    """
    A_bar, B_bar = discretize_arrays(A, B, theta, method, ops)
    if method == "euler":
        return impulse_response(A_bar, B_bar, length, ops), None
    if method == "bilinear":
        return propagate(A_bar, B_bar, length, ops, block=None), None
    both = propagate(A_bar, ops.asarray(_stack2(B_bar, B, ops), like=B), int(length) + 1, ops, block=None)
    return both[:length, 0], both[:, 1]


def _stack2(a, b, ops):
    out = ops.zeros((2, a.shape[0]), like=a)
    out[0] = a
    out[1] = b
    return out


def impulse_response_dtheta(A, B, theta, method, H, ops=NUMPY, P=None):
    """``dH/dθ`` for the impulse response ``H`` (``(length, order)``) of ``discretize_arrays(A, B, θ, method)``.

    Closed forms, using that ``Ā``, ``B̄`` are functions of ``A`` (so they commute with it):

    - zoh: ``H[t] = A⁻¹ (e^{A(t+1)/θ} − e^{At/θ}) B``, so ``dH[t]/dθ = (t P[t] − (t+1) P[t+1]) / θ²`` with
      ``P[t] = Āᵗ B`` (the continuous ``B``; pass ``P`` from :func:`impulse_response_and_powers` to reuse it);
    - euler: ``dH[t]/dθ = −(t/θ²) A H[t−1] − H[t]/θ``;
    - bilinear, with ``N = (I − A/2θ)⁻¹``: ``dH[t]/dθ = −(t/2θ²) A N (Ā + I) H[t−1] − (1/2θ²) A N H[t] − H[t]/θ``.

    This is what lets a backend train θ on the parallel path without differentiating through the powers of Ā.

    Examples
    --------
    >>> A, B = continuous(8)
    >>> H = impulse_response(*discretize_arrays(A, B, 30.0), 100)
    >>> dH = impulse_response_dtheta(A, B, 30.0, "zoh", H)
    >>> H2 = impulse_response(*discretize_arrays(A, B, 30.0 + 1e-6), 100)
    >>> bool(np.allclose(dH, (H2 - H) / 1e-6, atol=1e-6))
    True
    """
    length = H.shape[0]
    t = ops.arange(length, like=H)[:, None]
    if method == "zoh":
        if P is None:
            A_bar, _ = discretize_arrays(A, B, theta, "zoh", ops)
            P = propagate(A_bar, B, length + 1, ops)
        return (t * P[:-1] - (t + 1) * P[1:]) / theta**2
    previous = ops.zeros(tuple(H.shape), like=H)
    previous[1:] = H[:-1]
    if method == "euler":
        return -(t / theta**2) * (previous @ A.T) - H / theta
    if method == "bilinear":
        order = A.shape[0]
        A_bar, _ = discretize_arrays(A, B, theta, "bilinear", ops)
        AN = A @ ops.solve(ops.eye(order, like=A) - A / (2 * theta), ops.eye(order, like=A))
        M1 = AN @ (A_bar + ops.eye(order, like=A))
        return -(t / (2 * theta**2)) * (previous @ M1.T) - (H @ AN.T) / (2 * theta**2) - H / theta
    raise ArgumentError(f"discretizer must be one of {', '.join(DISCRETIZERS)} (got {method!r})")


def truncation_length(
    A_bar: np.ndarray, B_bar: np.ndarray, tol: float = 1e-7, max_length: int = 10_000_000
) -> int:
    """The length after which the impulse response stays below ``tol`` times its peak.

    ``H[t]`` for ``t ≥ L`` has every entry below ``tol · max|H|``, checked over at least as many steps again as
    ``L`` (the response of a stable LMU decays past its window θ). Used by backends that convolve directly with a
    truncated ``H`` when θ ≪ T.

    Examples
    --------
    >>> A_bar, B_bar = discretize(8, theta=20.0)
    >>> L = truncation_length(A_bar, B_bar)
    >>> 20 < L < 2000
    True
    """
    if not tol > 0:
        raise ArgumentError(f"tol must be > 0 (got {tol!r})")
    if spectral_radius(A_bar) >= 1:
        raise ArgumentError("the impulse response of an unstable system (spectral radius >= 1) never decays")
    A_bar = np.asarray(A_bar, dtype=np.float64)
    # max_t |H[t]| grows chunk by chunk (never all of H: that is 8·order bytes a step), state = Ā H[filled - 1]
    chunks, filled, state = [], 0, np.asarray(B_bar, dtype=np.float64).reshape(-1)
    length = 64
    while True:
        while filled < 2 * length:
            H = propagate(A_bar, state, min(2 * length - filled, 1 << 14))
            chunks.append(np.max(np.abs(H), axis=1))
            filled, state = filled + H.shape[0], A_bar @ H[-1]
        size = np.concatenate(chunks)
        above = np.nonzero(size >= tol * size.max())[0]
        last = int(above[-1]) + 1 if above.size else 1
        if last <= length:
            return last
        if 2 * length >= max_length:
            raise ArgumentError(f"the impulse response does not fall below tol={tol} within {max_length} steps")
        length *= 2


def shifted_legendre(order: int, r) -> np.ndarray:
    """The shifted Legendre polynomials ``P̃_i(r) = P_i(2r − 1)``, ``i = 0 … order-1``, at points ``r``.

    Parameters
    ----------
    order : int
    r : float or array_like
        Points, usually in [0, 1].

    Returns
    -------
    ndarray, shape ``np.shape(r) + (order,)``

    Examples
    --------
    >>> shifted_legendre(3, [0.0, 1.0]).tolist()
    [[1.0, -1.0, 1.0], [1.0, 1.0, 1.0]]
    """
    order = _check_order(order)
    r = np.asarray(r, dtype=np.float64)
    return scipy.special.eval_legendre(np.arange(order), 2.0 * r[..., None] - 1.0)


def delay_readout(order: int, r) -> np.ndarray:
    """Weights that decode the input delayed by ``r·θ`` from the memory: ``u(t − rθ) ≈ m_t · w(r)``.

    Parameters
    ----------
    order : int
    r : float or array_like of floats in [0, 1]
        The delay as a fraction of θ; many at once give one row each.

    Returns
    -------
    ndarray, shape ``np.shape(r) + (order,)``

    Examples
    --------
    >>> A_bar, B_bar = discretize(12, theta=100.0)
    >>> H = impulse_response(A_bar, B_bar, 400)   # memory after a unit impulse at t = 0
    >>> w = delay_readout(12, 0.5)                # decode u(t - 50)
    >>> abs(int(np.argmax(H @ w)) - 50) <= 3      # the impulse reappears about 50 steps later
    True
    """
    r = np.asarray(r, dtype=np.float64)
    if not np.all(np.isfinite(r)) or np.any(r < 0) or np.any(r > 1):
        raise ArgumentError(f"delay fractions r must lie in [0, 1] (got {r.tolist()!r})")
    return shifted_legendre(order, r)


def _check_order(order) -> int:
    if isinstance(order, (bool, np.bool_)) or not isinstance(order, (int, np.integer)) or order < 1:
        raise ArgumentError(f"order must be a positive integer (got {order!r})")
    return int(order)
