"""The LMU's headline, computed: a fixed, untrained LMU holds a sliding window of its input.

Design rule: the demo trains nothing and hides nothing. It feeds band-limited white noise to an LMU with no
kernel and no hidden cell, decodes the input delayed by r·θ from the memory with the Legendre readout of
:mod:`lmu.legendre`, and measures the NRMSE against the truly delayed signal, after the first θ steps.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from . import legendre
from .registry import build, run
from .signals import delayed, nrmse, white_noise
from .spec import LMUSpec

__all__ = ["DelayResult", "delay_memory", "delay_nrmse", "delay_table", "bandwidth_table"]

THETA = 100
DELAYS = (0.0, 0.25, 0.5, 0.75, 1.0)
ORDERS = (6, 12, 24)
BANDS = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0)


@dataclasses.dataclass(frozen=True)
class DelayResult:
    """NRMSE of the decoded delayed input for one order and band limit, one value per delay fraction."""

    order: int
    band: float
    delays: tuple[float, ...]
    nrmse: tuple[float, ...]


def delay_memory(order: int, theta: float, signal: np.ndarray, backend: str = "numpy") -> np.ndarray:
    """Run ``signal`` (T,) through an untrained LMU (no kernel, no hidden) and return its memory ``(T, order)``.

    Examples
    --------
    >>> m = delay_memory(6, 50, np.ones(120))
    >>> m.shape
    (120, 6)
    """
    spec = LMUSpec(memory_d=1, order=order, theta=theta, input_d=1, kernel_initializer=None,
                   return_sequences=True, dtype="float64")
    return run(build(spec, backend), np.asarray(signal, np.float64).reshape(1, -1, 1))[0]


def delay_nrmse(order: int, band: float, delays=DELAYS, theta: float = THETA, windows: int = 40,
                seed: int = 0, backend: str = "numpy") -> DelayResult:
    """NRMSE of ``u(t − rθ)`` decoded from the memory, for input band-limited to ``band`` cycles per θ.

    Examples
    --------
    >>> result = delay_nrmse(12, band=1.0, delays=(0.0, 0.5, 1.0))
    >>> all(e < 0.03 for e in result.nrmse)
    True
    """
    steps = int(windows * theta)
    signal = white_noise(steps, cutoff=band / theta, seed=seed)[:, 0]
    memory = delay_memory(order, theta, signal, backend)
    decoded = memory @ legendre.delay_readout(order, np.asarray(delays)).T  # (T, len(delays))
    skip = int(np.ceil(theta))
    errors = tuple(
        nrmse(decoded[skip:, k], delayed(signal, int(round(r * theta)))[skip:]) for k, r in enumerate(delays)
    )
    return DelayResult(order, band, tuple(delays), errors)


def delay_table(orders=ORDERS, band: float = 1.0, delays=DELAYS, **kwargs) -> list[DelayResult]:
    """:func:`delay_nrmse` for several orders at one band limit."""
    return [delay_nrmse(q, band, delays, **kwargs) for q in orders]


def bandwidth_table(orders=ORDERS, bands=BANDS, delays=tuple(np.linspace(0, 1, 11)), **kwargs):
    """Mean NRMSE over delays ``r ∈ [0, 1]`` as the band limit grows: ``{order: [(band, mean_nrmse), …]}``."""
    return {q: [(b, float(np.mean(delay_nrmse(q, b, delays, **kwargs).nrmse))) for b in bands] for q in orders}
