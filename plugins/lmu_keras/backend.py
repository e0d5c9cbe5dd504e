"""The ``keras`` entry point: what the registry loads. It imports TensorFlow and Keras only inside its methods."""

import sys

import lmu
from lmu.backend import Mode

__all__ = ["KerasBackend", "MODES"]

_MODES = (
    Mode("auto", summary="what keras_lmu.LMU would build for the spec"),
    Mode("rnn", summary="keras.layers.RNN(keras_lmu.LMUCell), stepped over time"),
    Mode("fft", needs=("lti", "fixed_theta"), summary="keras-lmu's LMUFeedforward"),
    Mode("raw", needs=("lti", "fixed_theta"), summary="keras-lmu's LMUFeedforward"),
)
MODES = tuple(m.name for m in _MODES)


class KerasBackend(lmu.Backend):
    """``lmu.build(spec, backend="keras", mode="auto", seq_len=None)`` → a keras-lmu layer.

    ``mode``: "auto" builds what ``keras_lmu.LMU`` would hold (``keras_lmu.LMUFeedforward`` with FFT for an LTI
    spec with a fixed θ, else the cell in ``keras.layers.RNN``); "rnn" gives
    ``keras.layers.RNN(keras_lmu.LMUCell(...))``; "fft" and "raw" give ``keras_lmu.LMUFeedforward`` with that
    ``conv_mode``. ``seq_len``: the sequence length the layer is built for (keras-lmu's feedforward form fixes its
    impulse response at build; ``lmu.run`` handles any length).

    Examples
    --------
    >>> import lmu, numpy as np
    >>> spec = lmu.LMUSpec(memory_d=1, order=8, theta=20, input_d=1, hidden=lmu.Hidden("rnn", 4))
    >>> layer = lmu.build(spec, backend="keras", mode="rnn")
    >>> type(layer).__name__, type(layer.cell).__name__, lmu.run(layer, np.ones((2, 30, 1))).shape
    ('RNN', 'LMUCell', (2, 4))
    """

    name = "keras"
    extra = "keras"
    requires = ("keras_lmu", "keras", "tensorflow")
    framework = "keras-lmu"
    modes = _MODES

    def check(self, spec):
        reasons = super().check(spec)
        if spec.discretizer == "bilinear":
            reasons.append("keras-lmu has the zoh and euler discretizers only (got discretizer='bilinear'); use zoh")
        return reasons

    def build(self, spec, weights, *, mode="auto", seq_len=None):
        if seq_len is not None and (isinstance(seq_len, bool) or not isinstance(seq_len, int) or seq_len < 1):
            raise lmu.ArgumentError(f"keras backend option seq_len must be a positive integer or None (got "
                                    f"{seq_len!r})")
        check_mode(spec, mode)
        from . import layers

        return layers.build_layer(spec, weights, mode, seq_len)

    def get_weights(self, obj):
        from . import layers

        return layers.get_weights(obj)

    def set_weights(self, obj, weights):
        from . import layers

        layers.set_weights(obj, weights)

    def run(self, obj, x, state=None, return_state=False):
        from . import layers

        return layers.run(obj, x, state, return_state)

    def owns(self, obj):
        if getattr(obj, "lmu_backend", None) == self.name:
            return True
        if "keras_lmu" not in sys.modules:  # nothing can be a keras-lmu layer before keras_lmu was imported
            return False
        from . import layers

        return layers.is_lmu_layer(obj)

    def spec_of(self, obj):
        spec = getattr(obj, "lmu_spec", None)
        if spec is not None:
            return spec
        from .importer import from_keras

        return from_keras(obj)[0]


def check_mode(spec, mode) -> None:
    """:func:`lmu.backend.check_mode` for this backend."""
    lmu.backend.check_mode(KerasBackend, spec, mode)
