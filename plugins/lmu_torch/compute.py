"""The LMU's memory in torch: the step update and the parallel forms (fft, raw, last) for LTI specs.

Design rule: the formulas come from ``lmu.legendre`` (run on torch tensors through :mod:`lmu_torch.ops`); this
module only arranges them for batches. The impulse response is computed in float64 and is differentiable in θ
through the closed form ``lmu.legendre.impulse_response_dtheta``, not by differentiating through powers of Ā.
Nothing here synchronizes with the GPU: non-finite input is handled with masks, never with a check.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from lmu import legendre

from .ops import TORCH

__all__ = ["impulse_response", "fft_length", "block_size", "block_spectra", "memory_fft", "memory_raw", "memory_last",
           "right_align", "free_response", "clean", "poison", "convolve"]


class _ImpulseResponse(torch.autograd.Function):
    """``H = Āᵗ B̄`` for ``t < length`` as a function of θ, with the exact gradient ``Σ grad_H · dH/dθ``."""

    @staticmethod
    def forward(ctx, theta, A, B, method, length):
        with torch.no_grad():
            H, P = legendre.impulse_response_and_powers(A, B, theta, method, length, TORCH)
        ctx.save_for_backward(theta, A, B, H, P)
        ctx.method = method
        return H

    @staticmethod
    def backward(ctx, grad_H):
        theta, A, B, H, P = ctx.saved_tensors
        with torch.no_grad():
            dH = legendre.impulse_response_dtheta(A, B, theta, ctx.method, H, TORCH, P=P)
            grad = (grad_H.to(dH.dtype) * dH).sum().reshape(theta.shape)
        return grad, None, None, None, None


def impulse_response(theta, A, B, method: str, length: int) -> torch.Tensor:
    """The impulse response ``(length, order)`` in float64, differentiable in the 0-d tensor ``theta``."""
    return _ImpulseResponse.apply(theta.to(torch.float64), A, B, method, int(length))


def fft_length(n: int) -> int:
    """The smallest 2·3·5·7-smooth length ≥ n, the FFT length for a linear convolution of ``n`` samples.

    Written out rather than taken from ``scipy.fft.next_fast_len`` on purpose: scipy's is a C extension, which
    ``torch.compile(fullgraph=True)`` cannot trace (the parallel modes must compile as one graph), and its lengths
    are no faster. Measured side by side (``python benchmarks/fft_lengths.py``: 12 sequence lengths from 137 to
    17,934 steps, batch 32, order 256, CPU), scipy's 5-smooth real-FFT lengths took 0.95× and 0.96× of these in
    two runs (within the run-to-run spread) and its 11-smooth lengths 1.03× and 1.06× (up to 1.9× slower at some
    lengths); a factor 11 is also slow in cuFFT. The FFT always runs in float32 or float64, never in half
    precision, where cuFFT would want a power of two.

    Examples
    --------
    >>> fft_length(1567), fft_length(1024)
    (1568, 1024)
    """
    best = 1 << max(0, (n - 1).bit_length())
    p7 = 1
    while p7 < best:
        p5 = p7
        while p5 < best:
            p3 = p5
            while p3 < best:
                p2 = p3
                while p2 < n:
                    p2 *= 2
                best = min(best, p2)
                p3 *= 3
            p5 *= 5
        p7 *= 7
    return best


def block_size(steps: int, order: int) -> int:
    """The block length ``b`` of :func:`memory_fft` for ``steps`` steps: about √T (the direct part costs T·b, the
    block sum T²/b), at least 2T/order (so the block spectra take no more memory than the memory tensor), with
    ``2b`` a fast FFT length.

    Examples
    --------
    >>> block_size(784, 256), block_size(16384, 256)
    (28, 128)
    """
    want = max(2, math.isqrt(max(steps - 1, 0)) + 1, -(-2 * steps // max(order, 1)))
    return fft_length(want)


def block_spectra(H: torch.Tensor, steps: int, b: int) -> torch.Tensor:
    """``rfft`` of the impulse response cut into blocks of ``b`` steps, each zero-padded to ``2b``:
    ``(K, b + 1, order)`` for ``K = ⌈steps / b⌉`` (a cache for fixed θ). Block 0 is not used (it is convolved
    directly) and is returned as zeros."""
    blocks = -(-steps // b)
    Hp = F.pad(H[:steps], (0, 0, 0, blocks * b - min(steps, H.shape[0])))
    Hb = Hp.reshape(blocks, b, H.shape[1])
    Hf = torch.fft.rfft(Hb, n=2 * b, dim=1)
    return torch.cat([torch.zeros_like(Hf[:1]), Hf[1:]]) if blocks > 1 else torch.zeros_like(Hf)


def memory_fft(u: torch.Tensor, H: torch.Tensor, Hf: torch.Tensor | None = None, b: int | None = None):
    """``m_t = Σ_{s≤t} H[t−s] u_s`` for every step, exactly causal: ``u (B, T, md)`` → ``(B, T, md·order)``.

    Uniformly partitioned FFT convolution: lags below ``b`` are convolved directly (one matrix product of each
    step's window of ``b`` inputs with ``H[:b]``); lags from ``b`` on come from the spectra of whole input blocks
    *before* the output's block, summed over block lags in the frequency domain. So an output never takes round-off
    from its own block or from the future: changing inputs after step t leaves the output at t unchanged up to the
    round-off of the inputs up to t (one FFT over the whole sequence would spread the round-off of a huge late
    value backward over all of it). ``Hf`` may hold :func:`block_spectra` of ``H`` for ``b`` (a cache for fixed θ).

    Every large tensor is made once, in the layout its consumer reads: the direct part is computed in the output's
    layout, the overlap-add of neighbouring blocks is folded into the block spectra (below), and the block sums
    are one batched product over frequencies (P2a of ``benchmarks/p2.py``: a training step allocates 4.5 GB where
    the time-domain overlap-add of unfolded block pairs allocated 7.4 GB, 1.2–1.6× faster in two runs).
    """
    batch, steps, md = u.shape
    order = H.shape[1]
    b = b if b is not None else block_size(steps, order)
    blocks = -(-steps // b)
    padded = blocks * b
    # lags < b, direct: each step's window of the b inputs up to it, times H[:b] reversed, in the output's layout
    near = min(b, H.shape[0])
    windows = F.pad(u, (0, 0, near - 1, padded - steps)).unfold(1, near, 1)  # (B, K·b, md, near)
    out = windows @ H[:near].flip(0).to(u.dtype)  # (B, K·b, md, order)
    if blocks < 2:
        return out[:, :steps].reshape(batch, steps, md * order)
    if Hf is None:
        Hf = block_spectra(H, steps, b)
    x = F.pad(u, (0, 0, 0, padded - steps)).permute(2, 0, 1).reshape(md * batch, blocks, b)  # n = (md, B)
    Uf = torch.fft.rfft(x, n=2 * b, dim=2).permute(2, 0, 1)  # (F, N, K), F = b + 1
    # S[f, n, j, d − 1] = Uf[f, n, j − d] for 1 ≤ d ≤ j: the block that lies d blocks before output block j
    Up = F.pad(Uf, (blocks - 1, 0))  # K − 1 zero blocks in front
    S = Up.unfold(2, blocks, 1)[:, :, :blocks, :blocks - 1].flip(-1)  # (F, N, K, K − 1)
    nf = S.shape[0]
    # Block j's outputs are the first half of irfft(Y_j) plus the second half of irfft(Y_{j−1}) (each product of
    # two b-step blocks spans 2b steps). A half-period shift is the spectrum times (−1)^k, so both halves come from
    # one inverse transform of Σ_d U_{j−d} G_d, with G_d = Hf_d + (−1)^k Hf_{d−1} (Hf_0 is zero): only blocks
    # before j still.
    sign = 1.0 - 2.0 * (torch.arange(nf, device=Hf.device) % 2).to(Hf.real.dtype)
    G = Hf[1:] + sign[None, :, None] * Hf[:-1]  # (K − 1, F, order)
    Y = torch.bmm(S.reshape(nf, -1, blocks - 1), G.permute(1, 0, 2).to(S.dtype))  # (F, N·K, order)
    far = torch.fft.irfft(Y, n=2 * b, dim=0)[:b].view(b, md, batch, blocks, order)
    out = out.view(batch, blocks, b, md, order) + far.permute(2, 3, 0, 1, 4)
    return out.reshape(batch, padded, md * order)[:, :steps]


def memory_raw(u: torch.Tensor, H: torch.Tensor) -> torch.Tensor:
    """The same causal convolution done directly with a truncated ``H (L, order)`` (best when θ ≪ T)."""
    batch, steps, md = u.shape
    length, order = H.shape
    x = u.permute(0, 2, 1).reshape(batch * md, 1, steps)
    weight = H.flip(0).T.unsqueeze(1)  # (order, 1, L): conv1d correlates, so the kernel is reversed
    from .cell import _exact_cudnn

    with _exact_cudnn(x, x.dtype):
        y = F.conv1d(F.pad(x, (length - 1, 0)), weight)  # (B·md, order, T)
    return y.reshape(batch, md, order, steps).permute(0, 3, 1, 2).reshape(batch, steps, md * order)


def convolve(u: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """``y_t = Σ_{s≤t} Σ_d u_s[d] kernel[:, d, t−s]``: ``u (B, T, md)`` with ``kernel (units, md, L)`` →
    ``(B, T, units)``, causal and direct (``conv1d``)."""
    length = kernel.shape[-1]
    x = F.pad(u.permute(0, 2, 1), (length - 1, 0))
    from .cell import _exact_cudnn

    with _exact_cudnn(x, x.dtype):
        return F.conv1d(x, kernel.flip(-1)).permute(0, 2, 1)


def right_align(u: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """``u (B, T, md)`` with each sequence moved so that its last valid step is step ``T − 1`` (zeros before its
    first step; the steps after its length dropped): a gather of the input, no larger than it."""
    batch, steps, md = u.shape
    source = torch.arange(steps, device=u.device)[None, :] - (steps - lengths.to(u.device))[:, None]
    moved = u.gather(1, source.clamp(min=0).unsqueeze(-1).expand(batch, steps, md))
    return torch.where((source >= 0).unsqueeze(-1), moved, torch.zeros((), dtype=u.dtype, device=u.device))


def memory_last(u: torch.Tensor, H: torch.Tensor, lengths=None, carry: torch.Tensor | None = None) -> torch.Tensor:
    """Only the memory at the last (valid) step: a contraction of the inputs with the reversed impulse response.

    ``H`` covers every step, or, with ``carry = Ā^L`` for ``L = len(H)``, a chunk of ``L`` steps: the sequence is
    then contracted chunk by chunk, the memory carried across chunks by ``m ← m Ā^Lᵀ + Σ_chunk H u``, so that what
    is held grows with ``L``, not with ``T`` (``LAST_CHUNK`` in :mod:`lmu_torch.forward`). Each sequence with a
    ``lengths`` entry is first right-aligned (:func:`right_align`), so it ends at the last step."""
    batch, steps, md = u.shape
    order = H.shape[1]
    if lengths is not None:
        u = right_align(u, lengths)
    if carry is None:
        return torch.einsum("btd,to->bdo", u, H[:steps].flip(0)).reshape(batch, md * order)
    chunk = H.shape[0]
    chunks = -(-steps // chunk)
    u = F.pad(u, (0, 0, chunks * chunk - steps, 0))  # zeros in front change nothing
    Hr = H.flip(0)
    m = torch.einsum("btd,to->bdo", u[:, :chunk], Hr)
    for c in range(1, chunks):
        m = m @ carry.T + torch.einsum("btd,to->bdo", u[:, c * chunk:(c + 1) * chunk], Hr)
    return m.reshape(batch, md * order)


def free_response(A_bar: torch.Tensor, m0: torch.Tensor, steps: int, order: int) -> torch.Tensor:
    """``m0 Ā^{t+1}ᵀ`` for every step: the part of the memory that the initial state leaves, ``(B, T, md·order)``."""
    batch = m0.shape[0]
    rows = m0.reshape(-1, order) @ A_bar.T
    P = legendre.propagate(A_bar, rows, steps, TORCH)  # (T, B·md, order)
    return P.reshape(steps, batch, -1).permute(1, 0, 2)


def clean(u: torch.Tensor):
    """``u`` with non-finite entries set to 0 (so a convolution cannot smear them backward in time), and the mask
    of the steps at or after each sequence's first non-finite value."""
    bad = ~torch.isfinite(u)
    after = torch.cumsum(bad.to(torch.int32), dim=1) > 0
    return torch.where(bad, torch.zeros((), dtype=u.dtype, device=u.device), u), after


def poison(memory: torch.Tensor, after: torch.Tensor, order: int) -> torch.Tensor:
    """NaN in every memory row from a sequence's first non-finite input on, as stepping would give."""
    batch, steps, md = after.shape
    m = memory.reshape(batch, steps, md, order)
    nan = torch.full((), float("nan"), dtype=m.dtype, device=m.device)
    return torch.where(after.unsqueeze(-1), nan, m).reshape(batch, steps, md * order)
