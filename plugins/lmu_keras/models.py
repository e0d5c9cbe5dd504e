"""``lmu_keras.read_model``: a whole Keras model (object or ``.keras`` path) → the neutral stages of
:mod:`lmu.models`, for ``lmu.convert_model``.

Design rule: read the chain of layers as it is and refuse, by name and type, any layer that is not one of the
supported kinds (with the list of those), rather than approximate it.
"""

import numpy as np

from lmu.errors import ArgumentError, UnsupportedSpec
from lmu.models import DENSE_ACTIVATIONS, DenseStage, DropoutStage, LMUStage, ReshapeStage

from .layers import is_lmu_layer, keras_modules

__all__ = ["read_model", "SUPPORTED"]

SUPPORTED = ("InputLayer", "keras_lmu.LMU", "keras_lmu.LMUFeedforward", "RNN(keras_lmu.LMUCell)", "Dense", "Dropout",
             "Flatten", "Reshape")


def read_model(obj):
    """The stages of a Keras model: a ``keras.Model`` (Sequential or a functional chain) or a ``.keras`` path.

    Raises
    ------
    UnsupportedSpec
        For a layer of another kind (named with its type, with the list of supported kinds), or a Dense activation
        outside :data:`lmu.models.DENSE_ACTIVATIONS`.
    ArgumentError
        For something that is not a Keras model or ``.keras`` path, or a model that is not built.
    """
    keras, _ = keras_modules()
    from .importer import from_keras, load_if_path

    obj = load_if_path(obj, "lmu.convert_model")
    if not isinstance(obj, keras.Model):
        raise ArgumentError(f"lmu.convert_model takes a keras.Model or a .keras path (got {type(obj).__name__}); for "
                            "one LMU layer use lmu.from_keras or lmu.convert")
    stages = []
    for layer in obj.layers:
        kind = type(layer).__name__
        if kind == "InputLayer":
            continue
        if is_lmu_layer(layer):
            stages.append(LMUStage(*from_keras(layer)))
        elif isinstance(layer, keras.layers.Dense):
            activation = getattr(layer.activation, "__name__", str(layer.activation))
            if activation not in DENSE_ACTIVATIONS:
                raise UnsupportedSpec(f"layer {layer.name!r} (Dense) has activation {activation!r}; convert_model "
                                      f"supports {', '.join(DENSE_ACTIVATIONS)}")
            bias = np.asarray(layer.bias) if layer.use_bias else None
            stages.append(DenseStage(np.asarray(layer.kernel), bias, activation))
        elif isinstance(layer, keras.layers.Dropout):
            stages.append(DropoutStage(float(layer.rate)))
        elif isinstance(layer, keras.layers.Flatten):
            stages.append(ReshapeStage((-1,)))
        elif isinstance(layer, keras.layers.Reshape):
            stages.append(ReshapeStage(tuple(int(d) for d in layer.target_shape)))
        else:
            raise UnsupportedSpec(f"layer {layer.name!r} of type {type(layer).__module__}.{kind} cannot be converted; "
                                  f"convert_model supports {', '.join(SUPPORTED)}")
    if not any(isinstance(s, LMUStage) for s in stages):
        raise ArgumentError(f"model {obj.name!r} holds no keras-lmu layer; convert_model moves LMU models")
    return stages
