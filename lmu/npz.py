"""Reading ``.npz`` archives from outside without trusting them: bounded, checked, never unpickled.

Design rule: every size an archive declares is checked against what the caller expects before anything is
allocated or decompressed, a member is never decompressed past its declared size, object (pickled) arrays are
refused from their header, and every way a malformed or hostile file can fail (a bad zip, a zip or deflate bomb,
an encrypted or oddly compressed member, a truncated stream, a header numpy cannot parse) becomes one error of the
caller's type (an :class:`lmu.FileError`) that names the file. Weights files (:mod:`lmu.weights`) and Keras'
``mnist.npz`` (:mod:`lmu.datasets`) are read through it.
"""

from __future__ import annotations

import contextlib
import math
import os
import struct
import zipfile
import zlib

import numpy as np

from .errors import FileError

__all__ = ["Archive", "ZIP_MAGIC", "NPY_MAGIC"]

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
NPY_MAGIC = b"\x93NUMPY"
_HEADER_BYTES = 1 << 16  # an .npy header is at most this long (numpy writes ~128 bytes)
#: Everything that a broken or hostile archive can raise from zipfile, zlib or numpy's header parser.
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError, OSError, ValueError,
                struct.error, OverflowError, UnicodeDecodeError, SyntaxError)


class Archive:
    """An ``.npz`` file opened for bounded reading; use as a context manager.

    Parameters
    ----------
    path : str or os.PathLike
    error : type of FileError
        What every problem is raised as (``lmu.WeightsFileError``, ``lmu.DatasetError``).
    max_members : int
        More members than this is refused before any is read.
    what : str
        What the file should be, for messages ("an LMU weights file").

    Examples
    --------
    >>> import os, tempfile, numpy as np
    >>> path = os.path.join(tempfile.mkdtemp(), "a.npz")
    >>> np.savez(path, x=np.arange(3.0))
    >>> with Archive(path) as archive:
    ...     archive.names, archive.read("x", shape=(3,), dtype=np.float64).tolist()
    (['x'], [0.0, 1.0, 2.0])
    """

    def __init__(self, path, error: type[FileError] = FileError, max_members: int = 64, what: str = "an .npz file"):
        self.path, self.error, self.what = os.fspath(path), error, what
        try:
            self._zip = zipfile.ZipFile(self.path)
        except _READ_ERRORS as err:
            raise error(f"{self.path!r} is corrupt or truncated: not a complete .npz (zip) archive ({err})") from None
        infos = self._zip.infolist()
        if len(infos) > max_members:
            self.close()
            raise error(f"{self.path!r} holds {len(infos)} entries, more than the {max_members} {what} can have")
        self._members = {}
        for info in infos:
            if not info.filename.endswith(".npy"):
                self.close()
                raise error(f"{self.path!r}: entry {info.filename!r} is not a .npy array; {what} holds only arrays")
            if info.flag_bits & 0x1 or info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                self.close()
                raise error(f"{self.path!r}: entry {info.filename!r} is encrypted or compressed in a way numpy "
                            "never writes (only stored and deflated entries are read)")
            self._members[info.filename[:-4]] = info

    @property
    def names(self) -> list[str]:
        """The arrays in the archive, in the archive's order."""
        return list(self._members)

    def header(self, name: str) -> tuple[tuple[int, ...], np.dtype]:
        """``(shape, dtype)`` of one array, from its header alone (nothing of its data is read)."""
        with self._member(name) as (stream, shape, _, dtype):
            return tuple(shape), dtype

    def read(self, name: str, shape=None, dtype=None, kinds: str | None = None, max_bytes: int = 1 << 20) -> np.ndarray:
        """One array, checked from its header against ``shape``, ``dtype`` or the dtype ``kinds`` allowed (e.g.
        ``"iu"``, when given) and ``max_bytes``, before its data is read; ``max_bytes`` also bounds what is
        decompressed."""
        where = f"{self.path!r}: entry {name!r}"
        if name in self._members and self._members[name].file_size > max_bytes + _HEADER_BYTES:
            raise self.error(f"{where} declares {self._members[name].file_size} bytes, more than the {max_bytes} it "
                             "may hold")
        with self._member(name) as (stream, got_shape, fortran, got_dtype):
            if dtype is not None and got_dtype != np.dtype(dtype) or kinds and got_dtype.kind not in kinds:
                raise self.error(f"{where} has dtype {got_dtype}; expected {dtype or f'kinds {kinds}'}")
            if shape is not None and tuple(got_shape) != tuple(shape):
                raise self.error(f"{where} has shape {tuple(got_shape)}; expected {tuple(shape)}")
            count = math.prod(got_shape)
            nbytes = count * got_dtype.itemsize
            if nbytes > max_bytes:
                raise self.error(f"{where} has shape {got_shape}: {nbytes} bytes, more than the {max_bytes} it may "
                                 "hold")
            try:
                data = stream.read(nbytes + 1)
            except _READ_ERRORS as err:
                raise self.error(f"{self.path!r} is corrupt or truncated ({name!r}: {type(err).__name__}: "
                                 f"{err})") from None
        if len(data) != nbytes:
            raise self.error(f"{where} is truncated or longer than its header says ({len(data)} bytes of {nbytes})")
        array = np.frombuffer(data, got_dtype, count=count)
        return array.reshape(got_shape, order="F" if fortran else "C").copy()

    @contextlib.contextmanager
    def _member(self, name):
        """The open stream of one member, past its .npy header: ``(stream, shape, fortran, dtype)``."""
        if name not in self._members:
            raise self.error(f"{self.path!r} has no {name!r} entry: it is not {self.what}")
        where = f"{self.path!r}: entry {name!r}"
        try:
            with self._zip.open(self._members[name]) as stream:
                version = np.lib.format.read_magic(stream)
                if version not in ((1, 0), (2, 0), (3, 0)):
                    raise self.error(f"{where} is an .npy array of an unknown format version {version}")
                read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                    np.lib.format.read_array_header_2_0
                shape, fortran, dtype = read_header(stream)
                if dtype.hasobject:
                    raise self.error(f"{self.path!r} holds a pickled object array; lmu never unpickles (entry "
                                     f"{name!r}): it is not {self.what}")
                yield stream, shape, fortran, dtype
        except FileError:
            raise
        except _READ_ERRORS as err:
            raise self.error(f"{self.path!r} is corrupt or truncated ({name!r}: {type(err).__name__}: {err})") \
                from None

    def close(self) -> None:
        """Close the file."""
        self._zip.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
