"""keras-lmu layers from a spec, their weights in the canonical layout, and inference with streaming state.

Design rule: the layer a user gets is keras-lmu's own (``keras_lmu.LMU``, ``keras.layers.RNN(LMUCell)`` or
``LMUFeedforward``), with the spec's hidden cell as Keras' ``Dense``, ``SimpleRNNCell`` or ``LSTMCell``. keras-lmu's
gaps are closed around it, not inside it: the spec is validated before TensorFlow is touched; the layer's dtype is
fixed to the spec's, so a global mixed-precision policy cannot break it; and ``run`` uses an exactly-built sibling
for another sequence length, and the cell in ``keras.layers.RNN`` for streaming state or non-finite input (an FFT
would smear a NaN backward in time).
"""

import contextlib
import math
import threading
import warnings

import numpy as np

from lmu import legendre
from lmu.arrays import mask_non_finite, poison_reached
from lmu.errors import ArgumentError
from lmu.spec import Hidden, LMUSpec
from lmu.weights import LMUWeights

__all__ = ["build_layer", "get_weights", "set_weights", "run", "is_lmu_layer", "parts", "keras_modules"]


def keras_modules():
    """``(keras, keras_lmu)``, imported on first use (the one place this plugin imports them)."""
    import keras
    import keras_lmu

    return keras, keras_lmu


def hidden_cell(hidden: Hidden | None, dtype: str):
    """The Keras cell for a spec's hidden (None without one)."""
    keras, _ = keras_modules()
    if hidden is None:
        return None
    common = dict(activation=hidden.activation, use_bias=hidden.use_bias, dtype=dtype)
    if hidden.kind == "dense":
        return keras.layers.Dense(hidden.units, **common)
    if hidden.kind == "rnn":
        return keras.layers.SimpleRNNCell(hidden.units, **common)
    return keras.layers.LSTMCell(hidden.units, recurrent_activation=hidden.recurrent_activation, **common)


def _cell_kwargs(spec: LMUSpec) -> dict:
    theta = int(spec.theta) if float(spec.theta).is_integer() else spec.theta  # keras-lmu wants 5·θ integral
    return dict(memory_d=spec.memory_d, order=spec.order, theta=theta,
                hidden_cell=hidden_cell(spec.hidden, spec.dtype), input_to_hidden=spec.input_to_hidden,
                discretizer=spec.discretizer, kernel_initializer=spec.kernel_initializer, use_bias=spec.use_bias,
                dropout=spec.dropout, dtype=spec.dtype)


def _recurrent_kwargs(spec: LMUSpec) -> dict:
    return dict(trainable_theta=spec.trainable_theta, hidden_to_memory=spec.hidden_to_memory,
                memory_to_memory=spec.memory_to_memory, recurrent_dropout=spec.recurrent_dropout)


def _lmu_cell(spec: LMUSpec):
    _, keras_lmu = keras_modules()
    # input_d: keras-lmu needs it to size the output when input_to_hidden has no hidden cell
    return keras_lmu.LMUCell(**_cell_kwargs(spec), **_recurrent_kwargs(spec), input_d=spec.input_d)


def _feedforward_length(spec: LMUSpec, seq_len):
    """The length LMUFeedforward is built for. keras-lmu fixes its impulse response at build; for an unknown length
    it takes 5·θ steps, which crashes unless θ is a whole number: then we build for the unknown length (the layer
    takes any length in a Keras model), else for ceil(5·θ) steps (pass ``seq_len`` to choose)."""
    if seq_len is not None:
        return int(seq_len)
    return None if float(spec.theta).is_integer() else int(math.ceil(5 * spec.theta))


def make_layer(spec: LMUSpec, mode: str, seq_len=None):
    """A new, built, keras-lmu layer for the spec (weights as Keras initializes them)."""
    keras, keras_lmu = keras_modules()
    # "auto" makes what keras_lmu.LMU would hold: LMUFeedforward (fft) for an LTI spec with a fixed θ, else the
    # cell in keras.layers.RNN; built here directly so that the cell gets input_d and the feedforward form an exact
    # impulse response (keras_lmu.LMU builds its inner layer itself, out of reach of both).
    feedforward = mode in ("fft", "raw") or (mode == "auto" and spec.is_lti and not spec.trainable_theta)
    if feedforward:
        layer = keras_lmu.LMUFeedforward(**_cell_kwargs(spec), return_sequences=spec.return_sequences,
                                         conv_mode="fft" if mode == "auto" else mode, truncate_ir=None)
        _exact_impulse(layer, spec)
    else:
        layer = keras.layers.RNN(_lmu_cell(spec), return_sequences=spec.return_sequences, dtype=spec.dtype)
    steps = _feedforward_length(spec, seq_len) if feedforward else seq_len
    with warnings.catch_warnings():  # keras-lmu's note on approximating an unknown length by 5·θ
        warnings.simplefilter("ignore", UserWarning)
        layer.build((None, steps, spec.input_d))
    _exact_system(layer, spec)
    _clamp_theta(layer, spec)
    layer.lmu_spec = spec
    layer.lmu_backend = "keras"
    layer.lmu_mode = mode
    layer.lmu_steps = steps
    return layer


def _exact_impulse(layer, spec: LMUSpec) -> None:
    """LMUFeedforward takes its impulse response at build from an LMUCell stepped eagerly over the whole length
    (seconds for a few thousand steps, in the layer's dtype); give it ``lmu.legendre``'s instead: the same
    response, computed in float64 without a loop over time."""
    import tensorflow as tf

    if not hasattr(layer, "delay_layer"):
        return
    system = legendre.discretize(spec.order, spec.theta, spec.discretizer)

    def impulse_response(impulse, training=False):
        H = legendre.impulse_response(*system, int(impulse.shape[1]))
        return tf.constant(H[None], dtype=spec.dtype)

    layer.delay_layer = impulse_response


def _exact_system(layer, spec: LMUSpec) -> None:
    """Give a step-by-step LMUCell the float64 zoh discretization of ``lmu.legendre`` (keras-lmu takes its matrix
    exponential in the layer's dtype, which in float32 costs an order of magnitude in accuracy over long runs)."""
    import tensorflow as tf

    keras, keras_lmu = keras_modules()
    inner = layer.layer if isinstance(layer, keras_lmu.LMU) else layer
    if spec.discretizer != "zoh" or spec.trainable_theta or not isinstance(inner, keras.layers.RNN):
        return
    A_bar, B_bar = legendre.discretize(spec.order, spec.theta, "zoh")
    inner.cell.A = tf.constant(A_bar.T, dtype=spec.dtype)
    inner.cell.B = tf.constant(B_bar[None, :], dtype=spec.dtype)


def _clamp_theta(layer, spec: LMUSpec) -> None:
    """Keep a trainable θ where the spec stays computable: keras-lmu trains ``theta_inv = 1/θ`` with only a
    non-negativity constraint, so an optimizer can drive θ to 0 or infinity; clip ``theta_inv`` to
    ``1 / lmu.legendre.theta_range`` after every update instead (Keras applies a variable's constraint then)."""
    if not spec.trainable_theta:
        return
    keras, _ = keras_modules()
    low, high = legendre.theta_range(spec.order, spec.discretizer, spec.dtype, spec.theta)

    class ThetaRange(keras.constraints.Constraint):
        def __call__(self, theta_inv):
            return keras.ops.clip(theta_inv, 1.0 / high, 1.0 / low) if hasattr(keras, "ops") else \
                __import__("tensorflow").clip_by_value(theta_inv, 1.0 / high, 1.0 / low)

    variable = parts(layer)[0].theta_inv
    try:
        variable.constraint = ThetaRange()  # Keras 3
    except AttributeError:  # TensorFlow's variables (Keras 2) keep it privately
        variable._constraint = ThetaRange()


def build_layer(spec: LMUSpec, weights: LMUWeights, mode: str, seq_len=None):
    layer = make_layer(spec, mode, seq_len)
    set_weights(layer, weights)
    return layer


def is_lmu_layer(obj) -> bool:
    keras, keras_lmu = keras_modules()
    if isinstance(obj, (keras_lmu.LMU, keras_lmu.LMUFeedforward)):
        return True
    return isinstance(obj, keras.layers.RNN) and isinstance(obj.cell, keras_lmu.LMUCell)


def parts(layer):
    """``(core, cell)``: the object holding kernel/bias/(recurrent_kernel, theta_inv) and the hidden cell."""
    keras, keras_lmu = keras_modules()
    inner = layer.layer if isinstance(layer, keras_lmu.LMU) else layer
    if inner is None:
        raise ArgumentError("the keras-lmu layer is not built yet: call it on an input (or build it) first")
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


#: Runs of keras-lmu layers are serialized: the dtype policy they set is global to Keras, and siblings are shared.
_RUN_LOCK = threading.RLock()


def run(layer, x, state=None, return_state=False):
    """:func:`lmu.run` for a keras-lmu layer (one run at a time in this process: thread-safe)."""
    with _RUN_LOCK:
        return _run(layer, x, state, return_state)


def _run(layer, x, state=None, return_state=False):
    from .backend import KerasBackend

    spec = KerasBackend().spec_of(layer)
    x = np.asarray(x, dtype=spec.dtype)
    if np.isfinite(x).all():
        return _run_finite(layer, spec, x, state, return_state)
    # Non-finite input propagates by masking, never through TensorFlow's kernels: which fused kernel oneDNN picks
    # depends on the CPU, and one of them turns NaN into 0 (relu). Simulate the finite values, then NaN exactly
    # where the step order carries them (lmu.arrays.poison_reached).
    clean, _ = mask_non_finite(x)
    result = _run_cell(layer, spec, clean, state, return_state)  # the exact cell, as for a given state
    out, new = result if return_state else (result, None)
    out, new = poison_reached(spec, x, out, new)
    return (out, new) if return_state else out


def _run_finite(layer, spec, x, state, return_state):
    steps = x.shape[1]
    if state is None and not return_state:
        target = layer
        inner = _inner(layer)
        if _is_feedforward(layer) and getattr(layer, "lmu_steps", None) != steps:
            # its impulse response was fixed at build for another length: a sibling built for exactly this one
            mode = getattr(layer, "lmu_mode", None) or inner.conv_mode
            target = _sibling(layer, ("ff", steps), lambda: make_layer(spec, mode, steps))
        with _policy(spec.dtype):
            return np.asarray(_call(target, steps)(x)).astype(spec.dtype, copy=False)
    return _run_cell(layer, spec, x, state, return_state)


@contextlib.contextmanager
def _policy(dtype):
    """keras-lmu's feedforward form makes a TimeDistributed (dense hidden, return_sequences) at call time without
    a dtype, so it follows the global policy: hold the policy at the spec's dtype while lmu runs the layer."""
    keras, _ = keras_modules()
    before = keras.mixed_precision.global_policy()  # (keras.config.dtype_policy in Keras 3 only)
    keras.mixed_precision.set_global_policy(dtype)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(before)


_GRAPH_FROM = 64  # steps: from here on a traced tf.function beats Keras' eager loop over time


def _call(layer, steps):
    """``layer(x[, initial_state], training=False)``, through a cached tf.function for long sequences."""
    def call(x, initial=None):
        if initial is None:
            return layer(x, training=False)
        import tensorflow as tf

        # tensors, not arrays: Keras 2's RNN takes an initial state of NumPy arrays for a symbolic input
        return layer(x, initial_state=[tf.convert_to_tensor(s) for s in initial], training=False)

    if steps < _GRAPH_FROM:
        return call
    import tensorflow as tf

    cache = layer.__dict__.setdefault("_lmu_graph", {})
    if "fn" not in cache:
        cache["fn"] = tf.function(call, reduce_retracing=True)
    return cache["fn"]


def _inner(layer):
    _, keras_lmu = keras_modules()
    return layer.layer if isinstance(layer, keras_lmu.LMU) else layer


def _is_feedforward(layer) -> bool:
    _, keras_lmu = keras_modules()
    return isinstance(_inner(layer), keras_lmu.LMUFeedforward)


def _run_cell(layer, spec, x, state, return_state):
    """The cell in ``keras.layers.RNN`` with an initial state: exact streaming for every spec."""
    keras, keras_lmu = keras_modules()

    def make():
        rnn = keras.layers.RNN(_lmu_cell(spec), return_sequences=True, return_state=True, dtype=spec.dtype)
        rnn.build((None, None, spec.input_d))
        _exact_system(rnn, spec)
        _clamp_theta(rnn, spec)
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
    result = _call(rnn, x.shape[1])(x, initial)
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
