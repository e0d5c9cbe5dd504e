"""Training an LMU network with NengoDL: NumPy batches in, ``nengo_dl.Simulator`` underneath.

Design rule: a thin layer, not a framework. The trainer adds an input node, an optional dense readout (the
classifier head of the psMNIST architecture) and one probe around the LMU network, and passes ``compile``,
``fit``, ``evaluate`` and ``predict`` to NengoDL with the data shaped as NengoDL wants it: a spec without
``return_sequences`` is trained on its last step only (the probe keeps no history).
"""

from __future__ import annotations

import os

import numpy as np

from lmu.arrays import check_input
from lmu.errors import ArgumentError

__all__ = ["Trainer"]


class Trainer:
    """Train (or fine-tune) an LMU network built by ``lmu.build(spec, backend="nengo_dl")`` with NengoDL.

    Parameters
    ----------
    net : lmu_nengo_dl.LMUNetworkDL
    n_outputs : int, optional
        Add a trainable dense readout ``output @ W + b`` of this size after the LMU (e.g. the number of classes).
    minibatch_size : int
        NengoDL's minibatch; ``fit``, ``evaluate`` and ``predict`` drop the last items that do not fill one.
    seed : int
        Seeds the simulator and the readout's initial weights.

    Examples
    --------
    >>> import lmu, numpy as np, tensorflow as tf
    >>> from lmu_nengo_dl import Trainer
    >>> spec = lmu.LMUSpec(memory_d=1, order=4, theta=10, input_d=1, hidden=lmu.Hidden("rnn", 8))
    >>> net = lmu.build(spec, backend="nengo_dl")
    >>> x, y = np.random.default_rng(0).normal(size=(32, 10, 1)), np.arange(32) % 2
    >>> with Trainer(net, n_outputs=2, minibatch_size=16) as trainer:
    ...     trainer.compile(tf.optimizers.Adam(1e-2),
    ...                     tf.losses.SparseCategoricalCrossentropy(from_logits=True), ["accuracy"])
    ...     history = trainer.fit(x, y, epochs=2)
    ...     trainer.freeze_params()
    ...     logits = trainer.predict(x)
    >>> logits.shape
    (32, 2)
    """

    def __init__(self, net, n_outputs: int | None = None, minibatch_size: int = 32, seed: int = 0):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import nengo
        import nengo_dl

        self.net, self.spec = net, net.lmu_spec
        self.minibatch_size = int(minibatch_size)
        with nengo.Network(seed=seed) as harness:
            nengo_dl.configure_settings(stateful=False, dtype=self.spec.dtype, trainable=None, keep_history=True)
            self.input = nengo.Node(np.zeros(self.spec.input_d), label="input data")
            nengo.Connection(self.input, net.input, synapse=None)
            self.readout = self.readout_bias = None
            if n_outputs is None:
                self.output = net.output
            else:
                self.output = nengo.Node(size_in=int(n_outputs), label="readout")
                self.readout = nengo.Connection(net.output, self.output, transform=nengo_dl.dists.Glorot(),
                                                synapse=None)
                self.readout_bias = nengo.Connection(net.one, self.output, synapse=None,
                                                     transform=np.zeros((int(n_outputs), 1)))
            self.probe = nengo.Probe(self.output, synapse=None)
            harness.config[self.probe].keep_history = self.spec.return_sequences
        harness.networks.append(net)
        self.network = harness
        self.sim = nengo_dl.Simulator(harness, minibatch_size=self.minibatch_size, seed=seed, progress_bar=False)

    # -- the Keras-like surface ------------------------------------------------------------------------------------
    def compile(self, optimizer, loss, metrics=None):
        """``sim.compile`` with the loss and metrics applied to the output probe."""
        self.sim.compile(optimizer=optimizer, loss={self.probe: loss},
                         metrics=None if metrics is None else {self.probe: metrics})

    def fit(self, x, y, epochs: int = 1, validation_data=None, **kwargs):
        """Train on ``x`` (batch, T, input_d) toward ``y`` ((batch, out) or labels (batch,); with
        ``return_sequences`` (batch, T, out)). Returns the Keras history."""
        x, y = self._data(x, y)
        if validation_data is not None:
            kwargs["validation_data"] = self._data(*validation_data)
        kwargs.setdefault("verbose", 0)
        return self.sim.fit(x, y, epochs=epochs, **kwargs)

    def evaluate(self, x, y, **kwargs) -> dict:
        """Loss and metrics on ``x``, ``y`` (same shapes as :meth:`fit`)."""
        kwargs.setdefault("verbose", 0)
        return self.sim.evaluate(*self._data(x, y), **kwargs)

    def predict(self, x) -> np.ndarray:
        """The output for ``x``: (batch, out) at the last step, or (batch, T, out) with ``return_sequences``."""
        (data,) = self._data(x)
        out = np.asarray(self.sim.predict(data, verbose=0)[self.probe])
        return out if self.spec.return_sequences else out[:, -1]

    def freeze_params(self) -> None:
        """Write the trained parameters back into the network (then ``lmu.get_weights(net)`` has them)."""
        self.sim.freeze_params(self.network)

    def readout_weights(self):
        """The trained readout ``(W (out_size, n_outputs), b (n_outputs,))``, or None without a readout."""
        if self.readout is None:
            return None
        w = np.asarray(self.sim.data[self.readout].weights).T
        b = np.asarray(self.sim.data[self.readout_bias].weights)[:, 0]
        return w, b

    def close(self):
        self.sim.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- data --------------------------------------------------------------------------------------------------------
    def _data(self, x, y=None):
        x = check_input(self.spec, x)
        n = (x.shape[0] // self.minibatch_size) * self.minibatch_size
        if n == 0:
            raise ArgumentError(f"Trainer needs at least minibatch_size={self.minibatch_size} sequences "
                                f"(got {x.shape[0]})")
        out = ({self.input: np.asarray(x[:n], dtype=np.float64)},)
        if y is not None:
            y = np.asarray(y)[:n]
            if y.ndim == 1:
                y = y[:, None]
            if y.ndim == 2:
                y = y[:, None, :]  # the last step only
            out += ({self.probe: y},)
        return out
