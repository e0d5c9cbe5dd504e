"""``lmu_torch.build_model``: the neutral stages of :mod:`lmu.models` as one ``torch.nn.Sequential``.

Design rule: every stage becomes torch's own module (``nn.Linear``, ``nn.Dropout``, ``nn.Flatten``) or
:class:`Reshape` or an :class:`lmu_torch.LMU`, with the weights copied in torch's orientation, so the result is
an ordinary model a PyTorch user trains and saves as any other.
"""

from collections import OrderedDict

import torch
from torch import nn

from lmu.models import DenseStage, DropoutStage, LMUStage, ReshapeStage

from .module import LMU

__all__ = ["build_model", "Reshape"]


class Reshape(nn.Module):
    """Keras' ``Reshape``: every sample to ``shape`` (the batch axis kept)."""

    def __init__(self, shape):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x):
        return x.reshape(x.shape[0], *self.shape)

    def extra_repr(self) -> str:
        return f"shape={self.shape}"

_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "softmax": lambda: nn.Softmax(dim=-1)}


def build_model(stages, mode: str = "auto") -> nn.Sequential:
    """An ``nn.Sequential`` computing ``stages`` (``mode`` for each LMU)."""
    layers: OrderedDict = OrderedDict()
    for i, stage in enumerate(stages):
        if isinstance(stage, LMUStage):
            layers[f"lmu{i}"] = LMU.from_spec(stage.spec, stage.weights, mode=mode)
        elif isinstance(stage, DenseStage):
            linear = nn.Linear(*stage.kernel.shape, bias=stage.bias is not None)
            with torch.no_grad():
                linear.weight.copy_(torch.as_tensor(stage.kernel.T))
                if stage.bias is not None:
                    linear.bias.copy_(torch.as_tensor(stage.bias))
            layers[f"dense{i}"] = linear
            if stage.activation in _ACTIVATIONS:
                layers[f"{stage.activation}{i}"] = _ACTIVATIONS[stage.activation]()
        elif isinstance(stage, DropoutStage):
            layers[f"dropout{i}"] = nn.Dropout(stage.rate)
        elif isinstance(stage, ReshapeStage):
            layers[f"reshape{i}"] = nn.Flatten(1) if stage.shape == (-1,) else Reshape(stage.shape)
    return nn.Sequential(layers)
