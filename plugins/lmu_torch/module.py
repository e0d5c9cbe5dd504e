"""``lmu_torch.LMU``: the LMU as a ``torch.nn.Module``, in step mode or in the parallel modes of an LTI spec.

Design rule: one forward that follows the step order of the design document (docs/design.rst) exactly; the
parallel modes only change *how* the memory is computed (all steps at once) and how the hidden cell runs (fused),
never *what* is computed, so that every mode passes the same conformance kit. The memory is always computed in the
model's dtype (float32 at least), also under ``torch.autocast``; only the hidden cell follows autocast.
"""

import warnings

import numpy as np
import torch
from torch import nn

import lmu
from lmu import legendre
from lmu.spec import LMUSpec
from lmu.weights import LMUWeights, conform, weight_shapes

from . import compute
from .cell import build_hidden, cell_step, hidden_sequence, hidden_weights, set_hidden_weights

__all__ = ["LMU"]

_MEMORY_NAMES = ("kernel", "bias", "recurrent_kernel", "theta")
# raw mode truncates H where its tail falls below this fraction of its peak: 1e-7 is far below float32's
# resolution; float64 needs a far longer tail to stay within the kit's 1e-9.
_RAW_TOL = {torch.float32: 1e-7, torch.float64: 1e-13}
_NO_TRUNCATION = 1 << 62


class LMU(nn.Module):
    """An LMU layer built by ``lmu.build(spec, backend="torch", mode=...)``.

    ``forward(x, state=None, return_state=False, lengths=None)`` takes ``x`` of shape ``(batch, T, input_d)`` and
    returns ``(batch, T, out)`` with ``spec.return_sequences`` else ``(batch, out)``; with ``return_state`` also the
    canonical state dict (``memory``, ``hidden``, ``cell``), which a next call takes as ``state`` to continue the
    sequence. ``lengths`` (batch,) marks right-padded sequences: the output (and state) of each is taken at its own
    last valid step, and with ``return_sequences`` the steps past it are zero.

    Parameters follow the canonical names (``kernel``, ``bias``, ``recurrent_kernel``, ``theta``) and
    ``hidden`` is torch's own ``nn.Linear``/``nn.RNN``/``nn.LSTM`` where it computes the spec's cell exactly.

    Examples
    --------
    >>> import lmu, torch
    >>> spec = lmu.LMUSpec(memory_d=1, order=16, theta=50, input_d=1, hidden=lmu.Hidden("rnn", 8))
    >>> model = lmu.build(spec, backend="torch")
    >>> model(torch.zeros(4, 100, 1)).shape
    torch.Size([4, 8])
    """

    def __init__(self, spec: LMUSpec, weights: LMUWeights, mode: str = "auto"):
        from .backend import check_mode

        super().__init__()
        check_mode(spec, mode)
        self.lmu_spec = spec
        self.lmu_backend = "torch"
        self.mode = mode
        dtype = getattr(torch, spec.dtype)
        A, B = legendre.continuous(spec.order)
        self.register_buffer("_A", torch.as_tensor(A), persistent=False)
        self.register_buffer("_B", torch.as_tensor(B), persistent=False)
        self.register_buffer("_probe", torch.zeros((), dtype=dtype), persistent=False)  # follows .to()/.double()
        shapes = weight_shapes(spec)
        for name in _MEMORY_NAMES:
            if name in shapes:
                setattr(self, name, nn.Parameter(torch.zeros(shapes[name], dtype=dtype)))
            else:
                self.register_parameter(name, None)
        self.hidden = build_hidden(spec.hidden, spec.z_d, dtype) if spec.hidden is not None else None
        self._cache = {}
        self.set_weights(weights)

    # ------------------------------------------------------------------------------------------------ weights
    def get_weights(self) -> LMUWeights:
        """The canonical weights (NumPy, Keras orientation, the two torch biases summed)."""
        arrays = {n: getattr(self, n).detach().cpu().numpy() for n in _MEMORY_NAMES if getattr(self, n) is not None}
        if self.theta is not None:
            arrays["theta"] = self.effective_theta().detach().cpu().numpy()
        if self.hidden is not None:
            arrays.update(hidden_weights(self.lmu_spec.hidden, self.hidden))
        return LMUWeights(self.lmu_spec, arrays)

    def set_weights(self, weights) -> None:
        """Load canonical weights (checked against the spec)."""
        weights = conform(self.lmu_spec, weights)
        with torch.no_grad():
            for name in _MEMORY_NAMES:
                param = getattr(self, name)
                if param is not None:
                    param.copy_(torch.as_tensor(np.array(weights[name]), dtype=param.dtype))
        if self.hidden is not None:
            set_hidden_weights(self.lmu_spec.hidden, self.hidden, weights)
        self._cache.clear()

    def _apply(self, fn, *args, **kwargs):  # .to(), .cuda(), .double(): cached tensors must follow
        self._cache.clear()
        return super()._apply(fn, *args, **kwargs)

    def extra_repr(self) -> str:
        s = self.lmu_spec
        return (f"memory_d={s.memory_d}, order={s.order}, theta={s.theta:g}, input_d={s.input_d}, "
                f"mode={self.mode!r}, dtype={s.dtype}")

    # ------------------------------------------------------------------------------------------------ the system
    @property
    def compute_dtype(self):
        """The dtype the memory is computed in (the model's, whatever autocast does to the hidden cell)."""
        return self._probe.dtype

    def _cached(self, key, make):
        key = key + (self.compute_dtype, self._probe.device)
        value = self._cache.get(key)  # one lookup: another thread may clear the cache meanwhile
        if value is None:
            value = torch.compiler.disable(make)()  # NumPy work: outside any compiled graph
            if len(self._cache) > 32:
                self._cache.clear()
            self._cache[key] = value
        return value

    def _tensor(self, array):
        return torch.as_tensor(np.asarray(array), dtype=self.compute_dtype, device=self._probe.device)

    def _numpy_system(self):
        return legendre.discretize(self.lmu_spec.order, self.lmu_spec.theta, self.lmu_spec.discretizer)

    def theta_range(self) -> tuple[float, float]:
        """The θ this module computes with: a trainable θ is clamped to this range, where its spec stays
        computable (:func:`lmu.legendre.theta_range`: from 2⁻¹⁰ steps for zoh, or just above the stability limit
        for euler, up to where the dtype's round-off would outlast the memory). An optimizer with a large step
        may push the parameter outside; the memory then uses the edge."""
        spec = self.lmu_spec
        return legendre.theta_range(spec.order, spec.discretizer, spec.dtype, spec.theta)

    def effective_theta(self):
        """θ as the memory uses it: the trainable parameter clamped to :meth:`theta_range` (positive by
        construction), or None without ``trainable_theta``."""
        if self.theta is None:
            return None
        low, high = self._cached(("theta_range",), lambda: tuple(
            torch.tensor(edge, dtype=self.theta.dtype, device=self.theta.device) for edge in self.theta_range()))
        return torch.minimum(torch.maximum(self.theta, low), high)

    def system(self):
        """``(Ā, B̄)`` as tensors; differentiable in θ when θ is trainable."""
        if self.theta is not None:
            theta = self.effective_theta().double()
            A_bar, B_bar = legendre.discretize_arrays(self._A.double(), self._B.double(), theta,
                                                      self.lmu_spec.discretizer, compute.TORCH)
            return A_bar.to(self.compute_dtype), B_bar.to(self.compute_dtype)
        return self._cached(("system",), lambda: tuple(self._tensor(a) for a in self._numpy_system()))

    def impulse(self, length: int):
        """``H (length, order)``: cached per (length, dtype, device) when θ is fixed, else a function of θ."""
        if self.theta is not None:
            H = compute.impulse_response(self.effective_theta(), self._A.double(), self._B.double(),
                                         self.lmu_spec.discretizer, length)
            return H.to(self.compute_dtype)
        return self._cached(("H", length), lambda: self._tensor(legendre.impulse_response(
            *self._numpy_system(), length)))

    def truncation(self) -> int:
        """Steps after which ``H`` stays below 1e-7 of its peak (1e-13 in float64), for ``raw``.

        With trainable θ the length is measured once at a reference θ and scaled with θ (H is a function of t/θ),
        with a 10% margin; it is measured again when θ leaves [θ_ref/2, 2 θ_ref]. Reading θ is this mode's one
        host sync per step (``auto`` does not choose ``raw`` for trainable θ).
        """
        spec = self.lmu_spec
        tol = _RAW_TOL.get(self.compute_dtype, 1e-7)

        def measure(theta):
            try:
                return legendre.truncation_length(*legendre.discretize(spec.order, theta, spec.discretizer), tol=tol)
            except lmu.ArgumentError:  # no decay within 10⁷ steps (θ of millions): convolve with all of H
                return _NO_TRUNCATION

        if self.theta is None:
            return self._cached(("trunc",), lambda: measure(spec.theta))
        theta = float(self.effective_theta().detach())
        ref = self._cache.get(("trunc_ref", self.compute_dtype))
        if ref is None or not 0.5 * ref[0] <= theta <= 2.0 * ref[0]:
            ref = self._cache[("trunc_ref", self.compute_dtype)] = (theta, measure(theta))
        return int(np.ceil(ref[1] * max(1.0, theta / ref[0]) * 1.1))

    # ------------------------------------------------------------------------------------------------ forward
    def pick_mode(self, steps: int, lengths=None) -> str:
        """The mode ``auto`` runs for a sequence of ``steps`` (explicit modes are returned as they are)."""
        if lengths is not None:
            warnings.warn("LMU.pick_mode(steps, lengths): lengths never changed the choice and is deprecated; it "
                          "will be removed in lmu 0.6", DeprecationWarning, stacklevel=2)
        spec = self.lmu_spec
        if self.mode != "auto":
            return self.mode
        if not spec.is_lti or steps == 1:
            return "step"
        if not spec.return_sequences and (spec.hidden is None or spec.hidden.kind == "dense"):
            return "last"
        if self.theta is None and 8 * self.truncation() <= steps:
            return "raw"
        return "fft"

    def forward(self, x, state=None, return_state: bool = False, lengths=None):
        """Run a batch ``x (batch, T, input_d)``; see the class docstring for ``state``, ``return_state`` and
        ``lengths``. Returns the output, or ``(output, state)`` with ``return_state``."""
        return self._forward(x, state, return_state, lengths, self.training)

    def infer(self, x, state=None, return_state: bool = False):
        """:meth:`forward` as in evaluation mode (no dropout), whatever ``self.training`` is, without changing the
        module: what :func:`lmu.run` calls, so that runs in several threads leave the module as they found it."""
        return self._forward(x, state, return_state, None, False)

    def _forward(self, x, state, return_state, lengths, training):
        from .checks import check_lengths, check_state, check_x

        spec = self.lmu_spec
        x = check_x(self, x)
        batch, steps = x.shape[:2]
        st, given = check_state(self, state, batch)
        lengths = check_lengths(lengths, batch, steps)
        mode = self.pick_mode(steps)
        e_mask = r_mask = None
        if training and spec.dropout > 0:
            e_mask = self._dropout_mask((batch, spec.enc_d), spec.dropout)
        if training and spec.recurrent_dropout > 0:
            r_mask = self._dropout_mask((batch, spec.memory_size), spec.recurrent_dropout)
        if mode == "step":
            out, new = self._forward_step(x, st, lengths, e_mask, r_mask)
        else:
            out, new = self._forward_parallel(x, st if given else None, mode, lengths, e_mask)
        if not spec.return_sequences and out.dim() == 3:
            out = out[:, -1] if lengths is None else out[torch.arange(batch, device=out.device), lengths - 1]
        return (out, new) if return_state else out

    def _dropout_mask(self, shape, rate):
        keep = torch.full(shape, 1.0 - rate, dtype=self.compute_dtype, device=self._probe.device)
        return torch.bernoulli(keep) / (1.0 - rate)

    def _zeros(self, batch):
        units = self.lmu_spec.hidden.units if self.lmu_spec.hidden is not None else 0
        return torch.zeros(batch, units, dtype=self.compute_dtype, device=self._probe.device)

    def _memory_input(self, e):
        u = e @ self.kernel if self.kernel is not None else e
        return u + self.bias if self.bias is not None else u

    def _forward_step(self, x, st, lengths, e_mask, r_mask):
        spec, dt = self.lmu_spec, self.compute_dtype
        batch, steps = x.shape[:2]
        md, order = spec.memory_d, spec.order
        with torch.autocast(x.device.type, enabled=False):
            A_bar, B_bar = self.system()
        A_T = A_bar.T
        m = st["memory"].reshape(batch * md, order)
        h, c = st.get("hidden"), st.get("cell")
        lengths_dev = lengths.to(x.device) if lengths is not None else None
        outs = []
        for t in range(steps):
            xt = x[:, t].to(dt)
            with torch.autocast(x.device.type, enabled=False):
                e = torch.cat([xt, h.to(dt)], dim=1) if spec.hidden_to_memory else xt
                if e_mask is not None:
                    e = e * e_mask
                u = self._memory_input(e)
                if self.recurrent_kernel is not None:
                    previous = m.reshape(batch, -1)
                    if r_mask is not None:
                        previous = previous * r_mask
                    u = u + previous @ self.recurrent_kernel
                m_new = m @ A_T + u.reshape(-1, 1) * B_bar
            z = m_new.reshape(batch, -1)
            if spec.input_to_hidden:
                z = torch.cat([z, xt], dim=1)
            if spec.hidden is None:
                o, h_new, c_new = z, h, c
            else:
                h_new, c_new = cell_step(spec.hidden, self.hidden, z, h, c)
                o = h_new
            if lengths_dev is not None:
                valid = (t < lengths_dev).unsqueeze(1)
                m_new = torch.where(valid.repeat_interleave(md, dim=0), m_new, m)
                h_new = torch.where(valid, h_new, h) if h is not None else None
                c_new = torch.where(valid, c_new, c) if c is not None else None
                o = torch.where(valid, o, torch.zeros((), dtype=o.dtype, device=o.device))
            m, h, c = m_new, h_new, c_new
            outs.append(o)
        new = {"memory": m.reshape(batch, -1)}
        if spec.hidden is not None:
            new["hidden"] = h
            if spec.hidden.kind == "lstm":
                new["cell"] = c
        return torch.stack(outs, dim=1), new

    def _forward_parallel(self, x, st, mode, lengths, e_mask):
        spec, dt = self.lmu_spec, self.compute_dtype
        batch, steps = x.shape[:2]
        m0 = st["memory"] if st is not None else None
        st = st or {"hidden": self._zeros(batch), "cell": self._zeros(batch)}
        with torch.autocast(x.device.type, enabled=False):
            xm = x.to(dt)
            e = xm * e_mask.unsqueeze(1) if e_mask is not None else xm
            u, after = compute.clean(self._memory_input(e))
            if mode == "last":
                memory = compute.memory_last(u, self.impulse(steps), lengths)
                if m0 is not None:
                    free = compute.free_response(self.system()[0], m0, steps, spec.order)
                    memory = memory + (free[:, -1] if lengths is None else free[torch.arange(batch), lengths - 1])
                last_after = after[:, -1] if lengths is None else after[torch.arange(batch), lengths - 1]
                memory = compute.poison(memory.unsqueeze(1), last_after.unsqueeze(1), spec.order)[:, 0]
            else:
                if mode == "fft":
                    H = self.impulse(steps)
                    Hf = None
                    if self.theta is None:
                        n = compute.fft_length(2 * steps - 1)
                        Hf = self._cached(("Hf", steps), lambda: torch.fft.rfft(H, n=n, dim=0))
                    memory = compute.memory_fft(u, H, Hf)
                else:  # raw
                    memory = compute.memory_raw(u, self.impulse(min(self.truncation(), steps)))
                if m0 is not None:
                    memory = memory + compute.free_response(self.system()[0], m0, steps, spec.order)
                memory = compute.poison(memory, after, spec.order)
        if mode == "last":
            z = torch.cat([memory, xm[:, -1] if lengths is None else xm[torch.arange(batch), lengths - 1]], 1) \
                if spec.input_to_hidden else memory
            new = {"memory": memory}
            if spec.hidden is None:
                return z, new
            out, h, _ = hidden_sequence(spec.hidden, self.hidden, z.unsqueeze(1), st["hidden"], None)
            new["hidden"] = h
            return out[:, 0], new
        z = torch.cat([memory, xm], dim=2) if spec.input_to_hidden else memory
        last = memory[:, -1] if lengths is None else memory[torch.arange(batch), lengths - 1]
        new = {"memory": last}
        if spec.hidden is None:
            if lengths is not None:
                valid = torch.arange(steps, device=z.device)[None, :] < lengths.to(z.device)[:, None]
                z = torch.where(valid.unsqueeze(-1), z, torch.zeros((), dtype=z.dtype, device=z.device))
            return z, new
        out, h, c = hidden_sequence(spec.hidden, self.hidden, z, st["hidden"], st.get("cell"), lengths)
        new["hidden"] = h
        if spec.hidden.kind == "lstm":
            new["cell"] = c
        return out, new
