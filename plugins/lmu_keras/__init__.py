"""lmu_keras: the Keras backend of lmu, built from keras-lmu's own layers (``lmu.build(spec, backend="keras")``).

Design rule: importing this package imports neither TensorFlow nor Keras; :class:`KerasBackend` imports them when it
builds. keras-lmu is a dependency (its own licence); none of its code is copied here.
"""

from .backend import MODES, KerasBackend

__all__ = ["KerasBackend", "MODES"]
