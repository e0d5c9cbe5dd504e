"""The layers of the core package ``lmu``: the table that the layering test checks and the design page draws.

Design rule: a module imports only modules of lower layers (at module level and inside functions alike), never a
module of its own layer or above; the package itself (``lmu/__init__.py``, ``lmu/__main__.py``) sits on top and
may import anything. ``tests/test_architecture.py`` reads every ``lmu/*.py`` with ``ast`` and fails on an import
that points sideways or up, and on a module missing from this table.
"""

from .errors import ArgumentError

__all__ = ["LAYERS", "TIERS", "layer_of"]

#: The layers, lowest first: ``(tier, modules)``. A module may import from any earlier row, never from its own
#: row or a later one.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("foundations", ("_version", "errors")),
    ("foundations", ("legendre", "activations", "arrays", "fields", "files", "install", "npz", "progress",
                     "signals", "_architecture")),
    ("values", ("spec",)),
    ("values", ("weights",)),
    ("contract", ("backend",)),
    ("reference", ("reference",)),
    ("discovery", ("discovery",)),
    ("discovery", ("registry",)),
    ("tools", ("datasets", "battery", "checkpoints", "demo", "models")),
    ("tools", ("testing", "train", "plots")),
    ("tools", ("cli",)),
)

#: What each tier is for, in the order of the layers.
TIERS: dict[str, str] = {
    "foundations": "no lmu imports but errors: the error hierarchy, the mathematics, the activation table, "
                   "array checks, the spec's field rows, atomic writes and bounded reads, progress, test signals",
    "values": "the spec (validated from one field table) and its canonical weights",
    "contract": "what a backend must do and may declare (lmu.Backend)",
    "reference": "the numpy backend, the executable definition of the semantics",
    "discovery": "finding backends (built-ins, entry points, register()) and dispatching to them",
    "tools": "the conformance battery and kit, datasets, training and its checkpoints, the demo, plots and the "
             "command line",
}


def layer_of(module: str) -> int:
    """The index in :data:`LAYERS` of a core module (``"spec"``, ``"registry"``, ...).

    Examples
    --------
    >>> layer_of("legendre") < layer_of("spec") < layer_of("backend") < layer_of("registry")
    True
    """
    for index, (_, modules) in enumerate(LAYERS):
        if module in modules:
            return index
    raise ArgumentError(f"lmu.{module} is not placed in lmu._architecture.LAYERS: add it to the layer it belongs to")
