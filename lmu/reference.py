"""The NumPy backend ``"numpy"``: the executable definition of what every backend computes.

Design rule: this module follows the step order of the design document (docs/design.rst) literally and computes in
float64 whatever the spec's dtype (outputs and state are returned in the spec's dtype), so that it is the yardstick
the conformance kit measures other backends against. The only shortcut it takes is the one the design allows: for
an LTI spec the memory for all steps comes from one FFT convolution with the impulse response, which must equal the
step loop.
"""

from __future__ import annotations

import numpy as np
import scipy.fft

from . import arrays, legendre
from .activations import ACTIVATIONS
from .backend import Backend, Mode, check_mode
from .spec import LMUSpec
from .weights import LMUWeights

__all__ = ["NumpyBackend", "ReferenceLMU", "ACTIVATIONS", "MODES"]

_MODES = (Mode("auto"), Mode("step"), Mode("fft", needs=("lti",)))
MODES = tuple(m.name for m in _MODES)
_FFT_MIN_STEPS = 16


class ReferenceLMU:
    """An LMU layer in NumPy, built by ``lmu.build(spec, backend="numpy")``.

    Parameters
    ----------
    spec : LMUSpec
    weights : LMUWeights
    mode : {"auto", "step", "fft"}
        ``step`` runs the cell loop; ``fft`` computes an LTI spec's memory for all steps at once (refused for
        specs that are not LTI); ``auto`` takes ``fft`` for LTI specs on finite input of 16 steps or more.

    Examples
    --------
    >>> import lmu, numpy as np
    >>> spec = lmu.LMUSpec(memory_d=1, order=6, theta=30, input_d=2, hidden=lmu.Hidden("lstm", 5),
    ...                    return_sequences=True)
    >>> model = lmu.build(spec)
    >>> model(np.zeros((3, 40, 2))).shape
    (3, 40, 5)
    """

    def __init__(self, spec: LMUSpec, weights: LMUWeights, mode: str = "auto", backend: str = "numpy"):
        check_mode(NumpyBackend, spec, mode)
        self.lmu_spec = spec
        self.lmu_backend = backend
        self.mode = mode
        self.set_weights(weights)

    # ----------------------------------------------------------------------------------------------- weights
    @property
    def weights(self) -> LMUWeights:
        """The canonical weights this object runs with."""
        return self._weights

    def set_weights(self, weights: LMUWeights) -> None:
        """Replace the weights (checked against the spec)."""
        if not isinstance(weights, LMUWeights) or weights.spec != self.lmu_spec:
            weights = LMUWeights(self.lmu_spec, weights)
        self._weights = weights
        self._w = {name: np.asarray(arr, dtype=np.float64) for name, arr in weights.items()}
        self.A_bar, self.B_bar = self._system(weights.theta)
        self._A_T = np.ascontiguousarray(self.A_bar.T)
        self._H = np.zeros((0, self.lmu_spec.order))
        self._Hf = {}  # rfft of the impulse response, by FFT length

    def _system(self, theta: float):
        return legendre.discretize(self.lmu_spec.order, theta, self.lmu_spec.discretizer)

    def _impulse(self, length: int) -> np.ndarray:
        if self._H.shape[0] < length:
            self._H = legendre.impulse_response(self.A_bar, self.B_bar, max(length, 2 * self._H.shape[0]))
        return self._H[:length]

    # ----------------------------------------------------------------------------------------------- running
    def __call__(self, x, state=None, return_state: bool = False):
        """Run a batch ``(batch, T, input_d)``; see :func:`lmu.run`."""
        x = arrays.check_input(self.lmu_spec, x)
        if state is not None:
            state = arrays.check_state(self.lmu_spec, state, x.shape[0])
        return self.run(x, state, return_state)

    def zero_state(self, batch: int) -> dict[str, np.ndarray]:
        """The initial (zero) state for a batch, in float64."""
        return {k: np.zeros(s) for k, s in self.lmu_spec.state_shapes(batch).items()}

    def run(self, x: np.ndarray, state=None, return_state: bool = False):
        """Run a checked batch (no validation here: :func:`lmu.run` and ``__call__`` validate)."""
        spec = self.lmu_spec
        x = np.asarray(x, dtype=np.float64)
        batch, steps = x.shape[:2]
        st = self.zero_state(batch) if state is None else {k: np.asarray(v, np.float64) for k, v in state.items()}
        with np.errstate(invalid="ignore", over="ignore"):  # NaN and inf propagate silently, like arithmetic
            if self._use_fft(x, st):
                memory = self._lti_memory(x, st["memory"])
                out, st = self._hidden_over(x, memory, st)
            else:
                out, st = self._step_loop(x, st)
        out = out.astype(spec.dtype, copy=False)
        if not spec.return_sequences:
            out = np.ascontiguousarray(out[:, -1])
        if return_state:
            return out, {k: v.astype(spec.dtype) for k, v in st.items()}
        return out

    def _use_fft(self, x, st) -> bool:
        if self.mode == "step" or not self.lmu_spec.is_lti:
            return False
        finite = np.isfinite(x).all() and np.isfinite(st["memory"]).all()
        if self.mode == "fft":
            return bool(finite)  # non-finite input would leak into earlier steps through the FFT
        return bool(finite and x.shape[1] >= _FFT_MIN_STEPS)

    def _memory_input(self, e: np.ndarray) -> np.ndarray:
        """``u = e @ kernel (+ bias)`` for any leading axes (step 2 without the memory_to_memory term)."""
        w = self._w
        u = e @ w["kernel"] if "kernel" in w else e.copy()
        if "bias" in w:
            u = u + w["bias"]
        return u

    def _step_loop(self, x, st):
        spec, w = self.lmu_spec, self._w
        batch, steps = x.shape[:2]
        rows = batch * spec.memory_d  # the memory as (batch·memory_d, order): plain 2-D matrix products
        m = st["memory"].reshape(rows, spec.order)
        h, c = st.get("hidden"), st.get("cell")
        out = np.empty((batch, steps, spec.output_size))
        kernel, bias, rec = w.get("kernel"), w.get("bias"), w.get("recurrent_kernel")
        A_T, B_bar = self._A_T, self.B_bar
        hidden = spec.hidden
        for t in range(steps):
            xt = x[:, t]
            e = np.concatenate([xt, h], axis=1) if spec.hidden_to_memory else xt
            u = e @ kernel if kernel is not None else e
            if bias is not None:
                u = u + bias
            if rec is not None:
                u = u + m.reshape(batch, -1) @ rec
            m = m @ A_T + u.reshape(rows, 1) * B_bar
            z = m.reshape(batch, -1)
            if spec.input_to_hidden:
                z = np.concatenate([z, xt], axis=1)
            if hidden is None:
                out[:, t] = z
            else:
                zw = z @ w["hidden/kernel"]
                if "hidden/bias" in w:
                    zw = zw + w["hidden/bias"]
                h, c = self._cell(zw, h, c)
                out[:, t] = h
        st = {"memory": m.reshape(batch, -1)}
        if hidden is not None:
            st["hidden"] = h
            if hidden.kind == "lstm":
                st["cell"] = c
        return out, st

    def _lti_memory(self, x, m0):
        """The memory for every step of an LTI spec: ``(batch, T, memory_d·order)`` by FFT convolution."""
        spec = self.lmu_spec
        batch, steps = x.shape[:2]
        u = self._memory_input(x)  # (batch, T, memory_d)
        n = scipy.fft.next_fast_len(2 * steps - 1, real=True)
        if (n, steps) not in self._Hf:
            self._Hf = {(n, steps): scipy.fft.rfft(self._impulse(steps), n, axis=0)}  # keep the latest only
        U = scipy.fft.rfft(u, n, axis=1)[..., None]  # (batch, F, md, 1)
        Hf = self._Hf[(n, steps)][None, :, None, :]  # (1, F, 1, order)
        memory = scipy.fft.irfft(U * Hf, n, axis=1)[:, :steps]  # (batch, T, md, order)
        m0 = m0.reshape(batch, spec.memory_d, spec.order)
        if np.any(m0):
            free = legendre.propagate(self.A_bar, m0 @ self._A_T, steps)  # (T, batch, md, order)
            memory = memory + free.transpose(1, 0, 2, 3)
        return memory.reshape(batch, steps, spec.memory_size)

    def _hidden_over(self, x, memory, st):
        """Steps 4–5 over a whole sequence once the memory is known for every step."""
        spec, w = self.lmu_spec, self._w
        batch, steps = x.shape[:2]
        z = np.concatenate([memory, x], axis=2) if spec.input_to_hidden else memory
        new = {"memory": memory[:, -1]}
        hidden = spec.hidden
        if hidden is None:
            return z, new
        zw = z @ w["hidden/kernel"]
        if "hidden/bias" in w:
            zw = zw + w["hidden/bias"]
        if hidden.kind == "dense":
            out = ACTIVATIONS[hidden.activation](zw)
            new["hidden"] = out[:, -1]
            return out, new
        h, c = st["hidden"], st.get("cell")
        out = np.empty((batch, steps, hidden.units))
        for t in range(steps):
            h, c = self._cell(zw[:, t], h, c)
            out[:, t] = h
        new["hidden"] = h
        if hidden.kind == "lstm":
            new["cell"] = c
        return out, new

    def _cell(self, zw, h, c):
        """One step of the hidden cell given its input projection ``z W + b``; returns ``(o, c)``."""
        hidden, w = self.lmu_spec.hidden, self._w
        act = ACTIVATIONS[hidden.activation]
        if hidden.kind == "dense":
            return act(zw), c
        pre = zw + h @ w["hidden/recurrent_kernel"]
        if hidden.kind == "rnn":
            return act(pre), c
        rec = ACTIVATIONS[hidden.recurrent_activation]
        i, f, g, o = np.split(pre, 4, axis=1)
        c = rec(f) * c + rec(i) * act(g)
        return rec(o) * act(c), c

    def __repr__(self):
        return f"ReferenceLMU(mode={self.mode!r}, spec={self.lmu_spec!r})"


class NumpyBackend(Backend):
    """The always-available ``numpy`` backend (inference only; dropout is ignored): ``mode`` "auto", "step" or
    "fft" (see :class:`ReferenceLMU`)."""

    name = "numpy"
    extra = None
    requires = ("numpy", "scipy")
    framework = "numpy"
    modes = _MODES

    def build(self, spec: LMUSpec, weights: LMUWeights, *, mode: str = "auto") -> ReferenceLMU:
        return ReferenceLMU(spec, weights, mode=mode, backend=self.name)

    def get_weights(self, obj: ReferenceLMU) -> LMUWeights:
        return obj.weights

    def set_weights(self, obj: ReferenceLMU, weights: LMUWeights) -> None:
        obj.set_weights(weights)

    def run(self, obj: ReferenceLMU, x, state=None, return_state=False):
        return obj.run(x, state, return_state)

    def owns(self, obj) -> bool:
        return isinstance(obj, ReferenceLMU) and obj.lmu_backend == self.name
