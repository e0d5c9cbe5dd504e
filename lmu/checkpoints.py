"""Per-epoch training checkpoints (``lmu train --resume``): arrays and a JSON record in one ``.npz`` file.

Design rule: a checkpoint is one file, replaced atomically after every epoch (:func:`lmu.files.atomic_write`), so a
run killed at any moment leaves the last complete epoch's checkpoint, never a half-written one. It holds only
numeric arrays and a JSON record (stored as the bytes of a ``uint8`` array): nothing is pickled, and reading it
back goes through :class:`lmu.npz.Archive` with bounds. What the arrays mean (the model's parameters, the
optimizer's moments, the best epoch's parameters) is the trainer's business: each framework's ``fit`` names them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .errors import FileError
from .files import atomic_write
from .npz import Archive

__all__ = ["Checkpoint", "MAX_ARRAYS", "MAX_BYTES"]

#: How many arrays a checkpoint may hold, and how many bytes one array may hold (bounds for reading it back).
MAX_ARRAYS = 4096
MAX_BYTES = 1 << 32
_RECORD = "__record__"
_RECORD_BYTES = 64 << 20


class Checkpoint:
    """The checkpoint file of one run: :meth:`save` after an epoch, :meth:`load` to resume.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.npz`` file (``lmu train`` uses ``RUN_DIR/checkpoint.npz``).

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> ckpt = Checkpoint(pathlib.Path(tempfile.mkdtemp()) / "checkpoint.npz")
    >>> ckpt.exists()
    False
    >>> ckpt.save({"model/w": np.ones((2, 3), np.float32)}, {"epoch": 1, "history": []})
    >>> arrays, record = ckpt.load()
    >>> arrays["model/w"].shape, record["epoch"]
    ((2, 3), 1)
    """

    def __init__(self, path):
        self.path = Path(path)

    def exists(self) -> bool:
        """Whether a checkpoint has been written (at least one epoch completed)."""
        return self.path.is_file()

    def save(self, arrays: dict[str, np.ndarray], record: dict) -> None:
        """Replace the checkpoint with ``arrays`` (name → numeric array) and ``record`` (JSON-serializable)."""
        if _RECORD in arrays:
            raise FileError(f"a checkpoint array may not be named {_RECORD!r}")
        text = json.dumps(record).encode()
        contents = {name: np.asarray(value) for name, value in arrays.items()}
        contents[_RECORD] = np.frombuffer(text, np.uint8)
        with atomic_write(self.path) as f:
            np.savez(f, **contents)

    def load(self) -> tuple[dict[str, np.ndarray], dict]:
        """``(arrays, record)`` as :meth:`save` wrote them; :class:`lmu.FileError` naming the file if it is
        missing, corrupt or not a checkpoint."""
        if not self.exists():
            raise FileError(f"{os.fspath(self.path)!r} does not exist: the run has no completed epoch to resume "
                            "from (start it again without --resume)")
        with Archive(self.path, max_members=MAX_ARRAYS, what="an lmu train checkpoint") as archive:
            raw = archive.read(_RECORD, dtype=np.uint8, max_bytes=_RECORD_BYTES)
            try:
                record = json.loads(raw.tobytes())
            except (UnicodeDecodeError, json.JSONDecodeError) as err:
                raise FileError(f"{os.fspath(self.path)!r}: its record is not JSON ({err}): not an lmu train "
                                "checkpoint") from None
            if not isinstance(record, dict):
                raise FileError(f"{os.fspath(self.path)!r}: its record is not a JSON object: not an lmu train "
                                "checkpoint")
            arrays = {name: archive.read(name, kinds="fiub", max_bytes=MAX_BYTES)
                      for name in archive.names if name != _RECORD}
        return arrays, record
