"""The LMU network configured for NengoDL: fixed system, trainable weights, differentiable hidden cells.

Design rule: the network is lmu_nengo's exact network (same objects, same weight pieces), with two differences
that NengoDL needs: every part that must be differentiable is native to NengoDL (hidden activations are nengo
neurons; the LSTM cell is a ``nengo_dl.TensorNode``), and ``trainable`` is configured so that training changes
exactly the canonical weights (Ā, B̄, identities and the activation ensembles stay fixed).
"""

from __future__ import annotations

import nengo
import nengo_dl
import numpy as np

from lmu.activations import mapped
from lmu_nengo.network import LMUNetwork

__all__ = ["LMUNetworkDL", "ACTIVATIONS"]


def _tensorflow_activations():
    import tensorflow as tf

    return mapped({"linear": lambda v: v, "tanh": tf.tanh, "relu": tf.nn.relu, "sigmoid": tf.sigmoid},
                  "TensorFlow")


#: lmu's activation table (:mod:`lmu.activations`) in TensorFlow (nengo-dl imports TensorFlow anyway).
ACTIVATIONS = _tensorflow_activations()


class LMUNetworkDL(LMUNetwork):
    """An :class:`lmu_nengo.LMUNetwork` for NengoDL (built by ``lmu.build(spec, backend="nengo_dl")``).

    Trainable: the connections that hold canonical weights (``kernel``, ``bias``, ``recurrent_kernel``,
    ``hidden/*``). Fixed: the Ā and B̄ connections, identity connections and the neurons that compute the hidden
    activation. ``theta`` is not trained here (it is a constant of the built Ā, B̄).
    """

    def __init__(self, spec, weights, **options):
        options.setdefault("backend", "nengo_dl")
        super().__init__(spec, weights, **options)
        with self:
            nengo_dl.configure_settings(trainable=None)
        trainable = {id(p.obj) for p in self.pieces if p.kind != "neuron_bias"}
        for conn in self.all_connections:
            self.config[conn].trainable = id(conn) in trainable
        for ens in self.all_ensembles:
            self.config[ens].trainable = False

    def _lstm_node(self, hidden, units):
        act = ACTIVATIONS[hidden.activation]
        rec_act = ACTIVATIONS[hidden.recurrent_activation]

        def lstm(t, v):
            import tensorflow as tf

            i, f, cand, o, c_prev = (v[:, j * units:(j + 1) * units] for j in range(5))
            c = rec_act(f) * c_prev + rec_act(i) * act(cand)
            return tf.concat([rec_act(o) * act(c), c], axis=1)

        return nengo_dl.TensorNode(lstm, shape_in=(5 * units,), shape_out=(2 * units,), pass_time=True,
                                   label="lstm cell")

    def _state_node(self, size):
        """An input node: ``run`` feeds it the state at the first step and zeros after (batched)."""
        return nengo.Node(np.zeros(size), label="initial state")
