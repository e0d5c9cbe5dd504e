"""An independent, deliberately plain implementation of the design's step (docs/design.rst), used to check the
reference and the kit.

It shares no code with lmu.reference: one sequence at a time, one step at a time, every formula written out
again (scalar-free NumPy only where it is a plain matrix product). ``flaw`` turns on one deliberate mistake, so
that the kit's self-test can show that each is caught.
"""

import numpy as np

import lmu
from lmu import legendre

FLAWS = ("A_transposed", "gates_swapped", "memory_late", "bias_dropped", "theta_off", "state_ignored",
         "theta_from_spec", "hidden_bias_dropped")


def _act(name, v):
    if name == "linear":
        return v
    if name == "tanh":
        return np.tanh(v)
    if name == "relu":
        return np.maximum(v, 0.0)  # keeps NaN, as torch.relu and tf.nn.relu do
    if name == "sigmoid":
        with np.errstate(over="ignore"):
            return 1.0 / (1.0 + np.exp(-v))
    raise AssertionError(name)


class LoopModel:
    def __init__(self, spec, weights, backend):
        self.lmu_spec = spec
        self.lmu_backend = backend
        self.set_weights(weights)

    def set_weights(self, weights):
        self.weights = lmu.LMUWeights(self.lmu_spec, weights)

    def run(self, x, state=None, return_state=False):
        spec, w, flaw = self.lmu_spec, {k: np.asarray(v, float) for k, v in self.weights.items()}, \
            self.lmu_backend.flaw
        theta = float(w["theta"]) if "theta" in w and flaw != "theta_from_spec" else spec.theta
        if flaw == "theta_off":
            theta *= 1.01
        A, B = legendre.discretize(spec.order, theta, spec.discretizer)
        if flaw == "A_transposed":
            A = A.T
        hid = spec.hidden
        units = hid.units if hid else 0
        outs, finals = [], {k: [] for k in spec.state_shapes(1)}
        for b in range(x.shape[0]):
            if state is None or flaw == "state_ignored":
                m = np.zeros((spec.memory_d, spec.order))
                h = np.zeros(units)
                c = np.zeros(units)
            else:
                m = np.array(state["memory"][b], float).reshape(spec.memory_d, spec.order)
                h = np.array(state["hidden"][b], float) if hid else np.zeros(0)
                c = np.array(state["cell"][b], float) if hid and hid.kind == "lstm" else np.zeros(units)
            seq = []
            for t in range(x.shape[1]):
                xt = np.asarray(x[b, t], float)
                e = np.concatenate([xt, h]) if spec.hidden_to_memory else xt
                u = e @ w["kernel"] if "kernel" in w else e.copy()
                if "bias" in w and flaw != "bias_dropped":
                    u = u + w["bias"]
                if "recurrent_kernel" in w:
                    u = u + m.reshape(-1) @ w["recurrent_kernel"]
                m_prev = m.copy()
                new_m = np.empty_like(m)
                for d in range(spec.memory_d):
                    new_m[d] = A @ m[d] + B * u[d]
                m = new_m
                mem = (m_prev if flaw == "memory_late" else m).reshape(-1)
                z = np.concatenate([mem, xt]) if spec.input_to_hidden else mem
                if hid is None:
                    seq.append(z)
                    continue
                pre = z @ w["hidden/kernel"]
                if "hidden/bias" in w and flaw != "hidden_bias_dropped":
                    pre = pre + w["hidden/bias"]
                if hid.kind == "dense":
                    h = _act(hid.activation, pre)
                elif hid.kind == "rnn":
                    h = _act(hid.activation, pre + h @ w["hidden/recurrent_kernel"])
                else:
                    g = pre + h @ w["hidden/recurrent_kernel"]
                    n = units
                    gi, gf, gc, go = g[:n], g[n:2 * n], g[2 * n:3 * n], g[3 * n:]
                    if flaw == "gates_swapped":
                        gi, gf = gf, gi
                    ra = hid.recurrent_activation
                    c = _act(ra, gf) * c + _act(ra, gi) * _act(hid.activation, gc)
                    h = _act(ra, go) * _act(hid.activation, c)
                seq.append(h)
            outs.append(seq)
            finals["memory"].append(m.reshape(-1))
            if hid:
                finals["hidden"].append(h)
                if hid.kind == "lstm":
                    finals["cell"].append(c)
        y = np.array(outs, dtype=float).astype(spec.dtype)
        if not spec.return_sequences:
            y = y[:, -1]
        if return_state:
            return y, {k: np.array(v).astype(spec.dtype) for k, v in finals.items()}
        return y


class LoopBackend(lmu.Backend):
    """A backend around :class:`LoopModel`; passed to the kit as an instance (no registration needed)."""

    requires = ("numpy",)

    def __init__(self, flaw=None):
        assert flaw is None or flaw in FLAWS
        self.flaw = flaw
        self.name = f"loop-{flaw or 'exact'}"

    def build(self, spec, weights, **options):
        return LoopModel(spec, weights, self)

    def get_weights(self, obj):
        return obj.weights

    def set_weights(self, obj, weights):
        obj.set_weights(weights)

    def run(self, obj, x, state=None, return_state=False):
        return obj.run(x, state, return_state)

    def owns(self, obj):
        return isinstance(obj, LoopModel) and obj.lmu_backend is self
