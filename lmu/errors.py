"""The three exceptions of the public API.

Design rule: every refusal in the project raises one of these (or a plain ``TypeError`` for an object of the
wrong kind), with a message that names the field, the value it got, and what would be accepted or installed.
"""

__all__ = ["SpecError", "BackendUnavailable", "UnsupportedSpec"]


class SpecError(ValueError):
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


class BackendUnavailable(ImportError):
    """A backend is not installed, not known, or its plugin failed to load.

    The message always says what to install or which backends are known.
    """


class UnsupportedSpec(ValueError):
    """A backend is installed but cannot build this particular spec (its ``check(spec)`` gave reasons)."""
