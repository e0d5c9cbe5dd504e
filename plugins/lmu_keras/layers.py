"""keras-lmu layers from a spec, their weights in the canonical layout, and inference with streaming state.

Design rule: the layer a user gets is keras-lmu's own (``keras_lmu.LMU``, ``keras.layers.RNN(LMUCell)`` or
``LMUFeedforward``), with the spec's hidden cell as Keras' ``Dense``, ``SimpleRNNCell`` or ``LSTMCell``. keras-lmu's
gaps are closed around it, not inside it: the spec is validated before TensorFlow is touched; the layer's dtype is
fixed to the spec's, so a global mixed-precision policy cannot break it; and ``run`` uses an exactly-built sibling
for another sequence length, and the cell in ``keras.layers.RNN`` for streaming state or non-finite input (an FFT
would smear a NaN backward in time).
"""

import math

import numpy as np

from lmu.spec import Hidden, LMUSpec
from lmu.weights import LMUWeights

__all__ = ["build_layer", "get_weights", "set_weights", "run", "is_lmu_layer", "parts"]


def _modules():
    import keras
    import keras_lmu

    return keras, keras_lmu


def hidden_cell(hidden: Hidden | None, dtype: str):
    """The Keras cell for a spec's hidden (None without one)."""
    keras, _ = _modules()
    if hidden is None:
        return None
    common = dict(activation=hidden.activation, use_bias=hidden.use_bias, dtype=dtype)
    if hidden.kind == "dense":
        return keras.layers.Dense(hidden.units, **common)
    if hidden.kind == "rnn":
        return keras.layers.SimpleRNNCell(hidden.units, **common)
    return keras.layers.LSTMCell(hidden.units, recurrent_activation=hidden.recurrent_activation, **common)


def _cell_kwargs(spec: LMUSpec) -> dict:
    return dict(memory_d=spec.memory_d, order=spec.order, theta=spec.theta,
                hidden_cell=hidden_cell(spec.hidden, spec.dtype), input_to_hidden=spec.input_to_hidden,
                discretizer=spec.discretizer, kernel_initializer=spec.kernel_initializer, use_bias=spec.use_bias,
                dropout=spec.dropout, dtype=spec.dtype)


def _recurrent_kwargs(spec: LMUSpec) -> dict:
    return dict(trainable_theta=spec.trainable_theta, hidden_to_memory=spec.hidden_to_memory,
                memory_to_memory=spec.memory_to_memory, recurrent_dropout=spec.recurrent_dropout)


def _feedforward_length(spec: LMUSpec, seq_len) -> int:
    # keras-lmu fixes the impulse response at build; for an unknown length it would take 5·θ (and crash on a
    # non-integer θ), so we give it that length, rounded up, ourselves.
    return int(seq_len) if seq_len is not None else int(math.ceil(5 * spec.theta))


def make_layer(spec: LMUSpec, mode: str, seq_len=None):
    """A new, built, keras-lmu layer for the spec (weights as Keras initializes them)."""
    keras, keras_lmu = _modules()
    if mode == "auto":
        layer = keras_lmu.LMU(**_cell_kwargs(spec), **_recurrent_kwargs(spec),
                              return_sequences=spec.return_sequences)
        feedforward = spec.is_lti and not spec.trainable_theta
    elif mode == "rnn":
        layer = keras.layers.RNN(keras_lmu.LMUCell(**_cell_kwargs(spec), **_recurrent_kwargs(spec)),
                                 return_sequences=spec.return_sequences, dtype=spec.dtype)
        feedforward = False
    else:
        layer = keras_lmu.LMUFeedforward(**_cell_kwargs(spec), return_sequences=spec.return_sequences,
                                         conv_mode=mode, truncate_ir=None)
        feedforward = True
    steps = _feedforward_length(spec, seq_len) if feedforward else seq_len
    layer.build((None, steps, spec.input_d))
    layer.lmu_spec = spec
    layer.lmu_backend = "keras"
    layer.lmu_mode = mode
    layer.lmu_steps = steps if feedforward else None
    return layer


def build_layer(spec: LMUSpec, weights: LMUWeights, mode: str, seq_len=None):
    layer = make_layer(spec, mode, seq_len)
    set_weights(layer, weights)
    return layer


def is_lmu_layer(obj) -> bool:
    keras, keras_lmu = _modules()
    if isinstance(obj, (keras_lmu.LMU, keras_lmu.LMUFeedforward)):
        return True
    return isinstance(obj, keras.layers.RNN) and isinstance(obj.cell, keras_lmu.LMUCell)


def parts(layer):
    """``(core, cell)``: the object holding kernel/bias/(recurrent_kernel, theta_inv) and the hidden cell."""
    keras, keras_lmu = _modules()
    inner = layer.layer if isinstance(layer, keras_lmu.LMU) else layer
    if inner is None:
        raise ValueError("the keras-lmu layer is not built yet: call it on an input (or build it) first")
    core = inner.cell if isinstance(inner, keras.layers.RNN) else inner
    return core, core.hidden_cell


def _value(variable):
    return np.asarray(variable.numpy() if hasattr(variable, "numpy") else variable)


def get_weights(layer, spec: LMUSpec | None = None) -> LMUWeights:
    """The layer's weights in the canonical layout (θ = 1/theta_inv when trainable)."""
    from .backend import KerasBackend

    spec = spec or KerasBackend().spec_of(layer)
    core, cell = parts(layer)
    arrays = {}
    for name in ("kernel", "bias", "recurrent_kernel"):
        if getattr(core, name, None) is not None:
            arrays[name] = _value(getattr(core, name))
    if spec.trainable_theta:
        arrays["theta"] = 1.0 / _value(core.theta_inv)
    if cell is not None:
        arrays["hidden/kernel"] = _value(cell.kernel)
        if getattr(cell, "recurrent_kernel", None) is not None:
            arrays["hidden/recurrent_kernel"] = _value(cell.recurrent_kernel)
        if getattr(cell, "bias", None) is not None:
            arrays["hidden/bias"] = _value(cell.bias)
    return LMUWeights(spec, arrays)


def set_weights(layer, weights, spec: LMUSpec | None = None) -> None:
    """Assign canonical weights to the layer's variables."""
    from .backend import KerasBackend

    spec = spec or KerasBackend().spec_of(layer)
    if not isinstance(weights, LMUWeights) or weights.spec != spec:
        weights = LMUWeights(spec, weights)
    core, cell = parts(layer)
    for name in ("kernel", "bias", "recurrent_kernel"):
        if name in weights:
            getattr(core, name).assign(np.asarray(weights[name]))
    if "theta" in weights:
        core.theta_inv.assign(np.asarray(1.0 / weights["theta"], dtype=spec.dtype))
    if cell is not None:
        cell.kernel.assign(np.asarray(weights["hidden/kernel"]))
        if "hidden/recurrent_kernel" in weights:
            cell.recurrent_kernel.assign(np.asarray(weights["hidden/recurrent_kernel"]))
        if "hidden/bias" in weights:
            cell.bias.assign(np.asarray(weights["hidden/bias"]))


def _sibling(layer, key, make):
    """A helper layer kept on the user's layer (built once, weights copied in before each use)."""
    cache = layer.__dict__.setdefault("_lmu_siblings", {})
    if key not in cache:
        cache[key] = make()
    sibling = cache[key]
    set_weights(sibling, get_weights(layer, sibling.lmu_spec), sibling.lmu_spec)
    return sibling


def run(layer, x, state=None, return_state=False):
    from .backend import KerasBackend

    spec = KerasBackend().spec_of(layer)
    x = np.asarray(x, dtype=spec.dtype)
    steps = x.shape[1]
    if state is None and not return_state and np.isfinite(x).all():
        target = layer
        feedforward_steps = getattr(layer, "lmu_steps", None) if hasattr(layer, "lmu_mode") else None
        if feedforward_steps is not None and feedforward_steps != steps:
            target = _sibling(layer, ("ff", steps), lambda: make_layer(spec, layer.lmu_mode, steps))
        elif feedforward_steps is None and not hasattr(layer, "lmu_mode") and _is_feedforward(layer):
            target = _sibling(layer, ("rnn",), lambda: make_layer(spec, "rnn"))
        return np.asarray(target(x, training=False)).astype(spec.dtype, copy=False)
    return _run_cell(layer, spec, x, state, return_state)


def _is_feedforward(layer) -> bool:
    _, keras_lmu = _modules()
    inner = layer.layer if isinstance(layer, keras_lmu.LMU) else layer
    return isinstance(inner, keras_lmu.LMUFeedforward)


def _run_cell(layer, spec, x, state, return_state):
    """The cell in ``keras.layers.RNN`` with an initial state: exact streaming for every spec."""
    keras, keras_lmu = _modules()

    def make():
        cell = keras_lmu.LMUCell(**_cell_kwargs(spec), **_recurrent_kwargs(spec))
        rnn = keras.layers.RNN(cell, return_sequences=True, return_state=True, dtype=spec.dtype)
        rnn.build((None, None, spec.input_d))
        rnn.lmu_spec = spec
        return rnn

    rnn = _sibling(layer, ("cell",), make)
    batch = x.shape[0]
    shapes = spec.state_shapes(batch)
    state = state or {k: np.zeros(s, dtype=spec.dtype) for k, s in shapes.items()}
    initial = [np.asarray(state["memory"], dtype=spec.dtype)]
    if spec.hidden is not None:
        initial.append(np.asarray(state["hidden"], dtype=spec.dtype))
        if spec.hidden.kind == "lstm":
            initial.append(np.asarray(state["cell"], dtype=spec.dtype))
    result = rnn(x, initial_state=initial, training=False)
    out, finals = np.asarray(result[0]), [np.asarray(s) for s in result[1:]]
    if not spec.return_sequences:
        out = out[:, -1]
    out = out.astype(spec.dtype, copy=False)
    if not return_state:
        return out
    new = {"memory": finals[0]}
    if spec.hidden is not None:
        new["hidden"] = finals[1]
        if spec.hidden.kind == "lstm":
            new["cell"] = finals[2]
    return out, {k: v.astype(spec.dtype, copy=False) for k, v in new.items()}
