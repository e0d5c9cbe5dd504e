"""Tests of lmu.legendre, the one place where the LMU's linear memory is defined (see docs/design.rst, "The semantics")."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.integrate
import scipy.signal

from lmu import signals
from lmu.legendre import (
    continuous,
    delay_readout,
    discretize,
    euler_spectral_radius,
    impulse_response,
    propagate,
    shifted_legendre,
    spectral_radius,
    truncation_length,
)

METHODS = ("zoh", "euler", "bilinear")


def _loop_impulse_response(A_bar, B_bar, length):
    """``H[t] = Āᵗ B̄`` by stepping the system one step at a time."""
    out = np.empty((length, B_bar.size))
    x = B_bar.copy()
    for t in range(length):
        out[t] = x
        x = A_bar @ x
    return out


def _peak_relative_error(actual, expected):
    """Largest deviation relative to the largest entry: the impulse response decays to ~0, so plain entrywise
    relative error is meaningless in its tail."""
    return float(np.max(np.abs(actual - expected)) / np.max(np.abs(expected)))


# --------------------------------------------------------------------------------------------- continuous system


def test_continuous_order_4_is_the_exact_integer_system():
    # A[i, j] = (2i+1) · (−1 if i < j else (−1)^(i−j+1)),  B[i] = (2i+1) · (−1)^i, worked out by hand.
    expected_A = np.array(
        [
            [-1, -1, -1, -1],
            [3, -3, -3, -3],
            [-5, 5, -5, -5],
            [7, -7, 7, -7],
        ],
        dtype=np.float64,
    )
    expected_B = np.array([1, -3, 5, -7], dtype=np.float64)
    A, B = continuous(4)
    assert A.dtype == np.float64 and B.dtype == np.float64
    assert A.shape == (4, 4) and B.shape == (4,)
    np.testing.assert_array_equal(A, expected_A)
    np.testing.assert_array_equal(B, expected_B)


# --------------------------------------------------------------------------------------------- discretization


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("order", [1, 2, 5, 12, 64])
@pytest.mark.parametrize("theta", [1.0, 7.5, 100.0, 1e4])
def test_discretize_equals_scipy_cont2discrete(method, order, theta):
    A, B = continuous(order)
    C, D = np.eye(order), np.zeros((order, 1))
    Ad, Bd, _, _, dt = scipy.signal.cont2discrete((A / theta, B[:, None] / theta, C, D), dt=1, method=method)
    assert dt == 1
    A_bar, B_bar = discretize(order, theta, method)
    assert A_bar.shape == (order, order) and B_bar.shape == (order,)
    assert A_bar.dtype == np.float64 and B_bar.dtype == np.float64
    np.testing.assert_allclose(A_bar, Ad, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(B_bar, Bd[:, 0], rtol=1e-12, atol=1e-14)


def _decaying_power(A_bar, max_log2=30):
    """Square Ā until ‖Āᵏ‖_∞ < 1 (k = 2ⁿ); return k and that norm, or (k, norm) at the cap.

    Since ρ(Ā)ᵏ = ρ(Āᵏ) ≤ ‖Āᵏ‖ in any induced norm, ``‖Āᵏ‖ < 1`` certifies ``ρ(Ā) ≤ ‖Āᵏ‖^(1/k) < 1``. Unlike an
    eigenvalue of this far-from-normal matrix, this is accurate for zoh, whose powers stay below ~5 in norm before
    they decay (so squaring adds rounding of ~eps·order·25 only; euler near its limit is another matter, see the
    order-256 impulse-response test), and it tests what the backends rely on: that the powers of Ā die out.
    """
    power, k = np.array(A_bar, dtype=np.float64), 1
    for _ in range(max_log2):
        norm = float(np.linalg.norm(power, np.inf))
        if norm < 1:
            return k, norm
        power, k = power @ power, 2 * k
    return k, float(np.linalg.norm(power, np.inf))


@pytest.mark.parametrize("theta", [1.0, 10.0, 100.0, 1e3, 1e4, 1e5])
@pytest.mark.parametrize("order", [1, 4, 16, 64, 256, 1024])
def test_zoh_is_stable(order, theta):
    # Why not just np.linalg.eigvals at order 1024: A is far from normal; the condition number of the dominant
    # eigenvalue of A (shared by Ā = expm(A/θ), same eigenvectors) is ~1e2 at order 16, ~2e7 at 256 and ~4e11 at
    # 1024. At 1024 the backward error eps·‖Ā‖ of eigvals becomes an eigenvalue error of up to ~1e-4 — the same
    # size as the margin 1 − ρ ≈ 2.8e-4 at θ = 1e5 (and each eigvals costs ~2 s there). The power-norm
    # certificate is sound at every order; eigvals is asserted too where its error (≲ 1e-8 at order 256) is far
    # below the margin (≥ 1.9e-4 on this grid).
    A_bar, _ = discretize(order, theta, "zoh")
    assert np.all(np.isfinite(A_bar))
    k, norm = _decaying_power(A_bar)
    assert norm < 1, f"‖Ā^{k}‖_∞ = {norm:g} has not decayed below 1"
    bound = norm ** (1.0 / k)
    assert bound < 1
    if order <= 256:
        rho = spectral_radius(A_bar)
        assert rho < 1
        assert rho <= bound * (1 + 1e-9)


# --------------------------------------------------------------------------------------------- impulse response


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("order, theta, length", [(1, 5.0, 300), (6, 40.0, 1000), (12, 100.0, 2000), (64, 1000.0, 3000)])
def test_impulse_response_equals_a_stepping_loop(method, order, theta, length):
    # every case stable, euler included (θ above its limit: ~660 at order 64); an exploding response would only
    # measure the conditioning of its growth
    assert euler_spectral_radius(order, theta) < 1
    A_bar, B_bar = discretize(order, theta, method)
    H = impulse_response(A_bar, B_bar, length)
    assert H.shape == (length, order) and H.dtype == np.float64
    np.testing.assert_array_equal(H[0], B_bar)
    # Doubling and stepping round differently. Observed ≤ 1.3e-14 of the peak for zoh and bilinear; euler at
    # order 64, θ = 1000 (just above its limit) has lightly damped modes whose transient growth (peak ×18 over
    # B̄) amplifies that rounding to 1e-12 — the conditioning of the system, not an error of either method.
    tolerance = 1e-10 if method == "euler" else 1e-12
    assert _peak_relative_error(H, _loop_impulse_response(A_bar, B_bar, length)) < tolerance


def test_impulse_response_equals_a_stepping_loop_for_euler_near_its_limit_at_order_256():
    # Regression: euler at order 256 is stable from θ ≈ 6542; at θ = 6700 the powers of Ā grow 3e4-fold before they
    # decay, and computing H by squaring Ā all the way up compounded rounding until H grew without bound (30 × the
    # peak off at t = 5e4, 1e10 × by 2e5) while stepping decays. Observed now: 1.6e-6 of the peak, the conditioning
    # of this transient; 1e-4 fails the old behaviour by five orders of magnitude.
    order, theta, length = 256, 6700.0, 50_000
    assert euler_spectral_radius(order, theta) < 1
    A_bar, B_bar = discretize(order, theta, "euler")
    expected = _loop_impulse_response(A_bar, B_bar, length)
    assert _peak_relative_error(impulse_response(A_bar, B_bar, length), expected) < 1e-4


@pytest.mark.parametrize(
    "order, theta, method", [(6, 3e4, "zoh"), (12, 1e4, "bilinear"), (32, 5e4, "zoh")]
)
def test_impulse_response_equals_scipy_dlsim_over_1e5_steps(order, theta, method):
    length = 100_000
    A_bar, B_bar = discretize(order, theta, method)
    H = impulse_response(A_bar, B_bar, length)
    # dlsim with C = I, D = 0 outputs the state x[t] before the update; for a unit impulse at t = 0,
    # x[t + 1] = Āᵗ B̄ = H[t].
    u = np.zeros(length + 1)
    u[0] = 1.0
    _, y, _ = scipy.signal.dlsim((A_bar, B_bar[:, None], np.eye(order), np.zeros((order, 1)), 1), u)
    np.testing.assert_array_equal(y[0], 0.0)
    assert np.max(np.abs(y[1:])) > 0.1 * np.max(np.abs(B_bar))  # not a vanished response compared to zeros
    # Doubling and stepping round differently; the difference grows with log2(T) products of a transient-bounded
    # matrix (observed ≤ 3e-13 of the peak at T = 1e5). 1e-11 of the peak is float64-tight.
    assert _peak_relative_error(H, y[1:]) < 1e-11
    # the response is still well above rounding over most of the range (θ is a sizeable fraction of T)
    assert np.max(np.abs(H[length // 4])) > 1e-6 * np.max(np.abs(H))


# --------------------------------------------------------------------------------------------- propagate


@pytest.mark.parametrize("length", [2, 3, 4, 5, 37, 64, 65])
def test_propagate_a_stack_of_vectors(length):
    A_bar, _ = discretize(5, 20.0)
    v = np.random.default_rng(0).normal(size=(2, 3, 5))
    out = propagate(A_bar, v, length)
    assert out.shape == (length, 2, 3, 5) and out.dtype == np.float64
    expected = np.empty_like(out)
    x = v.copy()
    for t in range(length):
        expected[t] = x
        x = x @ A_bar.T  # out[t] = v Āᵗᵀ, row-vector convention of the cell
    assert _peak_relative_error(out, expected) < 1e-13
    # each vector of the stack propagates on its own: the same as propagating it alone
    np.testing.assert_allclose(out[:, 1, 2], propagate(A_bar, v[1, 2], length), rtol=1e-13, atol=1e-15)


def test_propagate_length_0_and_1():
    A_bar, _ = discretize(5, 20.0)
    v = np.random.default_rng(1).normal(size=(2, 3, 5))
    empty = propagate(A_bar, v, 0)
    assert empty.shape == (0, 2, 3, 5) and empty.dtype == np.float64
    assert propagate(A_bar, v[0, 0], 0).shape == (0, 5)
    one = propagate(A_bar, v, 1)
    assert one.shape == (1, 2, 3, 5)
    np.testing.assert_array_equal(one[0], v)
    one[0, 0, 0, 0] = 123.0
    assert v[0, 0, 0] != 123.0  # the result does not alias the input
    single = propagate(A_bar, v[1, 2], 1)
    assert single.shape == (1, 5)
    np.testing.assert_array_equal(single[0], v[1, 2])


# --------------------------------------------------------------------------------------------- truncation length


@pytest.mark.parametrize("tol", [1e-4, 1e-7, 1e-10])
@pytest.mark.parametrize(
    "order, theta, method",
    [(1, 10.0, "zoh"), (4, 100.0, "zoh"), (12, 1.0, "bilinear"), (12, 100.0, "euler"), (32, 1000.0, "zoh")],
)
def test_truncation_length_tail_is_below_tol(order, theta, method, tol):
    A_bar, B_bar = discretize(order, theta, method)
    L = truncation_length(A_bar, B_bar, tol=tol)
    # checked over a response much longer than what truncation_length looked at (≤ 2L)
    H = impulse_response(A_bar, B_bar, 10 * L + 20 * int(theta) + 1000)
    size = np.max(np.abs(H), axis=1)
    peak = size.max()
    assert np.max(size[L:]) < tol * peak
    assert size[L - 1] >= tol * peak  # and L is the shortest such length


@pytest.mark.parametrize("order, method", [(4, "zoh"), (12, "zoh"), (12, "bilinear")])
def test_truncation_length_grows_with_theta(order, method):
    thetas = [10.0, 100.0, 1000.0, 10000.0]
    lengths = [truncation_length(*discretize(order, theta, method)) for theta in thetas]
    assert all(a < b for a, b in zip(lengths, lengths[1:])), lengths
    assert all(L > theta for L, theta in zip(lengths, thetas)), lengths  # the memory spans at least its window


def test_truncation_length_refuses_unstable_systems():
    A_bar, B_bar = discretize(8, 4.0, "euler")
    assert spectral_radius(A_bar) > 1
    with pytest.raises(ValueError, match="unstable"):
        truncation_length(A_bar, B_bar)
    with pytest.raises(ValueError, match="unstable"):  # marginal: ρ = 1 never decays either
        truncation_length(np.eye(3), np.ones(3))


# --------------------------------------------------------------------------------------------- delay readout


def _simulate_memory(A_bar, B_bar, u):
    """``m_t = Ā m_{t-1} + B̄ u_t`` in a plain loop, from m = 0."""
    m = np.zeros((u.size, B_bar.size))
    state = np.zeros(B_bar.size)
    for t, u_t in enumerate(u):
        state = A_bar @ state + B_bar * u_t
        m[t] = state
    return m


@pytest.mark.parametrize("seed", [0, 1])
def test_delay_readout_reconstructs_delayed_white_noise(seed):
    order, theta, steps = 12, 100, 8000
    u = signals.white_noise(steps, cutoff=1.0 / theta, seed=seed)[:, 0]  # 1 cycle per θ
    m = _simulate_memory(*discretize(order, theta, "zoh"), u)
    for r in (0.0, 0.5, 1.0):
        estimate = m @ delay_readout(order, r)
        target = signals.delayed(u, int(round(r * theta)))
        # observed 0.014–0.021: the zoh readout of u(t − rθ) sits half a step later than the integer delay
        error = signals.nrmse(estimate[theta:], target[theta:])
        assert error <= 0.03, f"r={r}: NRMSE {error:.4f}"


def test_delay_readout_many_r_at_once_equals_one_at_a_time():
    order = 12
    r = np.array([[0.0, 0.1, 0.25], [0.5, 0.9, 1.0]])
    W = delay_readout(order, r)
    assert W.shape == (2, 3, order)
    for index in np.ndindex(r.shape):
        np.testing.assert_allclose(W[index], delay_readout(order, float(r[index])), rtol=1e-15, atol=1e-15)
    assert delay_readout(order, 0.5).shape == (order,)
    rows = np.stack([delay_readout(order, 0.25), delay_readout(order, 0.75)])
    np.testing.assert_allclose(delay_readout(order, [0.25, 0.75]), rows, rtol=1e-15, atol=1e-15)


@pytest.mark.parametrize("r", [-0.1, 1.0001, np.nan, np.inf, -np.inf, [0.5, np.nan], [0.2, 1.5], [-1e-12, 0.5]])
def test_delay_readout_refuses_r_outside_0_1(r):
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        delay_readout(12, r)


# --------------------------------------------------------------------------------------------- shifted Legendre


def test_shifted_legendre_end_values():
    order = 40
    P = shifted_legendre(order, [0.0, 1.0])
    assert P.shape == (2, order)
    np.testing.assert_allclose(P[0], (-1.0) ** np.arange(order), rtol=0, atol=1e-12)
    np.testing.assert_allclose(P[1], np.ones(order), rtol=0, atol=1e-12)


def test_shifted_legendre_orthogonal_on_0_1():
    order = 20
    # Gauss–Legendre with 40 nodes integrates polynomials of degree ≤ 79 exactly; products here have degree ≤ 38.
    x, w = np.polynomial.legendre.leggauss(40)
    r, w = (x + 1) / 2, w / 2  # mapped to [0, 1]
    P = shifted_legendre(order, r)  # (40, order)
    gram = P.T @ (w[:, None] * P)
    np.testing.assert_allclose(gram, np.diag(1.0 / (2 * np.arange(order) + 1)), rtol=0, atol=1e-13)
    # and with an adaptive quadrature that knows nothing about Legendre nodes, for a few pairs
    for i, j in [(0, 0), (3, 5), (7, 7), (2, 11), (19, 19)]:
        value, _ = scipy.integrate.quad(
            lambda s: shifted_legendre(order, s)[i] * shifted_legendre(order, s)[j], 0.0, 1.0, limit=200
        )
        assert value == pytest.approx(1.0 / (2 * i + 1) if i == j else 0.0, abs=1e-10)


# --------------------------------------------------------------------------------------------- euler radius


@pytest.mark.parametrize("order", [1, 2, 3, 4, 8, 16, 32])
def test_euler_spectral_radius_equals_the_eigenvalues_of_the_euler_matrix(order):
    # The cheap form 1 + λ(A)/θ and eigvals(I + A/θ) agree to ~1e-13 up to order 32 at every θ. (From order ~48 the
    # large eigenvalues are so ill-conditioned that the two disagree by percents where euler is unstable, though
    # both still agree on where the radius crosses 1.)
    for theta in [0.5, 1.0, order / 2, order, 2 * order, 4 * order, 8 * order, 100 * order]:
        expected = spectral_radius(discretize(order, theta, "euler")[0])
        actual = euler_spectral_radius(order, theta)
        assert actual == pytest.approx(expected, rel=1e-10, abs=1e-14), theta
