"""Figures drawn by the CLI: the shifted Legendre basis and the delay demo.

Design rule: matplotlib is optional (the ``plot`` extra) and imported only inside these functions,
with the Agg backend so that they work without a screen.
"""

from __future__ import annotations

import os

import numpy as np

from . import legendre
from .demo import THETA, bandwidth_table, delay_memory
from .errors import ArgumentError, BackendUnavailable
from .files import atomic_write
from .install import install_command
from .signals import delayed, white_noise

__all__ = ["plot_basis", "plot_demo", "figure_format", "basis_colours", "MAX_BASIS_ORDER"]


#: The most Legendre polynomials ``plot_basis`` draws (more are neither legible nor quick).
MAX_BASIS_ORDER = 64


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise BackendUnavailable(f"plotting needs matplotlib: {install_command('plot')}") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure_format(path) -> str:
    """The image format ``path``'s extension asks for, refused (before any work) when matplotlib cannot write it.

    Examples
    --------
    >>> figure_format("basis.svg")
    'svg'
    """
    plt = _pyplot()
    supported = plt.figure().canvas.get_supported_filetypes()
    plt.close("all")
    ext = os.path.splitext(os.fspath(path))[1].lstrip(".").lower()
    if ext not in supported:
        raise ArgumentError(f"cannot draw {os.fspath(path)!r}: its extension {('.' + ext) if ext else '(none)'} is "
                            f"not an image format matplotlib writes ({', '.join(sorted(supported))})")
    return ext


def _save(fig, path, dpi: int) -> None:
    """``fig.savefig`` through :func:`lmu.files.atomic_write`: a failed save leaves an older file as it was."""
    fmt = figure_format(path)
    with atomic_write(path) as f:
        fig.savefig(f, dpi=dpi, format=fmt)


def basis_colours(order: int) -> list[tuple[float, ...]]:
    """One colour per polynomial, none repeated (matplotlib's default cycle has 10, so P̃10 looked like P̃0):
    ``order`` evenly spaced colours of the perceptually uniform 'viridis' map, dark to light with the degree.

    Examples
    --------
    >>> colours = basis_colours(12)
    >>> len(colours) == len(set(colours)) == 12
    True
    """
    import matplotlib

    cmap = matplotlib.colormaps["viridis"]
    return [tuple(float(c) for c in cmap(v)) for v in np.linspace(0.0, 0.92, order)]


def plot_basis(order: int, path) -> None:
    """Draw the first ``order`` shifted Legendre polynomials on [0, 1] into an image file."""
    if isinstance(order, bool) or not isinstance(order, int) or not 1 <= order <= MAX_BASIS_ORDER:
        raise ArgumentError(f"plot_basis order must be an integer from 1 to {MAX_BASIS_ORDER} (got {order!r})")
    figure_format(path)
    plt = _pyplot()
    r = np.linspace(0, 1, 400)
    basis = legendre.shifted_legendre(order, r)
    fig, ax = plt.subplots(figsize=(7, 4))
    colours = basis_colours(order)
    for i in range(order):
        ax.plot(r, basis[:, i], lw=1.2, color=colours[i], label=f"$\\tilde P_{{{i}}}$" if order <= 12 else None)
    ax.set_xlabel("r = delay / θ")
    ax.set_ylabel("$\\tilde P_i(r)$")
    ax.set_title(f"Shifted Legendre basis, order {order}")
    if order <= 12:
        ax.legend(ncol=1, fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    _save(fig, path, 120)
    plt.close(fig)


def plot_demo(path, order: int = 12, theta: float = THETA, seed: int = 0) -> None:
    """Input, memory and reconstructions of an untrained LMU, plus the NRMSE against the band limit."""
    figure_format(path)
    plt = _pyplot()
    steps = int(8 * theta)
    signal = white_noise(steps, cutoff=1.0 / theta, seed=seed)[:, 0]
    memory = delay_memory(order, theta, signal)
    t = np.arange(steps)
    fig, axes = plt.subplots(3, 1, figsize=(8, 9))
    axes[0].plot(t, signal, color="0.6", lw=2, label="input u(t)")
    for r, color in ((0.5, "C0"), (1.0, "C3")):
        decoded = memory @ legendre.delay_readout(order, r)
        axes[0].plot(t, delayed(signal, int(r * theta)), color=color, lw=2, alpha=0.35,
                      label=f"true u(t − {r:g}θ)")
        axes[0].plot(t, decoded, color=color, lw=1, ls="--", label=f"decoded u(t − {r:g}θ)")
    axes[0].set_title(f"Untrained LMU (order {order}, θ = {theta:g} steps): delayed input from the memory")
    axes[0].set_xlabel("time step")
    axes[0].set_ylabel("signal (arbitrary units)")
    axes[0].legend(fontsize=8, ncol=3)
    axes[1].plot(t, memory, lw=0.8)
    axes[1].set_title("memory m(t) (one line per Legendre coefficient)")
    axes[1].set_ylabel("coefficient value")
    for q, curve in bandwidth_table().items():
        bands, errs = zip(*curve)
        axes[2].plot(bands, errs, marker="o", label=f"order {q}")
    axes[2].set_xlabel("input band limit (cycles per θ)")
    axes[2].set_ylabel("mean NRMSE over r ∈ [0, 1]")
    axes[2].set_yscale("log")
    axes[2].legend(fontsize=8)
    axes[1].set_xlabel("time step")
    fig.tight_layout()
    _save(fig, path, 110)
    plt.close(fig)
