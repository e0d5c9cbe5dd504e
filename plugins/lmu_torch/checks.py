"""Validation of what ``lmu_torch.LMU.forward`` is given: one clear error each, nothing that syncs a GPU.

Design rule: shapes, dtypes and keys are checked (metadata only); values never are, so NaN passes through like
arithmetic and no check waits for the device. ``lengths`` is the exception: it lives on the CPU (as
``pack_padded_sequence`` wants it), where its range is checked for free.
"""

import torch

from lmu.errors import ArgumentError

__all__ = ["check_x", "check_state", "check_lengths"]

_HALF = (torch.float16, torch.bfloat16)


def check_x(model, x):
    spec = model.lmu_spec
    if not isinstance(x, torch.Tensor):
        raise ArgumentError(f"x must be a torch.Tensor of shape (batch, T, {spec.input_d}) (got {type(x).__name__}); "
                            "lmu.run(model, array) takes NumPy input")
    if x.dim() != 3:
        hint = "; add a batch axis with x.unsqueeze(0)" if x.dim() == 2 else ""
        raise ArgumentError(f"x must have shape (batch, T, {spec.input_d}), 3 axes (got {tuple(x.shape)}{hint})")
    if x.shape[2] != spec.input_d:
        raise ArgumentError(f"x has {x.shape[2]} features but LMUSpec.input_d is {spec.input_d} "
                            f"(got shape {tuple(x.shape)})")
    if x.shape[0] < 1 or x.shape[1] < 1:
        raise ArgumentError(f"x needs at least one sequence and one time step (got shape {tuple(x.shape)})")
    if not x.is_floating_point():
        raise ArgumentError(f"x has dtype {x.dtype}; the LMU takes floating input ({model.dtype} for this "
                            f"model): use x.to({model.dtype})")
    autocast = torch.is_autocast_enabled(x.device.type) if hasattr(torch, "is_autocast_enabled") else False
    if x.dtype not in (model.dtype, model.compute_dtype) and not (x.dtype in _HALF and autocast):
        raise ArgumentError(f"x has dtype {x.dtype} but the LMU's parameters are {model.dtype}: use "
                            f"x.to({model.dtype}), or convert the module with model.to({x.dtype})")
    if x.device != model._probe.device:
        raise ArgumentError(f"x is on {x.device} but the LMU is on {model._probe.device}: use "
                            f"x.to('{model._probe.device}') or model.to('{x.device}')")
    return x


def check_state(model, state, batch):
    """The state as tensors of the model's dtype and device (zeros when None), and whether one was given."""
    spec = model.lmu_spec
    shapes = spec.state_shapes(batch)
    dev, dt = model._probe.device, model.compute_dtype
    if state is None:
        return {k: torch.zeros(s, dtype=dt, device=dev) for k, s in shapes.items()}, False
    if not isinstance(state, dict):
        raise ArgumentError(f"state must be a dict with keys {sorted(shapes)} (got {type(state).__name__})")
    if set(state) != set(shapes):
        raise ArgumentError(f"state must have exactly the keys {sorted(shapes)} (got {sorted(map(str, state))})")
    out = {}
    for key, shape in shapes.items():
        value = state[key]
        if not isinstance(value, torch.Tensor):
            value = torch.as_tensor(value)
        if tuple(value.shape) != shape:
            raise ArgumentError(f"state['{key}'] must have shape {shape} (got {tuple(value.shape)})")
        if not value.is_floating_point():
            raise ArgumentError(f"state['{key}'] must be floating (got {value.dtype})")
        out[key] = value.to(device=dev, dtype=dt)
    return out, True


def check_lengths(lengths, batch, steps):
    if lengths is None:
        return None
    if not isinstance(lengths, torch.Tensor):
        lengths = torch.as_tensor(lengths)
    if lengths.dim() != 1 or lengths.shape[0] != batch:
        raise ArgumentError(f"lengths must have shape ({batch},), one per sequence (got {tuple(lengths.shape)})")
    if lengths.dtype.is_floating_point or lengths.dtype == torch.bool or lengths.is_complex():
        raise ArgumentError(f"lengths must hold integers (got {lengths.dtype})")
    lengths = lengths.cpu().long()
    if torch.jit.is_tracing() or torch.compiler.is_compiling():  # a captured graph: no values to read
        return lengths
    low, high = int(lengths.min()), int(lengths.max())
    if low < 1 or high > steps:
        raise ArgumentError(f"lengths must lie in [1, T={steps}] (got values from {low} to {high})")
    return lengths
