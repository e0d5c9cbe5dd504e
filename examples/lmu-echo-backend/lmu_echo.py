"""lmu_echo: a minimal lmu backend, "echo", written as a plain NumPy loop (an example of a third-party plugin).

It builds memory-only LMUs and LMUs with a dense hidden layer, with or without ``input_to_hidden``; it refuses
everything else through ``check``, which is how a backend states what it cannot build.
"""

import numpy as np

import lmu
from lmu import legendre

ACTIVATIONS = {"linear": lambda v: v, "tanh": np.tanh, "relu": lambda v: np.maximum(v, 0.0),
               "sigmoid": lambda v: 1.0 / (1.0 + np.exp(-v))}


class EchoLMU:
    """The native object: the spec, the weights, and a step loop."""

    def __init__(self, spec, weights):
        self.lmu_spec, self.lmu_backend = spec, "echo"
        self.set_weights(weights)

    def set_weights(self, weights):
        self.weights = weights
        self.A, self.B = legendre.discretize(self.lmu_spec.order, weights.theta, self.lmu_spec.discretizer)

    def __call__(self, x, state=None):
        spec, w = self.lmu_spec, {k: np.asarray(v, np.float64) for k, v in self.weights.items()}
        batch, steps, _ = x.shape
        m = np.zeros((batch, spec.memory_d, spec.order)) if state is None else \
            np.asarray(state["memory"], np.float64).reshape(batch, spec.memory_d, spec.order)
        outs = []
        for t in range(steps):
            u = x[:, t] @ w["kernel"] if "kernel" in w else x[:, t]
            if "bias" in w:
                u = u + w["bias"]
            m = m @ self.A.T + u[:, :, None] * self.B  # m_t = Ā m_{t-1} + B̄ u_t, per memory dimension
            z = m.reshape(batch, -1)
            if spec.input_to_hidden:
                z = np.concatenate([z, x[:, t]], axis=1)
            if spec.hidden is not None:
                act = ACTIVATIONS[spec.hidden.activation or "linear"]
                z = act(z @ w["hidden/kernel"] + w.get("hidden/bias", 0.0))
            outs.append(z)
        out = np.stack(outs, axis=1)
        state = {"memory": m.reshape(batch, -1)}
        if spec.hidden is not None:
            state["hidden"] = outs[-1]
        return (out if spec.return_sequences else out[:, -1]), state


class EchoBackend(lmu.Backend):
    """``lmu.build(spec, backend="echo")``."""

    name = "echo"
    requires = ("numpy",)
    framework = "numpy"

    def check(self, spec):
        reasons = []
        if spec.hidden is not None and spec.hidden.kind != "dense":
            reasons.append(f"the echo backend has dense hiddens only (got {spec.hidden.kind!r})")
        if spec.hidden_to_memory or spec.memory_to_memory:
            reasons.append("the echo backend has no recurrent connections into the memory")
        return reasons

    def build(self, spec, weights, **options):
        return EchoLMU(spec, weights)

    def get_weights(self, obj):
        return obj.weights

    def set_weights(self, obj, weights):
        obj.set_weights(weights)

    def run(self, obj, x, state=None, return_state=False):
        out, new = obj(np.asarray(x, np.float64), state)
        out = out.astype(obj.lmu_spec.dtype)
        return (out, {k: v.astype(obj.lmu_spec.dtype) for k, v in new.items()}) if return_state else out
