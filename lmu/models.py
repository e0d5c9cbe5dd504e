"""Whole models, not only their LMU layer: ``lmu.convert_model`` moves a Keras model made of an LMU and the usual
layers around it (Dense, Dropout, Flatten, Reshape) to another backend.

Design rule: a model is described once, neutrally, as a list of stages (:class:`LMUStage`, :class:`DenseStage`,
:class:`DropoutStage`, :class:`ReshapeStage`) read by the source framework's plugin (``lmu_keras.read_model``) and
built by the target's (``lmu_torch.build_model``; the NumPy target, :class:`NumpyModel`, lives here). These are
plugin functions found through the registry, not contract methods: a backend without them simply cannot be a source
or target of whole models.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .errors import ArgumentError, BackendUnavailable
from .registry import _plugin_function, build, run
from .spec import LMUSpec
from .weights import LMUWeights

__all__ = ["LMUStage", "DenseStage", "DropoutStage", "ReshapeStage", "NumpyModel", "convert_model",
           "DENSE_ACTIVATIONS"]

#: The activations a Dense stage may have.
DENSE_ACTIVATIONS = ("linear", "relu", "tanh", "sigmoid", "softmax")


@dataclasses.dataclass(frozen=True)
class LMUStage:
    """An LMU layer: its spec and canonical weights."""

    spec: LMUSpec
    weights: LMUWeights


@dataclasses.dataclass(frozen=True)
class DenseStage:
    """``act(x W + b)`` on the last axis; ``kernel (in, out)`` (Keras orientation), ``bias (out,)`` or None."""

    kernel: np.ndarray
    bias: np.ndarray | None
    activation: str = "linear"


@dataclasses.dataclass(frozen=True)
class DropoutStage:
    """Dropout at ``rate`` while training; the identity at inference."""

    rate: float


@dataclasses.dataclass(frozen=True)
class ReshapeStage:
    """Every sample reshaped to ``shape`` (``(-1,)`` flattens it)."""

    shape: tuple[int, ...]


def _activate(v: np.ndarray, name: str) -> np.ndarray:
    if name == "relu":
        return np.maximum(v, 0)
    if name == "tanh":
        return np.tanh(v)
    if name == "sigmoid":
        import scipy.special

        return scipy.special.expit(v)
    if name == "softmax":
        e = np.exp(v - v.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    return v


class NumpyModel:
    """A whole model on the NumPy reference: ``model(x)`` runs its stages on a NumPy batch (float64 inside).

    Examples
    --------
    >>> import lmu, numpy as np
    >>> spec = lmu.LMUSpec(memory_d=1, order=4, theta=8, input_d=1, hidden=lmu.Hidden("rnn", 3))
    >>> model = NumpyModel([LMUStage(spec, lmu.init_weights(spec)), DenseStage(np.ones((3, 2)), None, "softmax")])
    >>> model(np.zeros((5, 10, 1))).shape
    (5, 2)
    """

    def __init__(self, stages):
        self.stages = list(stages)
        self._lmus = {i: build(s.spec.replace(dtype="float64"), backend="numpy", weights=s.weights.astype("float64"))
                      for i, s in enumerate(self.stages) if isinstance(s, LMUStage)}

    def __call__(self, x) -> np.ndarray:
        out = np.asarray(x, dtype=np.float64)
        for i, stage in enumerate(self.stages):
            if isinstance(stage, LMUStage):
                out = run(self._lmus[i], out)
            elif isinstance(stage, DenseStage):
                out = out @ stage.kernel + (stage.bias if stage.bias is not None else 0)
                out = _activate(out, stage.activation)
            elif isinstance(stage, ReshapeStage):
                out = out.reshape((out.shape[0],) + tuple(stage.shape))
        return out

    def __repr__(self) -> str:
        return f"NumpyModel({', '.join(type(s).__name__ for s in self.stages)})"


def convert_model(model, backend: str = "torch", **options):
    """A whole Keras model (object or ``.keras`` path) as a native model of ``backend``.

    The model must be a chain of supported layers: ``Input``, keras-lmu's ``LMU``, ``LMUFeedforward`` or
    ``RNN(LMUCell)``, ``Dense`` (linear, relu, tanh, sigmoid or softmax), ``Dropout``, ``Flatten`` and ``Reshape``;
    any other layer is refused by name and type. ``backend="torch"`` gives an ``nn.Sequential`` (``options`` go to
    the LMU, e.g. ``mode``), ``"numpy"`` a :class:`NumpyModel`.

    Examples
    --------
    >>> import lmu
    >>> lmu.convert_model("model.keras", backend="torch")  # doctest: +SKIP
    """
    reader = _plugin_function("keras", "read_model")
    stages = reader(model)
    if backend == "numpy":
        if options:
            raise ArgumentError(f"convert_model(..., backend='numpy') takes no options (got {sorted(options)})")
        return NumpyModel(stages)
    try:
        builder = _plugin_function(backend, "build_model")
    except BackendUnavailable as err:
        if "has no build_model" not in str(err):
            raise
        raise BackendUnavailable(f"convert_model builds whole models for 'torch' and 'numpy'; the {backend} "
                                 f"backend has no build_model() (use lmu.convert for its LMU layer)") from None
    return builder(stages, **options)
