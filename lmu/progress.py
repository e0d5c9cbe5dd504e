"""Progress bars for long runs (``lmu train``): tqdm where it is installed, a plain line where it is not.

Design rule: lmu draws no bars of its own. :func:`bar` returns a ``tqdm`` bar (``pip install tqdm``, in the
``all`` and ``test`` extras) on stderr, or, without tqdm, an object with the same three methods that prints one
plain line when the bar closes; callers use only ``update``, ``set_postfix`` and ``close``.
"""

from __future__ import annotations

import sys
import time

__all__ = ["bar"]


class _Plain:
    """The fallback without tqdm: says nothing while running and one line at the end (rate and metrics)."""

    def __init__(self, total: int, desc: str, stream):
        self.total, self.desc, self.stream = total, desc, stream
        self.n, self.postfix, self.started = 0, "", time.perf_counter()

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix(self, **values) -> None:
        self.postfix = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())

    def close(self) -> None:
        seconds = time.perf_counter() - self.started
        extra = f", {self.postfix}" if self.postfix else ""
        self.stream.write(f"{self.desc}: {self.n}/{self.total} in {seconds:.1f}s{extra}\n")
        self.stream.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _Off(_Plain):
    """No output at all (``enabled=False``)."""

    def close(self) -> None:
        pass


def bar(total: int, desc: str, enabled: bool = True, stream=None):
    """A progress bar over ``total`` steps: ``update(n)``, ``set_postfix(loss=...)``, ``close()``.

    Examples
    --------
    >>> import io
    >>> out = io.StringIO()
    >>> with bar(3, "epoch 1/1", stream=out) as b:
    ...     for _ in range(3):
    ...         b.update()
    >>> b.n
    3
    """
    stream = sys.stderr if stream is None else stream
    if not enabled:
        return _Off(total, desc, stream)
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _Plain(total, desc, stream)
    return tqdm(total=total, desc=desc, file=stream, unit="step", dynamic_ncols=True, leave=True)
