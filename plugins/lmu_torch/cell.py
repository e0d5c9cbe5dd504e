"""The hidden cell in torch: built as torch's own modules where they compute exactly the spec's cell.

Design rule: ``dense`` is an ``nn.Linear``; ``rnn`` with tanh or relu is an ``nn.RNN`` and ``lstm`` with tanh and
sigmoid gates an ``nn.LSTM`` (fused, cuDNN on a GPU); any other activation gets :class:`LoopCell`, which has the
same parameter names (``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0``, ``bias_hh_l0``) so that weights map the
same way for all of them. Gate order i, f, g, o is Keras' i, f, c, o.

One bias: the canonical weights (Keras') have one ``hidden/bias``, where torch's fused modules keep two
(``bias_ih_l0 + bias_hh_l0``, for cuDNN): a redundant vector of parameters (212 more in the psMNIST model) that also
trains differently (both get the same gradient, so their sum moves twice as far a step as Keras' bias). So the
module trains exactly the canonical weights: ``bias_ih_l0`` *is* ``hidden/bias`` and ``bias_hh_l0`` is a zero
buffer (:class:`SingleBiasRNN`, :class:`SingleBiasLSTM`, :class:`LoopCell`), still handed to the fused kernel and
still in ``state_dict()``; loading a state dict whose ``bias_hh_l0`` is nonzero (torch's own modules, older lmu)
folds it into ``bias_ih_l0``.
"""

import contextlib

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lmu.activations import mapped

__all__ = ["ACTIVATIONS", "SingleBiasRNN", "SingleBiasLSTM", "LoopCell", "build_hidden", "is_fused", "cell_step",
           "hidden_sequence", "hidden_weights", "set_hidden_weights"]

#: lmu's activation table (:mod:`lmu.activations`) in torch.
ACTIVATIONS = mapped({"linear": lambda v: v, "tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid},
                     "torch")


def _fold_bias(state_dict, prefix, names) -> None:
    """Move each ``bias_hh`` of a state dict into its ``bias_ih`` (new tensors: the caller's are not touched)."""
    for name in names:
        hh, ih = prefix + name, prefix + name.replace("bias_hh", "bias_ih")
        if hh in state_dict and ih in state_dict and state_dict[hh].shape == state_dict[ih].shape:
            state_dict[ih] = state_dict[ih] + state_dict[hh].to(state_dict[ih])
            state_dict[hh] = torch.zeros_like(state_dict[hh])


class _SingleBias:
    """Mixin for ``nn.RNN``/``nn.LSTM``: every ``bias_hh`` a zero buffer, re-registered in the flat weights."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in self._bias_hh_names():
            zeros = torch.zeros_like(getattr(self, name).detach())
            delattr(self, name)  # the Parameter
            self.register_buffer(name, zeros, persistent=True)
        self._init_flat_weights()  # the fused kernel reads _flat_weights: point it at the buffers

    def _bias_hh_names(self):
        return [n for n in self._flat_weights_names if n.startswith("bias_hh")]

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        _fold_bias(state_dict, prefix, self._bias_hh_names())
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class SingleBiasRNN(_SingleBias, nn.RNN):
    """``nn.RNN`` (fused) whose one trained bias is ``bias_ih_l0``; ``bias_hh_l0`` is a zero buffer."""


class SingleBiasLSTM(_SingleBias, nn.LSTM):
    """``nn.LSTM`` (fused) whose one trained bias is ``bias_ih_l0``; ``bias_hh_l0`` is a zero buffer."""


class LoopCell(nn.Module):
    """An RNN or LSTM cell with any activations, stepped in Python (torch's fused cells fix their activations)."""

    def __init__(self, input_size, units, gates, bias, dtype):
        super().__init__()
        self.weight_ih_l0 = nn.Parameter(torch.zeros(gates * units, input_size, dtype=dtype))
        self.weight_hh_l0 = nn.Parameter(torch.zeros(gates * units, units, dtype=dtype))
        if bias:
            self.bias_ih_l0 = nn.Parameter(torch.zeros(gates * units, dtype=dtype))
            self.register_buffer("bias_hh_l0", torch.zeros(gates * units, dtype=dtype), persistent=True)
        else:
            self.bias_ih_l0 = self.bias_hh_l0 = None

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        _fold_bias(state_dict, prefix, ["bias_hh_l0"])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def is_fused(hidden) -> bool:
    """Whether torch's fused module computes this hidden cell exactly."""
    if hidden.kind == "rnn":
        return hidden.activation in ("tanh", "relu")
    if hidden.kind == "lstm":
        return hidden.activation == "tanh" and hidden.recurrent_activation == "sigmoid"
    return True


def build_hidden(hidden, input_size: int, dtype) -> nn.Module:
    """The module holding the hidden cell's parameters."""
    if hidden.kind == "dense":
        return nn.Linear(input_size, hidden.units, bias=hidden.use_bias, dtype=dtype)
    if not is_fused(hidden):
        return LoopCell(input_size, hidden.units, 4 if hidden.kind == "lstm" else 1, hidden.use_bias, dtype)
    if hidden.kind == "rnn":
        return SingleBiasRNN(input_size, hidden.units, nonlinearity=hidden.activation, bias=hidden.use_bias,
                             batch_first=True, dtype=dtype)
    return SingleBiasLSTM(input_size, hidden.units, bias=hidden.use_bias, batch_first=True, dtype=dtype)


def _bias(module):
    """The bias the cell computes with: ``bias_ih_l0`` (plus the ``bias_hh_l0`` buffer, zero unless set by hand)."""
    if getattr(module, "bias_ih_l0", None) is None:
        return None
    return module.bias_ih_l0 + module.bias_hh_l0


def _exact_cudnn(x, dtype):
    """cuDNN without TF32 for float32 on a GPU: TF32 RNNs miss the kit's 2e-5 by an order of magnitude.

    (``flags()`` resets what it is not given, so the current switches are passed on; ``allow_tf32`` itself is not
    read, since reading it raises when a program mixes torch's old and new precision settings.)"""
    if not (x.is_cuda and dtype == torch.float32):
        return contextlib.nullcontext()
    cudnn = torch.backends.cudnn
    return cudnn.flags(enabled=cudnn.enabled, benchmark=cudnn.benchmark, deterministic=cudnn.deterministic,
                       allow_tf32=False)


def cell_step(hidden, module, z, h, c):
    """One step of the hidden cell from its input ``z (B, z_d)``; returns ``(h, c)`` (c only for lstm)."""
    act = ACTIVATIONS[hidden.activation]
    if hidden.kind == "dense":
        return act(module(z)), c
    pre = F.linear(z, module.weight_ih_l0, _bias(module)) + F.linear(h, module.weight_hh_l0)
    if hidden.kind == "rnn":
        return act(pre), c
    rec = ACTIVATIONS[hidden.recurrent_activation]
    i, f, g, o = pre.chunk(4, dim=-1)
    c = rec(f) * c + rec(i) * act(g)
    return rec(o) * act(c), c


def _at(seq, lengths):
    """``seq[b, lengths[b] − 1]`` for each sequence (or the last step)."""
    if lengths is None:
        return seq[:, -1]
    idx = (lengths.to(seq.device) - 1).view(-1, 1, 1).expand(-1, 1, seq.shape[-1])
    return seq.gather(1, idx).squeeze(1)


def _zero_past(seq, lengths):
    """``seq (B, T, n)`` with the steps at or past each sequence's length set to zero (``seq`` itself without
    ``lengths``), as ``pad_packed_sequence`` gives."""
    if lengths is None:
        return seq
    valid = torch.arange(seq.shape[1], device=seq.device)[None, :] < lengths.to(seq.device)[:, None]
    return torch.where(valid.unsqueeze(-1), seq, torch.zeros((), dtype=seq.dtype, device=seq.device))


def hidden_sequence(hidden, module, z, h, c, lengths=None):
    """The hidden cell over a whole sequence ``z (B, T, z_d)`` once the memory is known for every step.

    Returns ``(out (B, T, units), h_last, c_last)``; with ``lengths`` the state is each sequence's own last valid
    step and the outputs past it are zero (as ``pad_packed_sequence`` gives)."""
    act = ACTIVATIONS[hidden.activation]
    if hidden.kind == "dense":
        out = act(module(z))
        return _zero_past(out, lengths), _at(out, lengths), c
    if is_fused(hidden):
        # Fused cells run in the parameters' dtype: autocast's half-precision RNN kernels are not available on
        # every device (oneDNN refuses bf16 LSTM), and the recurrence is where precision matters most.
        dtype = module.weight_ih_l0.dtype
        z = z.to(dtype)
        init = h.to(dtype).unsqueeze(0).contiguous() if hidden.kind == "rnn" else \
            (h.to(dtype).unsqueeze(0).contiguous(), c.to(dtype).unsqueeze(0).contiguous())
        with _exact_cudnn(z, dtype), torch.autocast(z.device.type, enabled=False):
            if lengths is None:
                out, final = module(z, init)
            else:
                packed = nn.utils.rnn.pack_padded_sequence(z, lengths.cpu(), batch_first=True,
                                                           enforce_sorted=False)
                out, final = module(packed, init)
                out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=z.shape[1])
        if hidden.kind == "rnn":
            return out, final[0], c
        return out, final[0][0], final[1][0]
    zw = F.linear(z, module.weight_ih_l0, _bias(module))
    outs = []
    rec = ACTIVATIONS[hidden.recurrent_activation]
    # unbind, not zw[:, t]: each indexing's backward would add a zero-filled (B, T, gates) gradient, T of them
    for t, zw_t in enumerate(zw.unbind(1)):
        pre = zw_t + F.linear(h, module.weight_hh_l0)
        if hidden.kind == "rnn":
            h_new, c_new = act(pre), c
        else:
            i, f, g, o = pre.chunk(4, dim=-1)
            c_new = rec(f) * c + rec(i) * act(g)
            h_new = rec(o) * act(c_new)
        if lengths is not None:
            valid = (t < lengths.to(z.device)).unsqueeze(1)
            h_new = torch.where(valid, h_new, h)
            c_new = torch.where(valid, c_new, c) if c is not None else None
            outs.append(torch.where(valid, h_new, torch.zeros_like(h_new)))
        else:
            outs.append(h_new)
        h, c = h_new, c_new
    return torch.stack(outs, dim=1), h, c


def hidden_weights(hidden, module) -> dict:
    """The hidden cell's canonical arrays (Keras orientation; the bias is ``bias_ih`` plus the zero ``bias_hh``)."""
    def arr(t):  # bfloat16, which NumPy lacks, by way of float32
        t = t.detach().cpu()
        return (t.float() if t.dtype == torch.bfloat16 else t).numpy()

    if hidden.kind == "dense":
        out = {"hidden/kernel": arr(module.weight).T}
        if hidden.use_bias:
            out["hidden/bias"] = arr(module.bias)
        return out
    out = {"hidden/kernel": arr(module.weight_ih_l0).T, "hidden/recurrent_kernel": arr(module.weight_hh_l0).T}
    if hidden.use_bias:
        out["hidden/bias"] = arr(_bias(module))
    return out


def set_hidden_weights(hidden, module, weights) -> None:
    """Load canonical arrays into the hidden module (the bias goes to ``bias_ih``; the ``bias_hh`` buffer is 0)."""
    def put(param, value):
        param.copy_(torch.as_tensor(np.array(value), dtype=param.dtype, device=param.device))

    with torch.no_grad():
        if hidden.kind == "dense":
            put(module.weight, weights["hidden/kernel"].T)
            if hidden.use_bias:
                put(module.bias, weights["hidden/bias"])
            return
        put(module.weight_ih_l0, weights["hidden/kernel"].T)
        put(module.weight_hh_l0, weights["hidden/recurrent_kernel"].T)
        if hidden.use_bias:
            put(module.bias_ih_l0, weights["hidden/bias"])
            module.bias_hh_l0.zero_()
