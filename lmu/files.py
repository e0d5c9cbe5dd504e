"""Every file lmu writes is written atomically; every file it reads from outside is read within a bound.

Design rule: a writer never touches the target until the new content is complete and on disk. :func:`atomic_write`
writes into a file without a name in the target's directory (Linux ``O_TMPFILE``), flushes and fsyncs it, gives it
a temporary name and renames it over the target with ``os.replace``, then fsyncs the directory. A writer that
raises, or a process that is killed, leaves the old file byte for byte as it was and no temporary file: an unnamed
file vanishes with its process. Where ``O_TMPFILE`` is missing (another OS or filesystem) the temporary file has a
name, ``.<target>.<pid>.lmu-tmp``; one left by a killed process is removed by the next write to the same target.
Readers of outside bytes use :func:`read_bounded`, which never reads more than a declared bound.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import io
import os
import re
import secrets
import stat
from collections.abc import Iterator
from typing import IO, Any

from .errors import ArgumentError, FileError

__all__ = ["atomic_write", "write_bytes", "write_text", "read_bounded", "strategy"]

_AT_FDCWD = -100
_AT_EMPTY_PATH = 0x1000
_AT_SYMLINK_FOLLOW = 0x400
_TMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[0-9a-f]{8}\.lmu-tmp$")
_fdopen = os.fdopen  # where the tests inject faults into every writer at once
_strategies: dict[int, str] = {}  # st_dev → "linkat", "proc" or "named": what works on that filesystem


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _link_unnamed(fd: int, directory: str, name: str, how: str) -> None:
    """Give the unnamed file ``fd`` the name ``directory/name`` (``linkat``; raises OSError)."""
    target = os.path.join(directory, name).encode()
    if how == "linkat":
        result = _libc().linkat(fd, b"", _AT_FDCWD, target, _AT_EMPTY_PATH)
    else:
        result = _libc().linkat(_AT_FDCWD, f"/proc/self/fd/{fd}".encode(), _AT_FDCWD, target, _AT_SYMLINK_FOLLOW)
    if result != 0:
        err = ctypes.get_errno()
        raise FileError(err, os.strerror(err), target.decode())


def strategy(directory: str = ".") -> str:
    """How this process writes files atomically in ``directory``: ``"linkat"`` or ``"proc"`` (an unnamed
    ``O_TMPFILE`` linked into place: nothing is left behind by a killed process) or ``"named"`` (a named temporary
    file); probed once per filesystem.

    Examples
    --------
    >>> strategy() in ("linkat", "proc", "named")
    True
    """
    try:
        device = os.stat(directory).st_dev
    except OSError:
        return "named"  # the write itself will report the missing directory
    if device not in _strategies:
        found = "named"
        if hasattr(os, "O_TMPFILE") and os.name == "posix":
            for how in ("linkat", "proc"):
                try:
                    fd = os.open(directory, os.O_TMPFILE | os.O_WRONLY, 0o600)
                except OSError as err:
                    if err.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
                        return "named"  # e.g. a read-only directory: the write itself will say so; probe again later
                    break  # no O_TMPFILE on this filesystem
                name = f".lmu-probe.{os.getpid()}.{secrets.token_hex(4)}"
                try:
                    _link_unnamed(fd, directory, name, how)
                    os.unlink(os.path.join(directory, name))
                    found = how
                    break
                except (OSError, AttributeError):  # this way of linking is not allowed here: try the next
                    continue
                finally:
                    os.close(fd)
        _strategies[device] = found
    return _strategies[device]


def _sweep(directory: str, name: str) -> None:
    """Remove named temporary files of ``name`` left by processes that no longer run."""
    try:
        entries = os.listdir(directory)
    except OSError:
        return
    for entry in entries:
        match = _TMP.match(entry)
        if match is None or match["name"] != name:
            continue
        pid = int(match["pid"])
        if pid == os.getpid():
            continue  # this process: another thread's write in progress (a failed one removes its own file)
        try:
            os.kill(pid, 0)
            continue  # still running: its write may be in progress
        except ProcessLookupError:
            pass
        except OSError:  # exists but not ours to signal
            continue
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(directory, entry))


def _fsync_directory(directory: str) -> None:
    with contextlib.suppress(OSError):  # some filesystems cannot open or fsync a directory; the rename stands
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_write(path, mode: str = "wb", encoding: str | None = None, newline: str | None = None) -> Iterator[IO]:
    """Open a file for writing that replaces ``path`` only when the ``with`` block completes.

    An exception inside the block propagates unchanged, and the old file stays as it was; a failure of the file
    system itself (the directory is missing or read-only, the disk is full) is an :class:`lmu.FileError` that
    names the path.

    Parameters
    ----------
    path : str or os.PathLike
        The target. Its directory must exist.
    mode : {"wb", "w"}
        Binary or text.
    encoding, newline
        As for :func:`open` in text mode (default encoding UTF-8).

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "notes.txt")
    >>> with atomic_write(path, "w") as f:
    ...     _ = f.write("first")
    >>> try:
    ...     with atomic_write(path, "w") as f:
    ...         _ = f.write("second, half")
    ...         raise RuntimeError("the writer failed half-way")
    ... except RuntimeError:
    ...     pass
    >>> open(path).read(), sorted(os.listdir(os.path.dirname(path)))
    ('first', ['notes.txt'])
    """
    if mode not in ("wb", "w"):
        raise ArgumentError(f"atomic_write mode must be 'wb' or 'w' (got {mode!r})")
    path = os.fspath(path)
    directory, name = os.path.split(os.path.abspath(path))
    how = strategy(directory)
    temp = os.path.join(directory, f".{name}.{os.getpid()}.{secrets.token_hex(4)}.lmu-tmp")
    try:
        if how == "named":
            _sweep(directory, name)
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        else:
            fd = os.open(directory, os.O_TMPFILE | os.O_WRONLY, 0o666)
    except OSError as err:
        raise FileError(f"cannot write {path!r}: {err.strerror or err}") from err
    raw: Any = _fdopen(fd, "wb")
    stream: Any = raw if mode == "wb" else io.TextIOWrapper(raw, encoding=encoding or "utf-8", newline=newline)
    named = how == "named"  # whether ``temp`` exists on disk and must go if anything fails
    try:
        yield stream
        try:
            stream.flush()
            os.fsync(raw.fileno())
            if not named:
                _link_unnamed(raw.fileno(), directory, os.path.basename(temp), how)
                named = True
            os.replace(temp, path)
            named = False
        except OSError as err:
            raise FileError(f"cannot write {path!r}: {err.strerror or err}") from err
        _fsync_directory(directory)
    finally:
        with contextlib.suppress(OSError, ValueError):  # closing an already failed stream
            stream.close()
        if named:
            with contextlib.suppress(OSError):
                os.unlink(temp)


def write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (:func:`atomic_write`)."""
    with atomic_write(path, "wb") as f:
        f.write(data)


def write_text(path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (:func:`atomic_write`)."""
    with atomic_write(path, "w") as f:
        f.write(text)


def read_bounded(path, limit: int, what: str = "file", error: type[FileError] = FileError) -> bytes:
    """The bytes of a regular file, refusing anything larger than ``limit`` bytes or not a regular file (a FIFO or a
    device such as ``/dev/zero`` would never end) with ``error`` (an :class:`lmu.FileError`) naming the path, and
    never reading past the bound.

    Examples
    --------
    >>> read_bounded("/dev/zero", 100, "spec file")
    Traceback (most recent call last):
    ...
    lmu.errors.FileError: '/dev/zero' is not a regular file but a device or a pipe, whose end may never come: give \
a spec file
    """
    path = os.fspath(path)
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise error(f"{path!r} is not a regular file but a device or a pipe, whose end may never come: give a "
                        f"{what}")
        if info.st_size > limit:
            raise error(f"{path!r} holds {info.st_size} bytes, more than the {limit} a {what} may have")
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except FileError:
        raise
    except OSError as err:
        raise error(f"cannot read {path!r}: {err.strerror or err}") from err
    if len(data) > limit:  # it grew while we read it
        raise error(f"{path!r} holds more than the {limit} bytes a {what} may have")
    return data
