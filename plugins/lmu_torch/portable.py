"""The forms of ``lmu_torch.LMU.forward`` that export with a symbolic sequence length.

Design rule: when the forward is captured (``torch.jit.trace``, ``torch.export``, ``torch.onnx.export``,
``torch.compile``), nothing may depend on the value of ``T``: no Python loop over steps, no FFT length, no cache
keyed by length, no fused ``nn.RNN`` (which pins ``T`` under export and which dynamo refuses). So the memory of the
parallel modes is the direct convolution with the truncated impulse response (a kernel of fixed length: ``fft``
and ``last`` export as ``raw``, which computes the same numbers), and every recurrence (the hidden rnn or lstm,
and the whole cell in ``step`` mode or from a given state) is one step function looped by ``scan`` under dynamo
and by a TorchScript loop under ``torch.jit.trace``. The math is the same as :mod:`lmu_torch.forward`'s, written
once here in TorchScript's subset.
"""

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from . import compute

__all__ = ["applies", "forward"]

#: The largest memory (memory_d·order) whose step form multiplies by block-diagonal matrices: reshaping by the batch
#: size inside a scan fails to export to ONNX (torch 2.13), so this form is used where it costs little memory.
_BLOCK_DIAGONAL_MAX = 2048
_CODES = {"linear": 0, "tanh": 1, "relu": 2, "sigmoid": 3}
_KINDS = {"dense": 0, "rnn": 1, "lstm": 2}


def applies(model, x) -> bool:
    """Whether the forward of ``model`` on ``x`` runs the portable form: under a tracer or an export always; under
    ``torch.compile`` with a fixed θ (with a trainable θ the eager forms compile better: inductor cannot yet lower
    the gradient of a scan whose step depends on θ, torch 2.13)."""
    if torch.jit.is_tracing() or torch.compiler.is_exporting():
        return True
    return torch.compiler.is_compiling() and model.theta is None


def _act(v: Tensor, code: int) -> Tensor:
    if code == 1:
        return torch.tanh(v)
    if code == 2:
        return torch.relu(v)
    if code == 3:
        return torch.sigmoid(v)
    return v


def _cell(pre: Tensor, c: Tensor, kind: int, act: int, rec: int):
    """The hidden cell from its pre-activation (input and recurrent parts summed): ``(h, c)``."""
    if kind != 2:
        return _act(pre, act), c
    i, f, g, o = pre.chunk(4, dim=-1)
    c_new = _act(f, rec) * c + _act(i, rec) * _act(g, act)
    return _act(o, rec) * _act(c_new, act), c_new


def _hidden_step(zw_t: Tensor, valid_t: Tensor, h: Tensor, c: Tensor, W_hh: Tensor, kind: int, act: int, rec: int):
    """One step of the hidden recurrence from ``zw_t = z_t W_ihᵀ + b``; a step past a sequence's end keeps the
    state and outputs zero. Returns ``(h, c, out)``."""
    h_new, c_new = _cell(zw_t + F.linear(h, W_hh), c, kind, act, rec)
    h_new = torch.where(valid_t, h_new, h)
    c_new = torch.where(valid_t, c_new, c)
    return h_new, c_new, torch.where(valid_t, h_new, torch.zeros_like(h_new))


def _full_step(ux_t: Tensor, x_t: Tensor, valid_t: Tensor, m: Tensor, h: Tensor, c: Tensor, A_T: Tensor,
               B_bar: Tensor, K_h: Optional[Tensor], R: Optional[Tensor], h_mask: Optional[Tensor],
               r_mask: Optional[Tensor], W_ih: Optional[Tensor], W_hh: Optional[Tensor], b_h: Optional[Tensor],
               kind: int, act: int, rec: int, input_to_hidden: bool, md: int):
    """One step of the whole cell (the design's step order) from ``ux_t``, the input's part of ``u`` (bias
    included), ``m (B, md·order)``; ``K_h`` is the kernel's rows for the hidden state (hidden_to_memory), ``kind``
    −1 means no hidden cell, ``md`` 0 that ``A_T`` and ``B_bar`` are block-diagonal. Returns ``(m, h, c, out)``."""
    u = ux_t
    if K_h is not None:
        u = u + torch.mm(h.to(ux_t.dtype) if h_mask is None else h.to(ux_t.dtype) * h_mask, K_h)
    if R is not None:
        u = u + torch.mm(m if r_mask is None else m * r_mask, R)
    if md == 0:  # A_T, B_bar are block-diagonal (md·order)²: plain matrix products, no reshapes of the batch
        m_new = torch.mm(m, A_T) + torch.mm(u, B_bar)
    else:
        m_new = (m.unflatten(1, (md, -1)) @ A_T + u.unsqueeze(-1) * B_bar).flatten(1)
    z = torch.cat([m_new, x_t], dim=1) if input_to_hidden else m_new
    if kind < 0:
        h_new, c_new, out = h, c, z
    else:
        assert W_ih is not None
        zh = F.linear(z.to(W_ih.dtype), W_ih, b_h)
        if kind == 0:
            h_new, c_new = _act(zh, act), c
        else:
            assert W_hh is not None
            h_new, c_new = _cell(zh + F.linear(h, W_hh), c, kind, act, rec)
        out = h_new
    m_new = torch.where(valid_t, m_new, m)
    h_new = torch.where(valid_t, h_new, h)
    c_new = torch.where(valid_t, c_new, c)
    return m_new, h_new, c_new, torch.where(valid_t, out, torch.zeros_like(out))


def _hidden_loop(zw: Tensor, valid: Tensor, h: Tensor, c: Tensor, W_hh: Tensor, kind: int, act: int, rec: int):
    """:func:`_hidden_step` over ``zw (B, T, gates·units)``, for TorchScript."""
    outs = []
    for t in range(zw.shape[1]):
        h, c, o = _hidden_step(zw[:, t], valid[:, t], h, c, W_hh, kind, act, rec)
        outs.append(o)
    return torch.stack(outs, dim=1), h, c


def _full_loop(ux: Tensor, x: Tensor, valid: Tensor, m: Tensor, h: Tensor, c: Tensor, A_T: Tensor, B_bar: Tensor,
               K_h: Optional[Tensor], R: Optional[Tensor], h_mask: Optional[Tensor], r_mask: Optional[Tensor],
               W_ih: Optional[Tensor], W_hh: Optional[Tensor], b_h: Optional[Tensor], kind: int, act: int, rec: int,
               input_to_hidden: bool, md: int):
    """:func:`_full_step` over the ``T`` steps, for TorchScript."""
    outs = []
    for t in range(x.shape[1]):
        m, h, c, o = _full_step(ux[:, t], x[:, t], valid[:, t], m, h, c, A_T, B_bar, K_h, R, h_mask, r_mask, W_ih,
                                W_hh, b_h, kind, act, rec, input_to_hidden, md)
        outs.append(o)
    return torch.stack(outs, dim=1), m, h, c


_SCRIPTED: dict = {}


def _scripted(fn):
    """``torch.jit.script(fn)``, compiled once (only ``torch.jit.trace`` needs it)."""
    if fn.__name__ not in _SCRIPTED:
        _SCRIPTED[fn.__name__] = torch.jit.script(fn)
    return _SCRIPTED[fn.__name__]


def _scan(step, carry, xs):
    """``step(carry, x_t) → (carry, y_t)`` over dim 1 of every tensor in ``xs``: ``(carry, ys (B, T, ...))``."""
    from torch._higher_order_ops.scan import scan

    def combine(carry, x_t):
        new, y = step(carry, x_t)
        return tuple(v.clone() for v in new), y.clone()  # scan's outputs may not alias its inputs

    return scan(combine, tuple(carry), tuple(xs), dim=1)


def _hidden_weights(model, kind):
    """``(W_ih, W_hh, bias)`` of the hidden cell; under ``torch.compile`` from its parameters (dynamo refuses to
    touch an ``nn.RNN``), under export through the module (where export sees them as parameters)."""
    params = model._cell_parameters if not torch.compiler.is_exporting() else dict(model.hidden.named_parameters())
    if kind == 0:
        return params["weight"], None, params.get("bias")
    return params["weight_ih_l0"], params["weight_hh_l0"], params.get("bias_ih_l0")


def forward(model, x, st, given, lengths, e_mask, r_mask):
    """The forward for a captured graph: ``(out (B, T, out), state)`` as :mod:`lmu_torch.forward` gives."""
    spec, dt = model.lmu_spec, model.compute_dtype
    batch, steps = x.shape[0], x.shape[1]
    hidden = spec.hidden
    kind = _KINDS[hidden.kind] if hidden is not None else -1
    act = _CODES[hidden.activation] if hidden is not None else 0
    rec = _CODES[hidden.recurrent_activation] if hidden is not None else 0
    cell_dtype = model.hidden_dtype
    h = st["hidden"].to(cell_dtype) if hidden is not None else x.new_zeros(batch, 0, dtype=cell_dtype)
    c = st["cell"].to(cell_dtype) if "cell" in st else torch.zeros_like(h)
    if lengths is None:
        valid = torch.ones(batch, steps, 1, dtype=torch.bool, device=x.device)
    else:
        valid = (torch.arange(steps, device=x.device)[None, :] < lengths.to(x.device)[:, None]).unsqueeze(-1)
    xm = x.to(dt)
    W_ih, W_hh, b_h = _hidden_weights(model, kind) if hidden is not None else (None, None, None)
    if model.mode == "step" or not spec.is_lti or given or model.theta is not None:
        return _step_form(model, xm, valid, st["memory"], h, c, e_mask, r_mask, (W_ih, W_hh, b_h),
                          (kind, act, rec))
    e = xm * e_mask.unsqueeze(1) if e_mask is not None else xm
    u = e @ model.kernel.to(dt) if model.kernel is not None else e
    u = u + model.bias.to(dt) if model.bias is not None else u
    u, after = compute.clean(u)
    memory = compute.poison(compute.memory_raw(u, model.impulse(model.truncation())), after, spec.order)
    z = torch.cat([memory, xm], dim=2) if spec.input_to_hidden else memory
    last = memory[:, -1] if lengths is None else memory[torch.arange(batch, device=x.device), lengths - 1]
    new = {"memory": last}
    if hidden is None:
        return torch.where(valid, z, torch.zeros((), dtype=z.dtype, device=z.device)), new
    zw = F.linear(z.to(W_ih.dtype), W_ih, b_h)
    if kind == 0:
        out = _act(zw, act)
        new["hidden"] = out[:, -1] if lengths is None else out[torch.arange(batch, device=x.device), lengths - 1]
        return torch.where(valid, out, torch.zeros((), dtype=out.dtype, device=out.device)), new
    if torch.jit.is_tracing():
        out, h, c = _scripted(_hidden_loop)(zw, valid, h, c, W_hh, kind, act, rec)
    else:
        (h, c), out = _scan(lambda carry, xs: _split(_hidden_step(xs[0], xs[1], carry[0], carry[1], W_hh, kind,
                                                                  act, rec)), (h, c), (zw, valid))
    new["hidden"] = h
    if kind == 2:
        new["cell"] = c
    return out, new


def _split(result):
    """``(a, b, ..., y)`` → ``((a, b, ...), y)``: a step's carry and its output, as scan wants them."""
    return tuple(result[:-1]), result[-1]


def _step_form(model, x, valid, m, h, c, e_mask, r_mask, weights, codes):
    spec, dt = model.lmu_spec, model.compute_dtype
    A_bar, B_bar = model.system()  # copies: scan cannot take the cache's constant tensors as its inputs
    d = spec.input_d
    kernel = model.kernel.to(dt) if model.kernel is not None else None
    ex = x * e_mask[:, None, :d] if e_mask is not None else x
    if kernel is not None:
        ux = ex @ kernel[:d]
        K_h = kernel[d:] if spec.hidden_to_memory else None
    else:  # u = e: the input and hidden state themselves (their sizes add up to memory_d)
        ux = ex if not spec.hidden_to_memory else F.pad(ex, (0, spec.memory_d - d))
        K_h = torch.eye(spec.memory_d, dtype=dt, device=x.device)[d:] if spec.hidden_to_memory else None
    ux = (ux + model.bias.to(dt) if model.bias is not None else ux).contiguous()
    h_mask = e_mask[:, d:] if e_mask is not None and spec.hidden_to_memory else None
    R = model.recurrent_kernel.to(dt) if model.recurrent_kernel is not None else None
    md = spec.memory_d
    if md * spec.order <= _BLOCK_DIAGONAL_MAX:  # ONNX's scan cannot reshape by a symbolic batch size
        A_T, B_bar = torch.block_diag(*[A_bar.T] * md), torch.block_diag(*[B_bar[None]] * md)
        md = 0
    else:
        A_T, B_bar = A_bar.T.clone(), B_bar.clone()
    args = (A_T, B_bar, K_h, R, h_mask, r_mask) + tuple(weights) + tuple(codes) + (spec.input_to_hidden, md)
    if torch.jit.is_tracing():
        out, m, h, c = _scripted(_full_loop)(ux, x, valid, m, h, c, *args)
    else:
        (m, h, c), out = _scan(lambda carry, xs: _split(_full_step(xs[0], xs[1], xs[2], *carry, *args)),
                               (m, h, c), (ux, x, valid))
    new = {"memory": m}
    if spec.hidden is not None:
        new["hidden"] = h
        if spec.hidden.kind == "lstm":
            new["cell"] = c
    return out, new
