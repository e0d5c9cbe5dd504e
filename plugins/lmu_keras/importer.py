"""``lmu.from_keras``: an existing keras-lmu layer or model (live, or loaded from a ``.keras`` file) → (spec, weights).

Design rule: read what the layer *is* (its attributes and its built variables), refuse with a clear error what has
no spec equivalent (a hidden cell with its own dropout, a custom cell, an activation the spec does not know, a
mixed-precision or stateful layer), and never guess: every refusal says what was found and what would be accepted.
"""

import os

from lmu.errors import UnsupportedSpec
from lmu.spec import ACTIVATIONS, INITIALIZERS, Hidden, LMUSpec

__all__ = ["from_keras", "find_lmu_layer"]


def _modules():
    import keras
    import keras_lmu

    return keras, keras_lmu


def find_lmu_layer(obj):
    """The one keras-lmu layer in ``obj`` (a layer, a model, or a path to a ``.keras`` file)."""
    keras, keras_lmu = _modules()
    from .layers import is_lmu_layer

    if isinstance(obj, (str, os.PathLike)):
        path = os.fspath(obj)
        if not path.endswith(".keras"):
            raise ValueError(f"lmu.from_keras reads a model saved as a .keras file (got {path!r})")
        obj = keras.models.load_model(path)
    if is_lmu_layer(obj):
        return obj
    if isinstance(obj, keras.Model):
        found = [layer for layer in _walk(obj) if is_lmu_layer(layer)]
        if len(found) == 1:
            return found[0]
        names = ", ".join(layer.name for layer in found) or "none"
        raise ValueError(f"lmu.from_keras needs a model with exactly one keras-lmu layer (found: {names}); pass "
                         "the layer itself, e.g. model.get_layer(name)")
    raise TypeError(f"lmu.from_keras takes a keras_lmu.LMU, LMUFeedforward or keras.layers.RNN(LMUCell) layer, "
                    f"a model holding one, or a .keras path (got {type(obj).__name__})")


def _walk(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers") and not hasattr(layer, "cell"):
            yield from _walk(layer)


def _activation_name(fn, what):
    keras, _ = _modules()
    name = keras.activations.serialize(fn)
    name = name if isinstance(name, str) else name.get("config", {}).get("name", str(name))
    if name not in ACTIVATIONS:
        raise UnsupportedSpec(f"{what} is {name!r}, which the spec has no equivalent for (accepted: "
                              f"{', '.join(ACTIVATIONS)})")
    return name


def _hidden(cell):
    keras, _ = _modules()
    if cell is None:
        return None
    kind = {keras.layers.Dense: "dense", keras.layers.SimpleRNNCell: "rnn", keras.layers.LSTMCell: "lstm"}.get(
        type(cell))
    if kind is None:
        raise UnsupportedSpec(f"the hidden cell {type(cell).__name__} has no spec equivalent; lmu knows Dense, "
                              "SimpleRNNCell and LSTMCell")
    for attr in ("dropout", "recurrent_dropout"):
        if getattr(cell, attr, 0):
            raise UnsupportedSpec(f"the hidden {type(cell).__name__} has its own {attr}={getattr(cell, attr)}, "
                                  "which the spec has no equivalent for (only the LMU's dropout and "
                                  "recurrent_dropout): rebuild the cell without it")
    act = _activation_name(cell.activation, f"the hidden cell's activation")
    rec = _activation_name(cell.recurrent_activation, "the LSTM's recurrent_activation") if kind == "lstm" \
        else "sigmoid"
    return Hidden(kind, cell.units, act, recurrent_activation=rec, use_bias=bool(cell.use_bias))


def from_keras(obj):
    """``(spec, weights)`` of a keras-lmu layer or of the one keras-lmu layer in a model (or a ``.keras`` file)."""
    keras, keras_lmu = _modules()
    from .layers import get_weights, parts

    layer = find_lmu_layer(obj)
    if not layer.built:
        raise ValueError(f"the keras-lmu layer {layer.name!r} is not built: call it on an input first")
    rnn = layer if isinstance(layer, keras.layers.RNN) else None
    if rnn is not None and (rnn.go_backwards or rnn.stateful):
        raise UnsupportedSpec(f"keras.layers.RNN {layer.name!r} has go_backwards={rnn.go_backwards}, "
                              f"stateful={rnn.stateful}; the spec runs forward and statelessly (lmu.run streams "
                              "with an explicit state instead)")
    core, cell = parts(layer)
    src = layer if isinstance(layer, keras_lmu.LMU) else core
    compute_dtype = getattr(layer, "compute_dtype", None) or layer.dtype
    if str(compute_dtype) not in ("float32", "float64"):
        raise UnsupportedSpec(f"the layer computes in {compute_dtype}; lmu specs are float32 or float64 (mixed "
                              "precision is not part of the spec)")
    hidden = _hidden(cell)
    units = hidden.units if hidden is not None else 0
    h2m = bool(getattr(src, "hidden_to_memory", False))
    kernel = getattr(core, "kernel", None)
    enc_d = kernel.shape[0] if kernel is not None else src.memory_d
    init = getattr(src, "kernel_initializer", None)
    if kernel is None:
        init_name = None
    else:
        init_name = init if isinstance(init, str) else keras.initializers.serialize(init)
        init_name = init_name if isinstance(init_name, str) else init_name.get("class_name", "")
        init_name = _snake(init_name)
        init_name = init_name if init_name in INITIALIZERS else "glorot_uniform"
    spec = LMUSpec(
        memory_d=int(src.memory_d), order=int(src.order), theta=float(src._init_theta), input_d=int(enc_d - (
            units if h2m else 0)),
        hidden=hidden, hidden_to_memory=h2m, memory_to_memory=bool(getattr(src, "memory_to_memory", False)),
        input_to_hidden=bool(src.input_to_hidden), discretizer=src.discretizer,
        trainable_theta=bool(getattr(src, "trainable_theta", False)), use_bias=bool(src.use_bias),
        kernel_initializer=init_name, dropout=float(src.dropout),
        recurrent_dropout=float(getattr(src, "recurrent_dropout", 0.0)),
        return_sequences=bool((rnn or layer).return_sequences), dtype=str(compute_dtype))
    return spec, get_weights(layer, spec)


def _snake(name):
    out = "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")
    return {"glorot_uniform": "glorot_uniform"}.get(out, out)
