"""The NumPy backend ``"numpy"``: the executable definition of what every backend computes.

Design rule: this module follows the step order of the design document (docs/design.rst) literally and computes in
float64 whatever the spec's dtype (outputs and state are returned in the spec's dtype), so that it is the yardstick
the conformance kit measures other backends against. The only shortcut it takes is the one the design allows: for
an LTI spec the memory for all steps comes from one FFT convolution with the impulse response, which must equal the
step loop.
"""

from __future__ import annotations

import threading

import numpy as np
import scipy.fft

from . import arrays, legendre
from .activations import ACTIVATIONS
from .backend import Backend, Mode, check_mode
from .spec import LMUSpec
from .weights import LMUWeights, conform

__all__ = ["NumpyBackend", "ReferenceLMU", "ACTIVATIONS", "MODES"]

_MODES = (Mode("auto"), Mode("step"), Mode("fft", needs=("lti",)))
MODES = tuple(m.name for m in _MODES)
_FFT_MIN_STEPS = 16
#: Without return_sequences, sequences run in chunks of this many steps (the state carried on), so that memory for a
#: last-step output stays O(CHUNK), not O(T).
CHUNK = 4096


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
        return self._system.weights

    @property
    def A_bar(self) -> np.ndarray:
        """``Ā`` of the weights in effect (float64)."""
        return self._system.A_bar

    @property
    def B_bar(self) -> np.ndarray:
        """``B̄`` of the weights in effect (float64)."""
        return self._system.B_bar

    def set_weights(self, weights: LMUWeights) -> None:
        """Replace the weights (checked against the spec). A run in another thread finishes with the old ones."""
        self._system = _System(self.lmu_spec, conform(self.lmu_spec, weights))  # one assignment: atomic

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
        """Run a checked batch (no validation here: :func:`lmu.run` and ``__call__`` validate).

        Without ``return_sequences`` the sequence runs in chunks of :data:`CHUNK` steps, the state carried from
        one to the next, so that memory does not grow with its length. Thread-safe: a run reads the weights once
        and keeps everything else local.
        """
        spec, system = self.lmu_spec, self._system
        x = np.asarray(x, dtype=np.float64)
        st = self.zero_state(x.shape[0]) if state is None else \
            {k: np.asarray(v, np.float64) for k, v in state.items()}
        chunk = x.shape[1] if spec.return_sequences else CHUNK
        with np.errstate(invalid="ignore", over="ignore"):  # NaN and inf propagate silently, like arithmetic
            for start in range(0, x.shape[1], chunk):
                part = x[:, start:start + chunk]
                if self._use_fft(part, st):
                    memory = system.lti_memory(part, st["memory"])
                    out, st = system.hidden_over(part, memory, st, keep=spec.return_sequences)
                else:
                    out, st = system.step_loop(part, st, keep=spec.return_sequences)
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

    def __repr__(self):
        return f"ReferenceLMU(mode={self.mode!r}, spec={self.lmu_spec!r})"


class _System:
    """What a set of weights computes with: the float64 arrays, ``Ā``, ``B̄`` and a cache of the impulse response.

    Immutable but for the cache, which a lock guards, so that runs in several threads share it safely."""

    def __init__(self, spec: LMUSpec, weights: LMUWeights):
        self.spec, self.weights = spec, weights
        self.w = {name: np.asarray(arr, dtype=np.float64) for name, arr in weights.items()}
        self.A_bar, self.B_bar = legendre.discretize(spec.order, weights.theta, spec.discretizer)
        self.A_T = np.ascontiguousarray(self.A_bar.T)
        self._lock = threading.Lock()
        self._H = np.zeros((0, spec.order))
        self._Hf: dict = {}  # rfft of the impulse response, by (FFT length, steps): the latest only

    def impulse_fft(self, n: int, steps: int) -> np.ndarray:
        with self._lock:
            if (n, steps) not in self._Hf:
                if self._H.shape[0] < steps:
                    self._H = legendre.impulse_response(self.A_bar, self.B_bar, max(steps, 2 * self._H.shape[0]))
                self._Hf = {(n, steps): scipy.fft.rfft(self._H[:steps], n, axis=0)}
            return self._Hf[(n, steps)]

    def memory_input(self, e: np.ndarray) -> np.ndarray:
        """``u = e @ kernel (+ bias)`` for any leading axes (step 2 without the memory_to_memory term)."""
        w = self.w
        u = e @ w["kernel"] if "kernel" in w else e.copy()
        if "bias" in w:
            u = u + w["bias"]
        return u

    def step_loop(self, x, st, keep=True):
        """The cell stepped over ``x``; the outputs of every step (``keep``) or of the last one."""
        spec, w = self.spec, self.w
        batch, steps = x.shape[:2]
        rows = batch * spec.memory_d  # the memory as (batch·memory_d, order): plain 2-D matrix products
        m = st["memory"].reshape(rows, spec.order)
        h, c = st.get("hidden"), st.get("cell")
        out = np.empty((batch, steps if keep else 1, spec.output_size))
        kernel, bias, rec = w.get("kernel"), w.get("bias"), w.get("recurrent_kernel")
        A_T, B_bar = self.A_T, self.B_bar
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
                out[:, t if keep else 0] = z
            else:
                zw = z @ w["hidden/kernel"]
                if "hidden/bias" in w:
                    zw = zw + w["hidden/bias"]
                h, c = self.cell(zw, h, c)
                out[:, t if keep else 0] = h
        st = {"memory": m.reshape(batch, -1)}
        if hidden is not None:
            st["hidden"] = h
            if hidden.kind == "lstm":
                st["cell"] = c
        return out, st

    def lti_memory(self, x, m0):
        """The memory for every step of an LTI spec: ``(batch, T, memory_d·order)`` by FFT convolution."""
        spec = self.spec
        batch, steps = x.shape[:2]
        u = self.memory_input(x)  # (batch, T, memory_d)
        n = scipy.fft.next_fast_len(2 * steps - 1, real=True)
        U = scipy.fft.rfft(u, n, axis=1)[..., None]  # (batch, F, md, 1)
        Hf = self.impulse_fft(n, steps)[None, :, None, :]  # (1, F, 1, order)
        memory = scipy.fft.irfft(U * Hf, n, axis=1)[:, :steps]  # (batch, T, md, order)
        m0 = m0.reshape(batch, spec.memory_d, spec.order)
        if np.any(m0):
            free = legendre.propagate(self.A_bar, m0 @ self.A_T, steps)  # (T, batch, md, order)
            memory = memory + free.transpose(1, 0, 2, 3)
        return memory.reshape(batch, steps, spec.memory_size)

    def hidden_over(self, x, memory, st, keep=True):
        """Steps 4–5 over a whole sequence once the memory is known for every step."""
        spec, w = self.spec, self.w
        batch, steps = x.shape[:2]
        z = np.concatenate([memory, x], axis=2) if spec.input_to_hidden else memory
        new = {"memory": memory[:, -1]}
        hidden = spec.hidden
        if hidden is None:
            return z if keep else z[:, -1:], new
        zw = z @ w["hidden/kernel"]
        if "hidden/bias" in w:
            zw = zw + w["hidden/bias"]
        if hidden.kind == "dense":
            out = ACTIVATIONS[hidden.activation](zw if keep else zw[:, -1:])
            new["hidden"] = out[:, -1]
            return out, new
        h, c = st["hidden"], st.get("cell")
        out = np.empty((batch, steps if keep else 1, hidden.units))
        for t in range(steps):
            h, c = self.cell(zw[:, t], h, c)
            out[:, t if keep else 0] = h
        new["hidden"] = h
        if hidden.kind == "lstm":
            new["cell"] = c
        return out, new

    def cell(self, zw, h, c):
        """One step of the hidden cell given its input projection ``z W + b``; returns ``(o, c)``."""
        hidden, w = self.spec.hidden, self.w
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
