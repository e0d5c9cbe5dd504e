"""The LMU as a ``nengo.Network``: every part of the step is a nengo object you can connect to and probe.

Design rule: the network is built from the spec and the canonical weights alone, and it records which
connection (or ensemble) holds which piece of which canonical weight, so that weights can be read back from
the network or from any simulator built from it (where trained parameters live). One simulator step is one LMU
step. Nengo delays a connection with ``synapse=0`` by exactly one step and passes ``synapse=None`` within the step:
every term of the design's step (docs/design.rst) that uses the previous step's value (``m_{t-1}``, ``o_{t-1}``,
``h_{t-1}``, ``c_{t-1}``) is a ``synapse=0`` connection and everything else ``synapse=None``, which makes the exact
mode equal the reference to rounding. Importing this module imports nengo: only the backend's methods import it.
"""

from __future__ import annotations

import dataclasses

import nengo
import numpy as np

from lmu import legendre
from lmu.activations import ACTIVATIONS, mapped
from lmu.spec import LMUSpec
from lmu.weights import LMUWeights

from .memory import NeuronMemory

__all__ = ["LMUNetwork", "Piece"]

#: lmu's activations that nengo neurons compute exactly (rate = activation of the input current); "linear" is a
#: node.
NEURON_ACTIVATIONS = mapped({
    "relu": lambda: nengo.RectifiedLinear(),
    "tanh": lambda: nengo.Tanh(tau_ref=1.0),
    "sigmoid": lambda: nengo.Sigmoid(tau_ref=1.0),
}, "nengo neuron", partial=True)


@dataclasses.dataclass(frozen=True)
class Piece:
    """Where a block of rows of a canonical weight lives: ``canonical[name][rows] = transform.T / scale``
    (``kind="transform"``), ``canonical[name] = transform[:, 0] / scale`` (``"bias"``, a connection from a
    constant-one node) or ``canonical[name] = ens.bias / scale`` (``"neuron_bias"``)."""

    name: str
    obj: object
    rows: slice | None = None
    kind: str = "transform"
    scale: float = 1.0


class LMUNetwork(nengo.Network):
    """An LMU as a nengo network, built by ``lmu.build(spec, backend="nengo", ...)``.

    Handles to connect and probe: ``input`` (size ``input_d``), ``memory`` (size ``memory_d·order``; in neurons
    mode the decoded memory), ``hidden`` (the hidden cell's output, None without a hidden) and ``output``
    (size ``spec.output_size``; every step, whatever ``return_sequences`` says). One simulator step is one LMU
    step, so θ in seconds is ``θ·dt``.

    Parameters
    ----------
    spec : LMUSpec
    weights : LMUWeights
    dt : float
        The simulator step the network is meant for (seconds); used by neurons mode to map θ to seconds.
    neurons : int or None
        None: exact mode (the memory is a node, the system matrices are connection transforms). An int: neurons
        mode, the memory represented by ensembles of that many neurons per memory dimension.
    neuron_type, scale_firing_rates, radius, tau, readout_synapse, max_rates, intercepts
        Neurons mode only; see :class:`lmu_nengo.memory.NeuronMemory`.
    label, seed
        As for any ``nengo.Network``.

    Examples
    --------
    >>> import lmu, nengo, numpy as np
    >>> spec = lmu.LMUSpec(memory_d=1, order=6, theta=50, input_d=1, hidden=lmu.Hidden("rnn", 4))
    >>> net = lmu.build(spec, backend="nengo")
    >>> with net:
    ...     stim = nengo.Node(lambda t: np.sin(20 * t))
    ...     _ = nengo.Connection(stim, net.input, synapse=None)
    ...     probe = nengo.Probe(net.output)
    >>> with nengo.Simulator(net, progress_bar=False) as sim:
    ...     sim.run_steps(100)
    >>> sim.data[probe].shape
    (100, 4)
    """

    def __init__(self, spec: LMUSpec, weights: LMUWeights, *, dt: float = 0.001, neurons: int | None = None,
                 backend: str = "nengo", label: str | None = None, seed: int | None = None, _state_input=False,
                 **neuron_options):
        super().__init__(label=label or "LMU", seed=seed)
        self.lmu_spec = spec
        self.lmu_backend = backend
        self.dt = float(dt)
        self.neurons = neurons
        self.lmu_options = dict(dt=dt, neurons=neurons, **neuron_options)
        self.pieces: list[Piece] = []
        self._system: list[tuple[object, str]] = []  # (connection, "A" or "B") for the Ā, B̄ transforms
        # (state key, slice of that state or None, post, transform) of each synapse=0 term
        self._delayed: list[tuple] = []
        self._theta = float(weights.theta)
        w = {name: np.asarray(arr, dtype=np.float64) for name, arr in weights.items()}
        with self:
            self.one = nengo.Node([1.0], label="one")
            self.input = nengo.Node(size_in=spec.input_d, label="input")
            self._build_memory_input(w)
            self._build_memory(neurons, neuron_options)
            self._build_hidden(w)
            self.output = nengo.Node(size_in=spec.output_size, label="output")
            sources = [(self.hidden, slice(None))] if self.hidden is not None else self._z_source
            readout = self.memory_block.readout_synapse if self.memory_block is not None else None
            for obj, sl in sources:
                post = self.output if len(sources) == 1 else self.output[sl]  # (Loihi drops some sliced posts)
                nengo.Connection(obj, post, synapse=readout if obj is self.memory else None)
            if _state_input:
                self._build_state_input()

    # ------------------------------------------------------------------------------------------ construction
    def _piece_conn(self, name, pre, post, w_rows, rows=None, synapse=None, scale=1.0, state_key=None):
        """A connection carrying ``pre @ w_rows`` (Keras orientation) into ``post``, recorded as a piece."""
        transform = scale * np.asarray(w_rows).T
        conn = nengo.Connection(pre, post, transform=transform, synapse=synapse)
        self.pieces.append(Piece(name, conn, rows, "transform", scale))
        if state_key is not None:
            self._delayed.append((state_key, None, post, transform))
        return conn

    def _bias_conn(self, name, post, bias, scale=1.0):
        conn = nengo.Connection(self.one, post, transform=scale * bias[:, None], synapse=None)
        self.pieces.append(Piece(name, conn, None, "bias", scale))

    def _build_memory_input(self, w):
        """``u = e @ kernel (+ bias) (+ m_{t-1} @ recurrent_kernel)`` into the node ``self.u``."""
        spec = self.lmu_spec
        md, ind = spec.memory_d, spec.input_d
        self.u = nengo.Node(size_in=md, label="u")
        self._hidden_to_u = None
        if "kernel" in w:
            self._piece_conn("kernel", self.input, self.u, w["kernel"][:ind], slice(0, ind))
            if spec.hidden_to_memory:
                self._hidden_to_u = ("kernel", w["kernel"][ind:], slice(ind, None))
        else:  # u = e: e's size equals memory_d
            nengo.Connection(self.input, self.u[:ind], synapse=None)
            if spec.hidden_to_memory:
                self._hidden_to_u = (None, np.eye(spec.hidden.units), None)
        if "bias" in w:
            self._bias_conn("bias", self.u, w["bias"])
        self._recurrent_kernel = w.get("recurrent_kernel")

    def _build_memory(self, neurons, neuron_options):
        spec = self.lmu_spec
        A_bar, B_bar = legendre.discretize(spec.order, self._theta, spec.discretizer)
        if neurons is None:
            # one Ā and one B̄ connection per memory dimension, not a block-diagonal matrix: 0·NaN is NaN, and
            # a NaN in one dimension's input must not reach the others (it does not in the reference)
            self.memory = nengo.Node(size_in=spec.memory_size, label="memory")
            for j in range(spec.memory_d):
                rows = slice(j * spec.order, (j + 1) * spec.order)
                conn = nengo.Connection(self.u[j], self.memory[rows], transform=B_bar[:, None], synapse=None)
                self._system.append((conn, "B"))
                conn = nengo.Connection(self.memory[rows], self.memory[rows], transform=A_bar, synapse=0)
                self._system.append((conn, "A"))
                self._delayed.append(("memory", rows, self.memory[rows], A_bar))
            self.memory_block = None
        else:
            self.memory_block = NeuronMemory(spec, self._theta, self.dt, neurons, **neuron_options)
            nengo.Connection(self.u, self.memory_block.input, synapse=None)
            self.memory = self.memory_block.output
        if self._recurrent_kernel is not None:
            self._piece_conn("recurrent_kernel", self.memory, self.u, self._recurrent_kernel, synapse=0,
                             state_key="memory")
        # z = [m_t, x_t]: the sources of the hidden's input, as (object, slice of z)
        ms = spec.memory_size
        self._z_source = [(self.memory, slice(0, ms))]
        if spec.input_to_hidden:
            self._z_source.append((self.input, slice(ms, ms + spec.input_d)))

    def _build_hidden(self, w):
        spec, hidden = self.lmu_spec, self.lmu_spec.hidden
        self.hidden = None
        self.cell = None
        if hidden is None:
            return
        units = hidden.units
        k = 4 if hidden.kind == "lstm" else 1
        act = hidden.activation or ("linear" if hidden.kind == "dense" else "tanh")
        self.hidden = nengo.Node(size_in=units, label="hidden")
        neuron_hidden = self.memory_block is not None and hidden.kind in ("dense", "rnn") and act == "relu"
        if neuron_hidden:  # neurons mode: a relu hidden is a population of relu neurons, spiking if the memory is
            ens, scale = self.memory_block.relu_population(units, w.get("hidden/bias"), self.hidden)
            if "hidden/bias" in w:
                self.pieces.append(Piece("hidden/bias", ens, None, "neuron_bias", scale))
            pre = ens.neurons
        elif hidden.kind != "lstm" and act in NEURON_ACTIVATIONS:
            ens = nengo.Ensemble(units, 1, neuron_type=NEURON_ACTIVATIONS[act](), gain=np.ones(units),
                                 bias=np.zeros(units), label="hidden activation")
            pre, scale = ens.neurons, 1.0
            nengo.Connection(pre, self.hidden, synapse=None)
        else:
            pre, scale = nengo.Node(size_in=k * units, label="hidden pre-activation"), 1.0
            if hidden.kind == "lstm":
                self._build_lstm_cell(pre, hidden, units)
            else:  # linear
                nengo.Connection(pre, self.hidden, synapse=None)
        synapse = self.memory_block.readout_synapse if self.memory_block is not None else None
        for obj, sl in self._z_source:
            syn = synapse if obj is self.memory else None
            self._piece_conn("hidden/kernel", obj, pre, w["hidden/kernel"][sl], sl, synapse=syn, scale=scale)
        if "hidden/bias" in w and not neuron_hidden:
            self._bias_conn("hidden/bias", pre, w["hidden/bias"], scale=scale)
        if hidden.kind in ("rnn", "lstm"):
            self._piece_conn("hidden/recurrent_kernel", self.hidden, pre, w["hidden/recurrent_kernel"],
                             synapse=0, scale=scale, state_key="hidden")
        if self._hidden_to_u is not None:
            name, rows_w, rows = self._hidden_to_u
            if name is None:  # no kernel: o_{t-1} fills u after the input
                ind = spec.input_d
                nengo.Connection(self.hidden, self.u[ind:], synapse=0)
                self._delayed.append(("hidden", None, self.u, np.vstack([np.zeros((ind, units)), np.eye(units)])))
            else:
                self._piece_conn(name, self.hidden, self.u, rows_w, rows, synapse=0, state_key="hidden")

    def _lstm_node(self, hidden, units):
        """The Keras LSTM cell as a node: input [gates (4·units), c_{t-1}], output [h_t, c_t]."""
        from .simulate import timed

        act = ACTIVATIONS[hidden.activation or "tanh"]
        rec_act = ACTIVATIONS[hidden.recurrent_activation]

        def lstm(t, v):
            g, c_prev = v[: 4 * units], v[4 * units:]
            i, f, cand, o = (g[j * units:(j + 1) * units] for j in range(4))
            c = rec_act(f) * c_prev + rec_act(i) * act(cand)
            return np.concatenate([rec_act(o) * act(c), c])

        return nengo.Node(timed(lstm, 2 * units, 5 * units), label="lstm cell")

    def _build_lstm_cell(self, pre, hidden, units):
        """Wire the LSTM cell node: gates in, its c_t back into itself one step later, h_t to the hidden."""
        self.cell = self._lstm_node(hidden, units)
        nengo.Connection(pre, self.cell[: 4 * units], synapse=None)
        nengo.Connection(self.cell[units:], self.cell[4 * units:], synapse=0)
        self._delayed.append(("cell", None, self.cell[4 * units:], np.eye(units)))
        nengo.Connection(self.cell[:units], self.hidden, synapse=None)

    def _build_state_input(self):
        """A node that adds, at the first step only, what the delayed connections would carry from a given
        state (``run`` with ``state=``): ``state_value`` is set per sequence."""
        keys = sorted({entry[0] for entry in self._delayed})
        sizes = {key: shape[1] for key, shape in self.lmu_spec.state_shapes(1).items()}
        offsets, total = {}, 0
        for key in keys:
            offsets[key] = slice(total, total + sizes[key])
            total += sizes[key]
        self.state_slices = offsets
        self.state_value = np.zeros(max(total, 1))
        self.state_input = self._state_node(max(total, 1))
        for key, sub, post, transform in self._delayed:
            sl = offsets[key]
            if sub is not None:
                sl = slice(sl.start + sub.start, sl.start + sub.stop)
            nengo.Connection(self.state_input[sl], post, transform=transform, synapse=None)

    def _state_node(self, size):
        """The node that outputs ``state_value`` at the first step and zeros after it."""
        from .simulate import timed

        first = self.dt * 1.5

        def emit(t):
            return self.state_value if t < first else np.zeros_like(self.state_value)

        return nengo.Node(timed(emit, size), label="initial state")

    # ------------------------------------------------------------------------------------------ weights
    def system_transforms(self, theta: float) -> dict[str, np.ndarray]:
        """The Ā and B̄ transforms of one memory dimension for a θ (exact mode)."""
        spec = self.lmu_spec
        A_bar, B_bar = legendre.discretize(spec.order, theta, spec.discretizer)
        return {"A": A_bar, "B": B_bar[:, None]}

    def read_weights(self, built=None) -> LMUWeights:
        """The canonical weights, from the network's objects or (``built(obj)`` → array) from a simulator."""
        spec = self.lmu_spec
        from lmu.weights import weight_shapes

        arrays = {name: np.zeros(shape) for name, shape in weight_shapes(spec).items()}
        for p in self.pieces:
            value = built(p) if built is not None else _declared(p)
            value = np.asarray(value, dtype=np.float64) / p.scale
            if p.kind == "transform":
                block = value.T
                target = arrays[p.name]
                if p.rows is None:
                    target[...] = block
                else:
                    target[p.rows] = block
            elif p.kind == "bias":
                arrays[p.name][...] = value[:, 0]
            else:
                arrays[p.name][...] = value
        if "theta" in arrays:
            arrays["theta"] = np.array(self._theta)
        return LMUWeights(spec, {k: v.astype(spec.dtype) for k, v in arrays.items()})

    def write_weights(self, weights: LMUWeights) -> None:
        """Load canonical weights into the network's objects (a simulator built later uses them)."""
        w = {name: np.asarray(arr, dtype=np.float64) for name, arr in weights.items()}
        for p in self.pieces:
            value = w[p.name] if p.rows is None else w[p.name][p.rows]
            if p.kind == "transform":
                p.obj.transform = p.scale * value.T
            elif p.kind == "bias":
                p.obj.transform = p.scale * value[:, None]
            else:
                p.obj.bias = p.scale * value
        self._theta = float(weights.theta)
        if self.memory_block is not None:
            self.memory_block.set_theta(self._theta)
        else:
            new = self.system_transforms(self._theta)
            for conn, which in self._system:
                conn.transform = new[which]


def _declared(piece: Piece) -> np.ndarray:
    if piece.kind == "neuron_bias":
        return np.asarray(piece.obj.bias)
    return np.asarray(piece.obj.transform.init)
