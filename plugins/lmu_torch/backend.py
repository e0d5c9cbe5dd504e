"""The ``torch`` entry point: what the registry loads. It imports torch only inside its methods."""

import sys

import lmu
from lmu.backend import Mode

__all__ = ["TorchBackend", "MODES"]

_MODES = (
    Mode("auto", summary="the fastest mode that applies to the spec and the sequence"),
    Mode("step", summary="the cell stepped over time"),
    Mode("fft", needs=("lti",), summary="the memory of every step at once, by FFT convolution"),
    Mode("raw", needs=("lti",), summary="the memory of every step at once, by direct convolution"),
    Mode("last", needs=("lti", "last_step"), summary="the memory of the last step only"),
)
MODES = tuple(m.name for m in _MODES)


class TorchBackend(lmu.Backend):
    """``lmu.build(spec, backend="torch", mode="auto", device=None)`` → :class:`lmu_torch.LMU`.

    Options: ``mode`` (one of :data:`MODES`: "auto", "step", "fft", "raw", "last"), ``device`` (where the module
    is put).

    Examples
    --------
    >>> import lmu, numpy as np
    >>> spec = lmu.LMUSpec(memory_d=1, order=8, theta=20, input_d=1, hidden=lmu.Hidden("rnn", 4))
    >>> module = lmu.build(spec, backend="torch", mode="fft")
    >>> type(module).__name__, lmu.run(module, np.ones((2, 30, 1))).shape
    ('LMU', (2, 4))
    """

    name = "torch"
    extra = "torch"
    requires = ("torch",)
    framework = "torch"
    modes = _MODES
    dtypes = ("float32", "float64", "float16", "bfloat16")

    def build(self, spec, weights, *, mode="auto", device=None):
        from .module import LMU

        device = None if device is None else check_device(device)
        model = LMU.from_spec(spec, weights, mode=mode)
        return model.to(device) if device is not None else model

    def get_weights(self, obj):
        return obj.get_weights()

    def set_weights(self, obj, weights):
        obj.set_weights(weights)

    def run(self, obj, x, state=None, return_state=False):
        import torch

        dev, dt = obj._probe.device, obj.compute_dtype
        with torch.no_grad():  # per thread; infer() leaves the module's training flag, device and dtype alone
            xt = torch.as_tensor(x, dtype=dt, device=dev)
            st = None if state is None else {k: torch.as_tensor(v, dtype=dt, device=dev) for k, v in state.items()}
            result = obj.infer(xt, st, return_state=return_state)
        from lmu.arrays import cast

        out_dtype = obj.lmu_spec.dtype

        def numpy(t):
            return cast(t.detach().cpu().float().numpy() if t.dtype == torch.bfloat16 else t.cpu().numpy(),
                        out_dtype)

        if return_state:
            out, new = result
            return numpy(out), {k: numpy(v) for k, v in new.items()}
        return numpy(result)

    def owns(self, obj):
        module = sys.modules.get("lmu_torch.module")  # nothing can be ours before that module was imported
        return module is not None and isinstance(obj, module.LMU)


def check_mode(spec, mode) -> None:
    """:func:`lmu.backend.check_mode` for this backend."""
    lmu.backend.check_mode(TorchBackend, spec, mode)


def check_device(device):
    """``torch.device(device)``, refusing (with :class:`lmu.ArgumentError`, naming the option) a name torch does not
    know or a device this machine does not have, before a module is put there."""
    import torch

    try:
        checked = torch.device(device)
        torch.empty(0, device=checked)
    except (RuntimeError, AssertionError, TypeError, ValueError) as err:  # torch's refusal of the user's value
        raise lmu.ArgumentError(f"torch backend option device must be a device torch has here, such as 'cpu'"
                                f"{' or cuda' if torch.cuda.is_available() else ''} (got {device!r}: {err})") from None
    return checked
