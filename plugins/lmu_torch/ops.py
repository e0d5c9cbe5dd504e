"""The array primitives of :class:`lmu.legendre.NumpyOps` for torch tensors.

Design rule: the formulas stay in ``lmu.legendre``; this module only says how to make a zero, an identity, a range,
a matrix exponential and a solve on the device and in the dtype of a given tensor, so that the same formulas run
differentiably and on a GPU.
"""

import torch

__all__ = ["TorchOps", "TORCH"]


class TorchOps:
    def asarray(self, x, like=None):
        if isinstance(x, torch.Tensor):
            return x
        return torch.as_tensor(x, dtype=like.dtype if like is not None else torch.float64,
                               device=like.device if like is not None else None)

    def zeros(self, shape, like):
        return torch.zeros(shape, dtype=like.dtype, device=like.device)

    def eye(self, n, like):
        return torch.eye(n, dtype=like.dtype, device=like.device)

    def arange(self, n, like):
        return torch.arange(n, dtype=like.dtype, device=like.device)

    def expm(self, m):
        return torch.linalg.matrix_exp(m)

    def solve(self, a, b):
        return torch.linalg.solve(a, b)


TORCH = TorchOps()
