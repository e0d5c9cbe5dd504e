"""The ``keras`` entry point: what the registry loads. It imports TensorFlow and Keras only inside its methods."""

import sys

from lmu.registry import Backend, modes_that_apply

__all__ = ["KerasBackend", "MODES"]

MODES = ("auto", "rnn", "fft", "raw")


class KerasBackend(Backend):
    """``lmu.build(spec, backend="keras", mode="auto", seq_len=None)`` → a keras-lmu layer.

    ``mode``: "auto" builds what ``keras_lmu.LMU`` would hold (``keras_lmu.LMUFeedforward`` with FFT for an LTI
    spec with a fixed θ, else the cell in ``keras.layers.RNN``); "rnn" gives
    ``keras.layers.RNN(keras_lmu.LMUCell(...))``; "fft" and "raw" give ``keras_lmu.LMUFeedforward`` with that
    ``conv_mode``. ``seq_len``: the sequence length the layer is built for (keras-lmu's feedforward form fixes its
    impulse response at build; ``lmu.run`` handles any length).
    """

    name = "keras"
    extra = "keras"
    requires = ("keras_lmu", "keras", "tensorflow")
    framework = "keras-lmu"

    def check(self, spec):
        if spec.discretizer == "bilinear":
            return ["keras-lmu has the zoh and euler discretizers only (got discretizer='bilinear'); use zoh"]
        return []

    def conformance_options(self, spec):
        """Every mode that applies to the spec (``lmu check`` runs the kit in each)."""
        return modes_that_apply(spec, MODES, _check_mode)

    def build(self, spec, weights, mode="auto", seq_len=None, **options):
        if options:
            raise TypeError(f"unknown option(s) for the keras backend: {', '.join(sorted(options))}; it takes "
                            "mode= and seq_len=")
        _check_mode(spec, mode)
        if seq_len is not None and (isinstance(seq_len, bool) or not isinstance(seq_len, int) or seq_len < 1):
            raise ValueError(f"keras backend option seq_len must be a positive integer or None (got {seq_len!r})")
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

    def from_keras(self, layer, spec=None):
        from .importer import from_keras

        return from_keras(layer, spec=spec)


def _check_mode(spec, mode):
    if mode not in MODES:
        raise ValueError(f"keras backend option mode must be one of {', '.join(MODES)} (got {mode!r})")
    if mode in ("fft", "raw") and not (spec.is_lti and not spec.trainable_theta and not spec.recurrent_dropout):
        why = ("hidden_to_memory" if spec.hidden_to_memory else "memory_to_memory" if spec.memory_to_memory
               else "trainable_theta")
        raise ValueError(f"mode={mode!r} is keras-lmu's LMUFeedforward, which needs an LTI spec with a fixed θ; this "
                         f"spec has {why}=True: use mode='rnn' or 'auto'")
