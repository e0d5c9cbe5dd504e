"""``lmu_torch.LMU``: the LMU as a ``torch.nn.Module``: its construction, parameters, system and mode choice.

Design rule: the module is an ordinary torch layer (native constructor, own parameters, state_dict, ``.to()``);
everything it computes is described by one spec, which follows the parameters' dtype, and every mode computes the
same thing (:mod:`lmu_torch.forward` runs them, :mod:`lmu_torch.portable` the exportable forms), so that every
mode passes the same conformance kit.
"""

import warnings

import numpy as np
import torch
from torch import nn

import lmu
from lmu import legendre
from lmu.spec import COMPUTE_DTYPES, SPEC_FIELDS as FIELDS, LMUSpec
from lmu.weights import LMUWeights, conform, weight_shapes

from . import compute, modes
from .cell import build_hidden, hidden_weights, set_hidden_weights
from .modes import RAW_MAX_KERNEL  # noqa: F401  (a read-only alias from its old home: lmu_torch.modes holds it)

__all__ = ["LMU", "native_spec"]

_MEMORY_NAMES = ("kernel", "bias", "recurrent_kernel", "theta")
# raw mode truncates H where its tail falls below this fraction of its peak: 1e-7 is far below float32's
# resolution; float64 needs a far longer tail to stay within the kit's 1e-9.
_RAW_TOL = {torch.float32: 1e-7, torch.float64: 1e-13}
_NO_TRUNCATION = 1 << 62
# spec fields that the native constructor takes under torch's names (or as its own arguments)
_NATIVE = ("input_d", "memory_d", "order", "theta", "hidden", "dtype")


class LMU(nn.Module):
    """The LMU as a ``torch.nn.Module``, constructed like torch's own recurrent layers.

    ``LMU(input_size, memory_size, order, theta, hidden_size=None, hidden="rnn", ...)`` makes a layer with its own
    freshly initialised parameters (Keras' default scheme, :meth:`reset_parameters`, seeded by
    ``torch.manual_seed``). ``memory_size`` is the spec's ``memory_d``, ``hidden_size`` the hidden cell's units
    (None: no hidden cell, the layer outputs the memory), ``hidden`` its kind ("rnn", "lstm", "dense") or a
    :class:`lmu.Hidden`. Every other field of :class:`lmu.LMUSpec` is a keyword (``return_sequences``,
    ``input_to_hidden``, ``trainable_theta``, ``discretizer``, ...); ``bias`` is ``Hidden.use_bias``.
    :meth:`from_spec` builds one from a spec and canonical weights, as ``lmu.build(spec, backend="torch")`` does.

    ``forward(x, state=None, return_state=False, lengths=None)`` takes ``x (batch, T, input_size)`` (``(T, batch,
    input_size)`` with ``batch_first=False``) and returns ``(batch, T, out)`` with ``return_sequences`` else
    ``(batch, out)``; with ``return_state`` also the canonical state dict (``memory``, ``hidden``, ``cell``), which a
    next call takes as ``state`` to continue the sequence. ``lengths`` (batch,) marks right-padded sequences: the
    output (and state) of each is taken at its own last valid step, and with ``return_sequences`` the steps past it
    are zero. Outputs past a step never depend on later inputs, in every mode.

    ``.double()`` computes in float64; ``.half()`` and ``.to(torch.bfloat16)`` keep the parameters in 16 bits and
    compute the memory in float32. :func:`lmu.spec_of` follows the parameters' dtype.

    Parameters follow the canonical names (``kernel``, ``bias``, ``recurrent_kernel``, ``theta``) and ``hidden``
    is torch's own ``nn.Linear``/``nn.RNN``/``nn.LSTM`` (with one bias) where it computes the spec's cell exactly.

    Examples
    --------
    >>> import torch, lmu_torch
    >>> _ = torch.manual_seed(0)
    >>> layer = lmu_torch.LMU(input_size=1, memory_size=1, order=16, theta=50, hidden_size=8)
    >>> layer(torch.zeros(4, 100, 1)).shape
    torch.Size([4, 8])
    >>> net = torch.nn.Sequential(layer, torch.nn.Linear(8, 10))
    >>> net(torch.zeros(2, 30, 1)).shape
    torch.Size([2, 10])
    """

    def __init__(self, input_size=None, memory_size=None, order=None, theta=None, hidden_size=None,
                 hidden="rnn", *, batch_first: bool = True, bias: bool = True, dtype=None, device=None,
                 mode: str = "auto", **fields):
        if isinstance(input_size, LMUSpec):  # the 0.4 form LMU(spec, weights, mode=...)
            warnings.warn("lmu_torch.LMU(spec, weights) is deprecated and will be removed in lmu 0.6: use "
                          "lmu_torch.LMU.from_spec(spec, weights) or lmu.build(spec, backend='torch')",
                          DeprecationWarning, stacklevel=2)
            weights = fields.pop("weights", memory_size)
            if fields:
                raise lmu.ArgumentError(f"lmu_torch.LMU(spec, ...) takes weights and mode only (got "
                                        f"{', '.join(sorted(fields))})")
            super().__init__()
            self._setup(input_size, weights, mode, batch_first)
            return
        spec = native_spec(input_size, memory_size, order, theta, hidden_size, hidden, bias, dtype, fields)
        super().__init__()
        self._setup(spec, None, mode, batch_first)
        if device is not None:
            from .backend import check_device

            self.to(check_device(device))

    @classmethod
    def from_spec(cls, spec: LMUSpec, weights=None, *, mode: str = "auto", batch_first: bool = True) -> "LMU":
        """The layer of ``spec`` with canonical ``weights`` (None: fresh ones, as :meth:`reset_parameters`).

        Examples
        --------
        >>> import lmu, lmu_torch
        >>> spec = lmu.LMUSpec(memory_d=1, order=8, theta=20, input_d=1, hidden=lmu.Hidden("rnn", 4))
        >>> lmu_torch.LMU.from_spec(spec, lmu.init_weights(spec), mode="raw").mode
        'raw'
        """
        if not isinstance(spec, LMUSpec):
            raise lmu.ArgumentError(f"LMU.from_spec needs an lmu.LMUSpec (got {type(spec).__name__})")
        model = cls.__new__(cls)
        nn.Module.__init__(model)
        model._setup(spec, weights, mode, batch_first)
        return model

    def _setup(self, spec, weights, mode, batch_first):
        from .backend import TorchBackend, check_mode

        check_mode(spec, mode)
        problems = TorchBackend().check(spec)
        if problems:
            raise lmu.UnsupportedSpec("; ".join(problems))
        if not isinstance(batch_first, bool):
            raise lmu.ArgumentError(f"batch_first must be True or False (got {batch_first!r})")
        self._spec = spec
        self._specs = {spec.dtype: spec}
        self.lmu_backend = "torch"
        self.mode = mode
        self.batch_first = batch_first
        dtype = getattr(torch, spec.dtype)
        A, B = legendre.continuous(spec.order)
        self.register_buffer("_A", torch.as_tensor(A), persistent=False)
        self.register_buffer("_B", torch.as_tensor(B), persistent=False)
        self.register_buffer("_probe", torch.zeros((), dtype=dtype), persistent=False)  # follows .to()/.double()
        shapes = weight_shapes(spec)
        for name in _MEMORY_NAMES:
            if name in shapes:
                setattr(self, name, nn.Parameter(torch.zeros(shapes[name], dtype=dtype)))
            else:
                self.register_parameter(name, None)
        self.hidden = build_hidden(spec.hidden, spec.z_d, dtype) if spec.hidden is not None else None
        # the hidden cell's parameters, for the portable forms: dynamo refuses to touch an nn.RNN module
        self._cell_parameters = None if self.hidden is None else dict(self.hidden.named_parameters())
        self._cache = {}
        if weights is None:
            self.reset_parameters()
        else:
            self.set_weights(weights)

    def _warm(self):
        """Compute what a captured graph reads from the cache (fixed θ): the truncation and ``H`` up to it, so
        that ``torch.compile`` finds them there instead of calling NumPy (every eager forward does this; it costs
        the first one only)."""
        if self.theta is None and self.lmu_spec.is_lti:
            length = self.truncation()
            if length < _NO_TRUNCATION:
                self.impulse(length)

    def reset_parameters(self) -> None:
        """Fresh parameters in Keras' default scheme (:func:`lmu.init_weights`: Glorot-uniform kernels, orthogonal
        recurrent kernels, zero biases but an LSTM's forget gate, θ from the spec), seeded from torch's random
        generator, so ``torch.manual_seed`` makes them repeatable."""
        seed = int(torch.randint(0, 2**31 - 1, ()).item())
        self.set_weights(lmu.init_weights(self.lmu_spec, seed=seed))

    @property
    def lmu_spec(self) -> LMUSpec:
        """The spec this module computes: the one it was built from, with the dtype of its parameters now."""
        name = str(self._probe.dtype).removeprefix("torch.")
        spec = self._specs.get(name)
        if spec is None:
            spec = self._specs[name] = self._spec.replace(dtype=name)
        return spec

    @property
    def dtype(self) -> torch.dtype:
        """The parameters' dtype."""
        return self._probe.dtype

    @property
    def hidden_dtype(self) -> torch.dtype:
        """The dtype the hidden cell runs in (its parameters')."""
        return self._probe.dtype

    # ------------------------------------------------------------------------------------------------ weights
    def get_weights(self) -> LMUWeights:
        """The canonical weights (NumPy, Keras orientation, the two torch biases summed)."""
        arrays = {n: _numpy(getattr(self, n)) for n in _MEMORY_NAMES if getattr(self, n) is not None}
        if self.theta is not None:
            arrays["theta"] = _numpy(self.effective_theta())
        if self.hidden is not None:
            arrays.update(hidden_weights(self.lmu_spec.hidden, self.hidden))
        return LMUWeights(self.lmu_spec, arrays)

    def set_weights(self, weights) -> None:
        """Load canonical weights (checked against the spec)."""
        weights = conform(self.lmu_spec, weights)
        with torch.no_grad():
            for name in _MEMORY_NAMES:
                param = getattr(self, name)
                if param is not None:
                    param.copy_(torch.as_tensor(np.array(weights[name]), dtype=param.dtype))
        if self.hidden is not None:
            set_hidden_weights(self.lmu_spec.hidden, self.hidden, weights)
        if self.theta is not None:  # what the cache holds depends on θ only
            self._cache.clear()

    def _apply(self, fn, *args, **kwargs):  # .to(), .cuda(), .double(): cached tensors must follow
        self._cache.clear()
        return super()._apply(fn, *args, **kwargs)

    def extra_repr(self) -> str:
        s = self.lmu_spec
        return (f"memory_d={s.memory_d}, order={s.order}, theta={s.theta:g}, input_d={s.input_d}, "
                f"mode={self.mode!r}, dtype={s.dtype}")

    # ------------------------------------------------------------------------------------------------ the system
    @property
    def compute_dtype(self):
        """The dtype the memory is computed in: float64 for a float64 module, else float32 (also for 16-bit
        parameters and under autocast)."""
        return torch.float64 if self._probe.dtype == torch.float64 else torch.float32

    def _cached(self, key, make):
        key = key + (self.compute_dtype, self._probe.device)
        value = self._cache.get(key)  # one lookup: another thread may clear the cache meanwhile
        if value is None:
            if torch.compiler.is_exporting() or torch.jit.is_tracing():  # a constant of the captured graph only
                return make()
            value = torch.compiler.disable(make)()  # NumPy work: outside any compiled graph
            if len(self._cache) > 32:
                self._cache.clear()
            self._cache[key] = value
        return value

    def _tensor(self, array):
        return torch.as_tensor(np.asarray(array), dtype=self.compute_dtype, device=self._probe.device)

    def _numpy_system(self):
        return legendre.discretize(self.lmu_spec.order, self.lmu_spec.theta, self.lmu_spec.discretizer)

    def theta_range(self) -> tuple[float, float]:
        """The θ this module computes with: a trainable θ is clamped to this range, where its spec stays
        computable (:func:`lmu.legendre.theta_range`: from 2⁻¹⁰ steps for zoh, or just above the stability limit
        for euler, up to where the dtype's round-off would outlast the memory). An optimizer with a large step
        may push the parameter outside; the memory then uses the edge."""
        spec = self.lmu_spec
        return legendre.theta_range(spec.order, spec.discretizer, COMPUTE_DTYPES[spec.dtype], spec.theta)

    def effective_theta(self):
        """θ as the memory uses it: the trainable parameter clamped to :meth:`theta_range` (positive by
        construction), or None without ``trainable_theta``."""
        if self.theta is None:
            return None
        low, high = self._cached(("theta_range",), lambda: tuple(
            torch.tensor(edge, dtype=self.theta.dtype, device=self.theta.device) for edge in self.theta_range()))
        return torch.minimum(torch.maximum(self.theta, low), high)

    def system(self):
        """``(Ā, B̄)`` as tensors; differentiable in θ when θ is trainable."""
        if self.theta is not None:
            theta = self.effective_theta().double()
            A_bar, B_bar = legendre.discretize_arrays(self._A.double(), self._B.double(), theta,
                                                      self.lmu_spec.discretizer, compute.TORCH)
            return A_bar.to(self.compute_dtype), B_bar.to(self.compute_dtype)
        return self._cached(("system",), lambda: tuple(self._tensor(a) for a in self._numpy_system()))

    def impulse(self, length: int):
        """``H (length, order)``: cached per (length, dtype, device) when θ is fixed, else a function of θ."""
        if self.theta is not None:
            H = compute.impulse_response(self.effective_theta(), self._A.double(), self._B.double(),
                                         self.lmu_spec.discretizer, length)
            return H.to(self.compute_dtype)
        return self._cached(("H", length), lambda: self._tensor(legendre.impulse_response(
            *self._numpy_system(), length)))

    def truncation(self) -> int:
        """Steps after which ``H`` stays below 1e-7 of its peak (1e-13 in float64), for ``raw``.

        With trainable θ the length is measured once at a reference θ and scaled with θ (H is a function of t/θ),
        with a 10% margin; it is measured again when θ leaves [θ_ref/2, 2 θ_ref]. Reading θ is a host sync, so
        ``raw`` with trainable θ convolves with the whole of H up to :data:`lmu_torch.modes.RAW_MAX_KERNEL` steps
        instead (:meth:`raw_length`).
        """
        spec = self.lmu_spec
        tol = _RAW_TOL.get(self.compute_dtype, 1e-7)

        def measure(theta):
            try:
                return legendre.truncation_length(*legendre.discretize(spec.order, theta, spec.discretizer), tol=tol)
            except lmu.ArgumentError:  # no decay within 10⁷ steps (θ of millions): convolve with all of H
                return _NO_TRUNCATION

        if self.theta is None:
            return self._cached(("trunc",), lambda: measure(spec.theta))
        theta = float(self.effective_theta().detach())
        ref = self._cache.get(("trunc_ref", self.compute_dtype))
        if ref is None or not 0.5 * ref[0] <= theta <= 2.0 * ref[0]:
            ref = self._cache[("trunc_ref", self.compute_dtype)] = (theta, measure(theta))
        return int(np.ceil(ref[1] * max(1.0, theta / ref[0]) * 1.1))

    def raw_length(self, steps: int) -> int:
        """The length of ``H`` that ``raw`` convolves with for ``steps`` steps: all of it up to the truncation, or
        with trainable θ all ``steps`` (no host sync) while that is at most
        :data:`lmu_torch.modes.RAW_MAX_KERNEL`."""
        if self.theta is not None and steps <= modes.RAW_MAX_KERNEL:
            return steps
        return min(self.truncation(), steps)

    # ------------------------------------------------------------------------------------------------ forward
    def pick_mode(self, steps: int, lengths=None, *, batch: int | None = None) -> str:
        """The mode ``auto`` runs for a batch of ``batch`` sequences of ``steps`` on the module's device (explicit
        modes are returned as they are).

        ``step`` for one step or a spec that is not LTI; ``last`` when only the last step's memory is needed;
        else, by :func:`lmu_torch.modes.pick`, a pure function of the device type and the shapes: on a CPU the
        fastest of ``step``, ``raw`` and ``fft`` at the nearest shape measured (``lmu_torch.modes.CPU_TABLE``;
        ``batch`` None is taken as the table's 16), elsewhere ``raw`` while the kernel it convolves with
        (:meth:`raw_length`) is at most :data:`lmu_torch.modes.RAW_MAX_KERNEL` steps, and ``fft`` beyond."""
        if lengths is not None:
            warnings.warn("LMU.pick_mode(steps, lengths): lengths never changed the choice and is deprecated; it "
                          "will be removed in lmu 0.6", DeprecationWarning, stacklevel=2)
        spec = self.lmu_spec
        if self.mode != "auto":
            return self.mode
        if not spec.is_lti or steps == 1:
            return "step"
        if not spec.return_sequences and (spec.hidden is None or spec.hidden.kind == "dense"):
            return "last"
        return modes.pick(self._probe.device.type, spec, steps, self.raw_length(steps), batch)

    def forward(self, x, state=None, return_state: bool = False, lengths=None):
        """Run a batch ``x (batch, T, input_d)`` (``(T, batch, input_d)`` with ``batch_first=False``); see the class
        docstring for ``state``, ``return_state`` and ``lengths``. Returns the output, or ``(output, state)`` with
        ``return_state``."""
        return self._forward(x, state, return_state, lengths, self.training)

    def infer(self, x, state=None, return_state: bool = False):
        """:meth:`forward` as in evaluation mode (no dropout), whatever ``self.training`` is, without changing the
        module: what :func:`lmu.run` calls, so that runs in several threads leave the module as they found it."""
        return self._forward(x, state, return_state, None, False)

    def _forward(self, x, state, return_state, lengths, training):
        from . import forward, portable
        from .checks import check_lengths, check_state, check_x

        spec = self.lmu_spec
        if not self.batch_first and isinstance(x, torch.Tensor) and x.dim() == 3:
            x = x.transpose(0, 1)
        x = check_x(self, x)
        batch, steps = x.shape[:2]
        st, given = check_state(self, state, batch)
        lengths = check_lengths(lengths, batch, steps)
        e_mask = r_mask = None
        if training and spec.dropout > 0:
            e_mask = self._dropout_mask((batch, spec.enc_d), spec.dropout)
        if training and spec.recurrent_dropout > 0:
            r_mask = self._dropout_mask((batch, spec.memory_size), spec.recurrent_dropout)
        if portable.applies(self, x):
            out, new = portable.forward(self, x, st, given, lengths, e_mask, r_mask)
        else:
            self._warm()
            mode = self.pick_mode(steps, batch=batch)
            if mode == "step":
                out, new = forward.forward_step(self, x, st, lengths, e_mask, r_mask)
            else:
                out, new = forward.forward_parallel(self, x, st if given else None, mode, lengths, e_mask)
        if not spec.return_sequences and out.dim() == 3:
            out = out[:, -1] if lengths is None else out[torch.arange(batch, device=out.device), lengths - 1]
        if self.dtype in (torch.float16, torch.bfloat16):  # a memory-only output is float32: the module's dtype
            out = out.to(self.dtype)
        if spec.return_sequences and not self.batch_first:
            out = out.transpose(0, 1)
        return (out, new) if return_state else out

    def _dropout_mask(self, shape, rate):
        keep = torch.full(shape, 1.0 - rate, dtype=self.compute_dtype, device=self._probe.device)
        return torch.bernoulli(keep) / (1.0 - rate)

    def _zeros(self, batch):
        units = self.lmu_spec.hidden.units if self.lmu_spec.hidden is not None else 0
        return torch.zeros(batch, units, dtype=self.compute_dtype, device=self._probe.device)


def _numpy(tensor) -> np.ndarray:
    """A parameter as a NumPy array (bfloat16, which NumPy lacks, by way of float32)."""
    tensor = tensor.detach().cpu()
    return (tensor.float() if tensor.dtype == torch.bfloat16 else tensor).numpy()


def native_spec(input_size, memory_size, order, theta, hidden_size, hidden, bias, dtype, fields) -> LMUSpec:
    """The spec of ``LMU(input_size, memory_size, order, theta, hidden_size, hidden, bias=, dtype=, **fields)``."""
    missing = [n for n, v in (("input_size", input_size), ("memory_size", memory_size), ("order", order),
                              ("theta", theta)) if v is None]
    if missing:
        raise lmu.ArgumentError(f"lmu_torch.LMU needs {', '.join(missing)}: LMU(input_size, memory_size, order, "
                                f"theta, hidden_size=None, hidden='rnn', ...), or LMU.from_spec(spec)")
    unknown = sorted(set(fields) - {f.name for f in FIELDS if f.name not in _NATIVE})
    if unknown:
        others = ", ".join(f.name for f in FIELDS if f.name not in _NATIVE)
        raise lmu.ArgumentError(f"lmu_torch.LMU got unknown keyword(s) {', '.join(unknown)}: it takes input_size, "
                                f"memory_size, order, theta, hidden_size, hidden, batch_first, bias, dtype, device, "
                                f"mode and the LMUSpec fields {others}")
    if isinstance(hidden, lmu.Hidden):
        cell = hidden
        if hidden_size is not None and hidden_size != cell.units:
            raise lmu.ArgumentError(f"hidden_size={hidden_size} differs from hidden.units={cell.units}")
    elif hidden_size is None:
        cell = None
    else:
        cell = lmu.Hidden(hidden, hidden_size, use_bias=bias)
    if dtype is not None and not isinstance(dtype, str):
        dtype = str(dtype).removeprefix("torch.")
    return LMUSpec(memory_d=memory_size, order=order, theta=theta, input_d=input_size, hidden=cell,
                   **({"dtype": dtype} if dtype is not None else {}), **fields)
