"""The ``torch`` entry point: what the registry loads. It imports torch only inside its methods."""

import sys

from lmu.registry import Backend, modes_that_apply

__all__ = ["TorchBackend", "MODES"]

MODES = ("auto", "step", "fft", "raw", "last")


class TorchBackend(Backend):
    """``lmu.build(spec, backend="torch", mode="auto", device=None)`` → :class:`lmu_torch.LMU`.

    Options: ``mode`` ("auto", "step", "fft", "raw", "last"), ``device`` (where the module is put).
    """

    name = "torch"
    extra = "torch"
    requires = ("torch",)
    framework = "torch"

    def check(self, spec):
        return []  # every spec the reference runs

    def conformance_options(self, spec):
        """Every mode that applies to the spec (``lmu check`` runs the kit in each)."""
        return modes_that_apply(spec, MODES, _check_mode)

    def build(self, spec, weights, mode="auto", device=None, **options):
        if options:
            raise TypeError(f"unknown option(s) for the torch backend: {', '.join(sorted(options))}; "
                            "it takes mode= and device=")
        _check_mode(spec, mode)
        from .module import LMU

        model = LMU(spec, weights, mode=mode)
        return model.to(device) if device is not None else model

    def get_weights(self, obj):
        return obj.get_weights()

    def set_weights(self, obj, weights):
        obj.set_weights(weights)

    def run(self, obj, x, state=None, return_state=False):
        import torch

        dev, dt = obj._probe.device, obj.compute_dtype
        was_training = obj.training
        obj.eval()
        try:
            with torch.no_grad():
                xt = torch.as_tensor(x, dtype=dt, device=dev)
                st = None if state is None else {k: torch.as_tensor(v, dtype=dt, device=dev) for k, v in state.items()}
                result = obj(xt, st, return_state=return_state)
        finally:
            obj.train(was_training)
        out_dtype = obj.lmu_spec.dtype
        if return_state:
            out, new = result
            return out.cpu().numpy().astype(out_dtype, copy=False), \
                {k: v.cpu().numpy().astype(out_dtype, copy=False) for k, v in new.items()}
        return result.cpu().numpy().astype(out_dtype, copy=False)

    def owns(self, obj):
        module = sys.modules.get("lmu_torch.module")  # nothing can be ours before that module was imported
        return module is not None and isinstance(obj, module.LMU)


def _check_mode(spec, mode):
    if mode not in MODES:
        raise ValueError(f"torch backend option mode must be one of {', '.join(MODES)} (got {mode!r})")
    if mode in ("fft", "raw", "last") and not spec.is_lti:
        why = "hidden_to_memory" if spec.hidden_to_memory else "memory_to_memory"
        raise ValueError(f"mode={mode!r} computes the memory for all steps at once, which needs an LTI spec; this "
                         f"spec has {why}=True, so its memory depends on itself step by step: use mode='step' "
                         "or 'auto'")
    if mode == "last" and (spec.return_sequences or (spec.hidden is not None and spec.hidden.kind != "dense")):
        raise ValueError("mode='last' computes only the final memory, so it needs return_sequences=False and a "
                         "hidden cell without recurrence (None or dense): use mode='fft', 'raw' or 'auto'")
