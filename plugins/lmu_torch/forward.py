"""The two ways ``lmu_torch.LMU`` runs a batch: stepping the cell, or the memory of all steps at once.

Design rule: both follow the step order of the design document (docs/design.rst) exactly and differ only in *how*
the memory is computed. The memory is computed in the module's compute dtype (float64 for a float64 module,
float32 otherwise: also for float16 and bfloat16 parameters and under ``torch.autocast``); the hidden cell runs in
its parameters' dtype. When the sequence length is symbolic (``torch.jit.trace``, ``torch.export``, ONNX), the
portable forms of :mod:`lmu_torch.portable` run instead, so that an exported program takes any length.
"""

import numpy as np
import torch

from . import compute
from .cell import _at, _zero_past, cell_step, hidden_sequence

__all__ = ["forward_step", "forward_parallel", "memory_input", "dense_through_memory", "last_memory", "LAST_CHUNK"]


def memory_input(model, e):
    """``u = e W + b`` (step 2 of the design) in the compute dtype."""
    dt = model.compute_dtype
    u = e @ model.kernel.to(dt) if model.kernel is not None else e
    return u + model.bias.to(dt) if model.bias is not None else u


def forward_step(model, x, st, lengths, e_mask, r_mask):
    """The cell stepped over the ``T`` steps of ``x``: returns ``(out (B, T, out), state)``, or ``(B, 1, out)``
    (the last step's) when the spec returns only the last step and there are no ``lengths``: stacking every
    step's output only to read the last would write, and in backward zero-fill, a ``(B, T, out)`` tensor (P2a's
    ``step`` row: 268 MB each way)."""
    spec, dt = model.lmu_spec, model.compute_dtype
    batch, steps = x.shape[:2]
    md, order = spec.memory_d, spec.order
    with torch.autocast(x.device.type, enabled=False):
        A_bar, B_bar = model.system()
        R = model.recurrent_kernel.to(dt) if model.recurrent_kernel is not None else None
    A_T = A_bar.T
    m = st["memory"].reshape(batch * md, order)
    h, c = st.get("hidden"), st.get("cell")
    cell_dtype = model.hidden_dtype
    if h is not None:
        h = h.to(cell_dtype)
        c = c.to(cell_dtype) if c is not None else None
    lengths_dev = lengths.to(x.device) if lengths is not None else None
    keep_all = spec.return_sequences or lengths is not None
    outs = []
    # unbind, not x[:, t]: when x requires grad (an LMU stacked on another layer), each indexing's backward would
    # add a zero-filled gradient of all of x, T of them per step (19 s instead of 0.6 s at T 784, batch 100)
    for t, xt in enumerate(x.unbind(1)):
        xt = xt.to(dt)
        with torch.autocast(x.device.type, enabled=False):
            e = torch.cat([xt, h.to(dt)], dim=1) if spec.hidden_to_memory else xt
            if e_mask is not None:
                e = e * e_mask
            u = memory_input(model, e)
            if R is not None:
                previous = m.reshape(batch, -1)
                if r_mask is not None:
                    previous = previous * r_mask
                u = u + previous @ R
            # m Āᵀ + u ⊗ B̄ by addr: two new (B·md, order) tensors a step instead of three (not in place:
            # torch.func.vmap refuses an in-place op whose argument is batched where the product is not)
            m_new = torch.addr(m @ A_T, u.reshape(-1), B_bar)
        z = m_new.reshape(batch, -1)
        if spec.input_to_hidden:
            z = torch.cat([z, xt], dim=1)
        if spec.hidden is None:
            o, h_new, c_new = z, h, c
        else:
            h_new, c_new = cell_step(spec.hidden, model.hidden, z.to(cell_dtype), h, c)
            o = h_new
        if lengths_dev is not None:
            valid = (t < lengths_dev).unsqueeze(1)
            m_new = torch.where(valid.repeat_interleave(md, dim=0), m_new, m)
            h_new = torch.where(valid, h_new, h) if h is not None else None
            c_new = torch.where(valid, c_new, c) if c is not None else None
            o = torch.where(valid, o, torch.zeros((), dtype=o.dtype, device=o.device))
        m, h, c = m_new, h_new, c_new
        if keep_all or t == steps - 1:
            outs.append(o)
    new = {"memory": m.reshape(batch, -1)}
    if spec.hidden is not None:
        new["hidden"] = h
        if spec.hidden.kind == "lstm":
            new["cell"] = c
    return torch.stack(outs, dim=1), new


def parallel_memory(model, u, mode, steps):
    """The memory of every step of ``u (B, T, md)`` by ``fft`` or ``raw`` (before the initial state's part)."""
    spec = model.lmu_spec
    if mode == "fft":
        H = model.impulse(steps)
        b = compute.block_size(steps, spec.order)
        Hf = None
        if model.theta is None:
            Hf = model._cached(("Hf", steps), lambda: compute.block_spectra(H, steps, b))
        return compute.memory_fft(u, H, Hf, b)
    return compute.memory_raw(u, model.impulse(model.raw_length(steps)))


#: ``last`` on more steps than this contracts chunks of this many, carrying the memory across them with ``Ā^L``:
#: what it holds (``H``, the cache) then stays ``O(L · order)`` however long the sequence (``benchmarks/p2.py``
#: does not cover it; ``benchmarks/last_memory.py`` prints the peak memory for T from 10³ to 10⁶).
LAST_CHUNK = 16384


def power(model, n: int):
    """``Ā^n`` in the compute dtype: from the float64 system and cached per ``n`` when θ is fixed, else a
    differentiable function of θ."""
    if model.theta is None:
        return model._cached(("power", n), lambda: model._tensor(np.linalg.matrix_power(model._numpy_system()[0], n)))
    return torch.linalg.matrix_power(model.system()[0].double(), n).to(model.compute_dtype)


def last_memory(model, u, steps, lengths):
    """The memory at each sequence's last valid step, by one contraction or, beyond :data:`LAST_CHUNK` steps,
    chunk by chunk (:func:`lmu_torch.compute.memory_last`)."""
    if steps <= LAST_CHUNK:
        return compute.memory_last(u, model.impulse(steps), lengths)
    return compute.memory_last(u, model.impulse(LAST_CHUNK), lengths, power(model, LAST_CHUNK))


def projects(model, mode, m0) -> bool:
    """Whether a ``raw`` call runs :func:`dense_through_memory`: a dense hidden cell no wider than the order (so the
    projected kernel is no larger than ``H``), no initial memory given, the cell in the compute dtype."""
    spec = model.lmu_spec
    return (mode == "raw" and m0 is None and spec.hidden is not None and spec.hidden.kind == "dense"
            and spec.hidden.units <= spec.order and model.hidden_dtype == model.compute_dtype)


def dense_through_memory(model, u, xm, after, steps, lengths):
    """A dense hidden cell over every step without the memory tensor: ``act(m_t W_m + x_t W_x + b)`` where
    ``m_t W_m = Σ_s u_s (H[t−s] W_m)``, so the input is convolved with the impulse response already projected
    through the cell's kernel, ``(L, md, units)``, and the ``(B, T, md·order)`` memory never exists. The memory
    state (the last valid step's) is :func:`last_memory`, as in ``last``. Non-finite input poisons the
    pre-activation from its step on (a dense kernel spreads one NaN row of the memory to every unit)."""
    from .cell import ACTIVATIONS

    spec, dt = model.lmu_spec, model.compute_dtype
    md, order, units = spec.memory_d, spec.order, spec.hidden.units
    weight = model.hidden.weight.to(dt)  # (units, md·order [+ input_d])
    H = model.impulse(model.raw_length(steps)).to(dt)  # (L, order)
    kernel = torch.einsum("lo,udo->udl", H, weight[:, :md * order].reshape(units, md, order))
    pre = compute.convolve(u, kernel)  # (B, T, units)
    if spec.input_to_hidden:
        pre = pre + xm @ weight[:, md * order:].T
    if model.hidden.bias is not None:
        pre = pre + model.hidden.bias.to(dt)
    pre = compute.poison(pre, after.any(-1, keepdim=True), units)
    out = ACTIVATIONS[spec.hidden.activation](pre)
    memory = last_memory(model, u, steps, lengths)
    memory = compute.poison(memory.unsqueeze(1), _at(after, lengths).unsqueeze(1), order)[:, 0]
    return _zero_past(out, lengths), {"memory": memory, "hidden": _at(out, lengths)}


def forward_parallel(model, x, st, mode, lengths, e_mask):
    """The memory of every step at once (``fft``, ``raw``) or of the last only (``last``), then the hidden cell
    fused over the sequence; ``st`` is the given state or None. Returns ``(out, state)``."""
    spec, dt = model.lmu_spec, model.compute_dtype
    batch, steps = x.shape[:2]
    m0 = st["memory"] if st is not None else None
    st = st or {"hidden": model._zeros(batch), "cell": model._zeros(batch)}
    with torch.autocast(x.device.type, enabled=False):
        xm = x.to(dt)
        e = xm * e_mask.unsqueeze(1) if e_mask is not None else xm
        u, after = compute.clean(memory_input(model, e))
        if mode == "last":
            memory = last_memory(model, u, steps, lengths)
            if m0 is not None and lengths is None:  # m0 (Ā^T)ᵀ: one matrix power, not T steps of free response
                rows = m0.reshape(-1, spec.order) @ power(model, steps).T
                memory = memory + rows.reshape(batch, -1)
            elif m0 is not None:
                memory = memory + _at(compute.free_response(model.system()[0], m0, steps, spec.order), lengths)
            memory = compute.poison(memory.unsqueeze(1), _at(after, lengths).unsqueeze(1), spec.order)[:, 0]
        elif projects(model, mode, m0):
            return dense_through_memory(model, u, xm, after, steps, lengths)
        else:
            memory = parallel_memory(model, u, mode, steps)
            if m0 is not None:
                memory = memory + compute.free_response(model.system()[0], m0, steps, spec.order)
            memory = compute.poison(memory, after, spec.order)
    if mode == "last":
        z = torch.cat([memory, _at(xm, lengths)], 1) if spec.input_to_hidden else memory
        new = {"memory": memory}
        if spec.hidden is None:
            return z, new
        out, h, _ = hidden_sequence(spec.hidden, model.hidden, z.unsqueeze(1).to(model.hidden_dtype),
                                    st["hidden"].to(model.hidden_dtype), None)
        new["hidden"] = h
        return out[:, 0], new
    z = torch.cat([memory, xm], dim=2) if spec.input_to_hidden else memory
    new = {"memory": _at(memory, lengths)}
    if spec.hidden is None:
        return _zero_past(z, lengths), new
    cast = model.hidden_dtype
    c0 = st["cell"].to(cast) if "cell" in st else None
    out, h, c = hidden_sequence(spec.hidden, model.hidden, z.to(cast), st["hidden"].to(cast), c0, lengths)
    new["hidden"] = h
    if spec.hidden.kind == "lstm":
        new["cell"] = c
    return out, new
