"""``lmu.from_keras``: a keras-lmu layer or model (live, or loaded from a ``.keras`` file) → (spec, weights).

Design rule: read what the layer *is* (its attributes and its built variables), refuse with a clear error what has
no spec equivalent (a hidden cell with its own dropout, a custom cell, an activation the spec does not know, a
mixed-precision, backwards or stateful layer), and never guess: every refusal says what was found and what would
be accepted. Settings that only shape training or initialization (regularizers, the recurrent and bias
initializers, seeds) are not part of a spec and are not read; an input-kernel initializer the spec does not name
becomes "glorot_uniform" (the imported weights, not the initializer, carry the trained kernel).
"""

import os

from lmu.activations import NAMES as ACTIVATIONS
from lmu.errors import ArgumentError, UnsupportedSpec
from lmu.spec import INITIALIZERS, Hidden, LMUSpec

from .layers import keras_modules

__all__ = ["from_keras", "find_lmu_layer"]


def find_lmu_layer(obj):
    """The one keras-lmu layer in a layer, a model, or a ``.keras`` file.

    Parameters
    ----------
    obj : keras.layers.Layer, keras.Model, str or os.PathLike
        A ``keras_lmu.LMU``, ``keras_lmu.LMUFeedforward`` or ``keras.layers.RNN(keras_lmu.LMUCell)``; a model
        holding exactly one of them (nested models are searched); or the path of a model saved as ``.keras``.

    Returns
    -------
    keras.layers.Layer
        The keras-lmu layer.

    Raises
    ------
    ArgumentError
        For a path that is not a ``.keras`` file, a model with no or several keras-lmu layers (named), or any other
        object.
    """
    keras, keras_lmu = keras_modules()
    from .layers import is_lmu_layer

    obj = load_if_path(obj, "lmu.from_keras")
    if is_lmu_layer(obj):
        return obj
    if isinstance(obj, keras.Model):
        found = [layer for layer in _walk(obj) if is_lmu_layer(layer)]
        if len(found) == 1:
            return found[0]
        names = ", ".join(repr(layer.name) for layer in found) or "none"
        raise ArgumentError(f"lmu.from_keras needs a model with exactly one keras-lmu layer (found: {names}); pass "
                            "the layer itself, e.g. lmu.from_keras(model.get_layer(name))")
    raise ArgumentError(f"lmu.from_keras takes a keras_lmu.LMU, LMUFeedforward or keras.layers.RNN(LMUCell) layer, "
                        f"a model holding one, or a .keras path (got {type(obj).__name__})")


def load_if_path(obj, caller: str):
    """``obj``, or the model of the ``.keras`` file it names (any other path is refused, naming ``caller``)."""
    if not isinstance(obj, (str, os.PathLike)):
        return obj
    keras, _ = keras_modules()
    path = os.fspath(obj)
    if not str(path).endswith(".keras"):
        raise ArgumentError(f"{caller} reads a model saved as a .keras file (got {path!r}); load other formats "
                            "with Keras and pass the model")
    return keras.models.load_model(path)


def _walk(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers") and not hasattr(layer, "cell"):
            yield from _walk(layer)


def _activation_name(fn, what):
    """The spec's name for a Keras activation function (matched by identity), or UnsupportedSpec."""
    keras, _ = keras_modules()
    for name in ACTIVATIONS:
        if fn is keras.activations.get(name):
            return name
    try:
        found = keras.activations.serialize(fn)
    except Exception:  # a lambda or another object Keras cannot name
        found = None
    if isinstance(found, dict):
        config = found.get("config")
        found = config if isinstance(config, str) else found.get("class_name")
    found = found if isinstance(found, str) else getattr(fn, "__name__", repr(fn))
    raise UnsupportedSpec(f"{what} is {found!r}, which the spec has no equivalent for (accepted: "
                          f"{', '.join(ACTIVATIONS)})")


def _hidden(cell, dtype):
    """The spec's Hidden for a keras hidden cell (None for None), or UnsupportedSpec."""
    keras, _ = keras_modules()
    if cell is None:
        return None
    kind = {keras.layers.Dense: "dense", keras.layers.SimpleRNNCell: "rnn", keras.layers.LSTMCell: "lstm"}.get(
        type(cell))
    name = type(cell).__name__
    if kind is None:
        raise UnsupportedSpec(f"the hidden cell {name} ({type(cell).__module__}) has no spec equivalent; lmu knows "
                              "keras.layers.Dense, SimpleRNNCell and LSTMCell")
    for attr in ("dropout", "recurrent_dropout"):
        if getattr(cell, attr, 0):
            raise UnsupportedSpec(f"the hidden {name} has its own {attr}={getattr(cell, attr)}, which the spec has "
                                  "no equivalent for (only the LMU's dropout and recurrent_dropout): rebuild the "
                                  f"cell with {attr}=0")
    cell_dtype = str(getattr(cell, "compute_dtype", dtype))
    if cell_dtype != dtype:
        raise UnsupportedSpec(f"the hidden {name} computes in {cell_dtype} but the LMU in {dtype}; a spec has one "
                              f"dtype: give the cell dtype={dtype!r}")
    act = _activation_name(cell.activation, f"the hidden {name}'s activation")
    rec = _activation_name(cell.recurrent_activation, "the LSTMCell's recurrent_activation") if kind == "lstm" \
        else "sigmoid"
    return Hidden(kind, int(cell.units), act, recurrent_activation=rec, use_bias=bool(cell.use_bias))


def _initializer_name(init):
    """The spec's name for a Keras initializer given as a name, an object or a serialized dict."""
    if isinstance(init, str):
        name = init
    elif isinstance(init, dict):
        name = str(init.get("class_name", ""))
    else:
        name = type(init).__name__
    name = "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")  # GlorotUniform → glorot_uniform
    return name if name in INITIALIZERS else "glorot_uniform"


def from_keras(obj, spec=None):
    """``(spec, weights)`` of a keras-lmu layer, of the one keras-lmu layer in a model, or of a ``.keras`` file.

    Parameters
    ----------
    obj : keras.layers.Layer, keras.Model, str or os.PathLike
        See :func:`find_lmu_layer`. The layer must be built (called on an input) so that its variables exist.
        Or the path of a Keras 3 weights-only file (``.weights.h5`` / ``.h5``, from ``model.save_weights``), which
        needs ``spec``: see :func:`lmu_keras.h5.weights_from_h5`.
    spec : LMUSpec, optional
        Only for a weights-only ``.h5`` path (which holds no configuration): what the keras-lmu layer in it is.

    Returns
    -------
    spec : LMUSpec
        ``theta`` is the layer's initial θ; with ``trainable_theta`` the trained θ is ``weights["theta"]``.
    weights : LMUWeights
        The layer's current variables in the canonical layout (θ = 1 / ``theta_inv``).

    Raises
    ------
    UnsupportedSpec
        For what a spec cannot describe: a hidden cell other than Dense, SimpleRNNCell or LSTMCell, or with its own
        dropout; an activation outside ``lmu.activations.NAMES``; a float16/bfloat16 (mixed-precision) layer; an RNN
        with ``go_backwards`` or ``stateful``.
    ArgumentError
        As :func:`find_lmu_layer`, and for an unbuilt layer.

    Notes
    -----
    ``LMUFeedforward(conv_mode="raw")`` truncates its impulse response (``truncate_ir``); the imported spec is
    the exact LMU, which that layer approximates within about ``truncate_ir``.

    Examples
    --------
    >>> import keras, keras_lmu, lmu, numpy as np
    >>> layer = keras_lmu.LMU(memory_d=1, order=8, theta=20, hidden_cell=keras.layers.SimpleRNNCell(4))
    >>> _ = layer(np.zeros((1, 30, 2), "float32"))
    >>> spec, weights = lmu.from_keras(layer)
    >>> spec.order, spec.input_d, spec.hidden.kind, sorted(weights)
    (8, 2, 'rnn', ['hidden/bias', 'hidden/kernel', 'hidden/recurrent_kernel', 'kernel'])
    """
    if isinstance(obj, (str, os.PathLike)) and str(os.fspath(obj)).endswith(".h5"):
        if spec is None:
            raise ArgumentError(f"{os.fspath(obj)!r} is a weights-only file, which holds no configuration: pass the "
                                "layer's spec, lmu.from_keras(path, spec=lmu.LMUSpec(...)), or save the whole model as "
                                "a .keras file and pass its path")
        from .h5 import weights_from_h5

        return spec, weights_from_h5(obj, spec)
    if spec is not None:
        raise ArgumentError("lmu.from_keras reads the spec from a layer, model or .keras file; spec= is only for a "
                            "weights-only .h5 path")
    keras, keras_lmu = keras_modules()
    from .layers import get_weights, parts

    layer = find_lmu_layer(obj)
    if not layer.built or (isinstance(layer, keras_lmu.LMU) and layer.layer is None):
        raise ArgumentError(f"the keras-lmu layer {layer.name!r} is not built: call it on an input first")
    rnn = layer if isinstance(layer, keras.layers.RNN) else None
    if rnn is not None and (rnn.go_backwards or rnn.stateful):
        raise UnsupportedSpec(f"keras.layers.RNN {layer.name!r} has go_backwards={rnn.go_backwards}, "
                              f"stateful={rnn.stateful}; the spec runs forward and statelessly (lmu.run streams "
                              "with an explicit state instead): use go_backwards=False, stateful=False")
    core, cell = parts(layer)
    src = layer if isinstance(layer, keras_lmu.LMU) else core
    dtype = str(getattr(layer, "compute_dtype", None) or layer.dtype)
    if dtype not in ("float32", "float64"):
        raise UnsupportedSpec(f"the keras-lmu layer {layer.name!r} computes in {dtype}; lmu specs are float32 or "
                              "float64 (mixed precision is not part of a spec): rebuild it with dtype='float32'")
    hidden = _hidden(cell, dtype)
    h2m = bool(getattr(src, "hidden_to_memory", False))
    kernel = getattr(core, "kernel", None)
    enc_d = kernel.shape[0] if kernel is not None else src.memory_d
    theta = src._init_theta if hasattr(src, "_init_theta") else src.theta  # LMUFeedforward keeps θ as .theta
    spec = LMUSpec(
        memory_d=int(src.memory_d), order=int(src.order), theta=float(theta),
        input_d=int(enc_d - (hidden.units if h2m else 0)), hidden=hidden, hidden_to_memory=h2m,
        memory_to_memory=bool(getattr(src, "memory_to_memory", False)), input_to_hidden=bool(src.input_to_hidden),
        discretizer=src.discretizer, trainable_theta=bool(getattr(src, "trainable_theta", False)),
        use_bias=bool(src.use_bias),
        kernel_initializer=None if kernel is None else _initializer_name(src.kernel_initializer),
        dropout=float(src.dropout), recurrent_dropout=float(getattr(src, "recurrent_dropout", 0.0)),
        return_sequences=bool((rnn or layer).return_sequences), dtype=dtype)
    return spec, get_weights(layer, spec)
