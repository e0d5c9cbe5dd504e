"""Test signals and error measures shared by the demo, the conformance kit and the tests.

Design rule: signals are reproducible from a seed and defined in units of the LMU's own clock (steps, and cycles
per θ), so that a figure means the same thing for every backend.
"""

from __future__ import annotations

import numpy as np

__all__ = ["white_noise", "nrmse", "delayed"]


def white_noise(steps: int, cutoff: float, rms: float = 1.0, seed=0, dims: int = 1) -> np.ndarray:
    """Band-limited white noise: flat spectrum up to ``cutoff`` cycles per step, nothing above, unit RMS.

    Parameters
    ----------
    steps : int
        Length of the signal.
    cutoff : float
        Highest frequency in cycles per step (``c / theta`` for c cycles per θ); at least one frequency bin
        (``1 / steps``) is always kept.
    rms : float
        Root-mean-square value of each dimension.
    seed : int or numpy.random.Generator
    dims : int
        Number of independent signals (columns).

    Returns
    -------
    ndarray, shape (steps, dims), float64

    Examples
    --------
    >>> x = white_noise(1000, cutoff=0.01, seed=1)
    >>> x.shape, round(float(np.sqrt(np.mean(x ** 2))), 6)
    ((1000, 1), 1.0)
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    steps = int(steps)
    freqs = np.fft.rfftfreq(steps)
    keep = (freqs > 0) & (freqs <= max(float(cutoff), 1.0 / steps))
    coeffs = np.zeros((freqs.size, dims), dtype=complex)
    n = int(keep.sum())
    coeffs[keep] = rng.normal(size=(n, dims)) + 1j * rng.normal(size=(n, dims))
    signal = np.fft.irfft(coeffs, n=steps, axis=0)
    signal /= np.sqrt(np.mean(signal**2, axis=0, keepdims=True))
    return rms * signal


def delayed(signal: np.ndarray, delay: int) -> np.ndarray:
    """``signal`` delayed by ``delay`` steps along axis 0, zeros before it (the LMU's initial state).

    Examples
    --------
    >>> delayed(np.arange(5.0), 2).tolist()
    [0.0, 0.0, 0.0, 1.0, 2.0]
    """
    out = np.zeros_like(signal)
    if delay < signal.shape[0]:
        out[delay:] = signal[: signal.shape[0] - delay]
    return out


def nrmse(estimate, target) -> float:
    """Root-mean-square error divided by the target's root-mean-square value.

    Examples
    --------
    >>> nrmse([0.0, 2.0], [1.0, 1.0])
    1.0
    """
    estimate, target = np.asarray(estimate, float), np.asarray(target, float)
    return float(np.sqrt(np.mean((estimate - target) ** 2)) / np.sqrt(np.mean(target**2)))
