"""The one error hierarchy of lmu: every error that lmu's own code raises is an :class:`LMUError`.

Design rule: a refusal names the field or path, the value it got, and what would be accepted or installed. Each
error also subclasses the builtin a Python user would catch for it (``ValueError``, ``TypeError``,
``ImportError``, ``OSError``), so ``except ValueError`` keeps working around lmu calls. Nothing else escapes
from lmu's code: an error from a framework inside a backend that is not the user's fault is a bug, and is left
to propagate unchanged rather than relabelled.

- :class:`LMUError` (an ``Exception``): the base, ``except lmu.LMUError`` catches all of them;
- :class:`SpecError` (a ``ValueError``): a spec, its JSON, or weights that do not fit it;
- :class:`UnsupportedSpec` (a ``ValueError``): a backend cannot build this spec, or not in the mode asked for;
- :class:`BackendUnavailable` (an ``ImportError``): a backend is unknown, not installed, or its plugin is broken;
- :class:`ArgumentError` (a ``TypeError`` and a ``ValueError``): any other argument (an input batch, a state, a
  backend option, an object lmu did not build) has the wrong kind or value;
- :class:`FileError` (an ``OSError`` and a ``ValueError``): a file lmu reads or writes is missing, unreadable,
  unwritable, too large or malformed; the message names the path. Its kinds:
  :class:`WeightsFileError` (a weights file) and :class:`DatasetError` (a dataset file).
"""

__all__ = [
    "LMUError",
    "SpecError",
    "UnsupportedSpec",
    "BackendUnavailable",
    "ArgumentError",
    "FileError",
    "WeightsFileError",
    "MissingWeightsFile",
    "DatasetError",
]


class LMUError(Exception):
    """The base of every error lmu raises.

    Examples
    --------
    >>> import lmu
    >>> try:
    ...     lmu.LMUSpec(memory_d=1, order=8, theta=-3, input_d=1)
    ... except lmu.LMUError as err:
    ...     print(type(err).__name__, "-", err)
    SpecError - LMUSpec.theta must be a finite number > 0 (got -3)
    """


class SpecError(LMUError, ValueError):
    """An :class:`lmu.LMUSpec`, a spec JSON document, or weights that do not fit a spec, are invalid.

    Examples
    --------
    >>> import lmu
    >>> try:
    ...     lmu.LMUSpec(memory_d=1, order=8, theta=-3, input_d=1)
    ... except lmu.SpecError as err:
    ...     print(err)
    LMUSpec.theta must be a finite number > 0 (got -3)
    """


class UnsupportedSpec(LMUError, ValueError):
    """A backend is installed but cannot build this spec: its ``check(spec)`` gave reasons, or the ``mode`` asked
    for needs what the spec does not have."""


class BackendUnavailable(LMUError, ImportError):
    """A backend is not installed, not known, or its plugin failed to load.

    The message always says what to install or which backends are known.
    """


class ArgumentError(LMUError, TypeError, ValueError):
    """An argument other than a spec is of the wrong kind or value: an input batch, a streaming state, a backend
    option, a seed, or an object that lmu did not build. The message names the argument and what is accepted."""


class FileError(LMUError, OSError, ValueError):
    """A file lmu reads or writes is missing, unreadable, unwritable, too large or malformed; the message names
    the path. A write that fails this way leaves the previous file as it was (:mod:`lmu.files`)."""


class WeightsFileError(FileError):
    """A weights file (``lmu.load_weights``, ``lmu.from_keras`` of an ``.h5`` file) is missing, unreadable,
    corrupt, too large, or was not written by ``lmu.save_weights``; the message names the path."""


class MissingWeightsFile(WeightsFileError, FileNotFoundError):
    """There is no weights file at the path given (also a ``FileNotFoundError``)."""


class DatasetError(FileError):
    """A dataset file is missing, truncated, too large or not in the expected format; the message names it."""
