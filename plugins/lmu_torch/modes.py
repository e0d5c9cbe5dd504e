"""Which mode ``auto`` runs: a pure function of the device type, the shapes and the spec, never of the data.

Design rule: a choice comes from measurements committed here, not from a timing at run time (no warm-up race, no
host sync, the same choice under ``torch.compile`` and export). On a CPU, ``auto`` takes the mode that was fastest
at the nearest measured shape of :data:`CPU_TABLE` (``python benchmarks/auto_modes.py`` prints the table); on
other devices ``raw`` up to :data:`RAW_MAX_KERNEL` steps of kernel and ``fft`` beyond, as measured on a GPU before.
"""

from __future__ import annotations

import math

__all__ = ["RAW_MAX_KERNEL", "CPU_TABLE", "TABLE_BATCH", "kind_of", "nearest", "pick"]

#: The longest kernel ``raw`` convolves with when ``auto`` chooses; beyond it the blocked FFT (``fft``) is faster
#: (``python benchmarks/torch_causality.py``: T = 4096 raw 1.6 s vs fft 1.8 s, T = 16384 raw 6.0 s vs fft 3.1 s,
#: order 256, 2 threads).
RAW_MAX_KERNEL = 8192

#: The batch ``pick`` assumes when it is not told one (that of the table's full grid).
TABLE_BATCH = 16

#: ``(kind, memory_d, order, T, kernel, batch, units, fastest)``: one training step (forward, backward, Adam) per
#: mode, the modes timed in turns, on a 2-core AMD EPYC (AVX-512), torch 2.13.0+cpu, 2 threads, 2026-12-03
#: (``python benchmarks/auto_modes.py``, its three parts run one after another; the times, medians, beside each
#: row). ``kind``: ``none`` (memory out, every step), ``dense`` (a dense hidden cell, every step), ``rnn`` (a
#: SimpleRNN, the last step); ``units`` the hidden cell's (1 for none); ``kernel`` the length of ``H`` that
#: ``raw`` convolves with (θ = T or T/8). The machine's speed moved up to 1.9× between runs, so near-ties are
#: noise; what the table settles is the large differences (step far ahead for many memories on this CPU, fft
#: rarely fastest).
CPU_TABLE = (
    ('none', 1, 64, 256, 256, 16, 1, 'raw'),  # step 26, raw 4, fft 5 ms
    ('none', 1, 64, 256, 69, 16, 1, 'raw'),  # step 28, raw 3, fft 6 ms
    ('none', 1, 64, 1024, 1024, 16, 1, 'raw'),  # step 77, raw 48, fft 52 ms
    ('none', 1, 64, 1024, 275, 16, 1, 'raw'),  # step 70, raw 15, fft 20 ms
    ('none', 1, 256, 256, 256, 16, 1, 'raw'),  # step 28, raw 7, fft 18 ms
    ('none', 1, 256, 256, 53, 16, 1, 'raw'),  # step 32, raw 8, fft 17 ms
    ('none', 1, 256, 1024, 1024, 16, 1, 'raw'),  # step 123, raw 102, fft 160 ms
    ('none', 1, 256, 1024, 213, 16, 1, 'raw'),  # step 115, raw 36, fft 128 ms
    ('none', 16, 64, 256, 256, 16, 1, 'step'),  # step 41, raw 50, fft 110 ms
    ('none', 16, 64, 256, 69, 16, 1, 'step'),  # step 31, raw 40, fft 152 ms
    ('none', 16, 64, 1024, 1024, 16, 1, 'step'),  # step 186, raw 593, fft 578 ms
    ('none', 16, 64, 1024, 275, 16, 1, 'step'),  # step 224, raw 315, fft 603 ms
    ('none', 16, 256, 256, 256, 16, 1, 'step'),  # step 244, raw 275, fft 511 ms
    ('none', 16, 256, 256, 53, 16, 1, 'raw'),  # step 240, raw 234, fft 578 ms
    ('none', 16, 256, 1024, 1024, 16, 1, 'step'),  # step 1172, raw 2236, fft 3094 ms
    ('none', 16, 256, 1024, 213, 16, 1, 'step'),  # step 1229, raw 1841, fft 3309 ms
    ('dense', 1, 64, 256, 256, 16, 64, 'raw'),  # step 40, raw 7, fft 9 ms
    ('dense', 1, 64, 256, 69, 16, 64, 'raw'),  # step 39, raw 6, fft 8 ms
    ('dense', 1, 64, 1024, 1024, 16, 64, 'fft'),  # step 166, raw 70, fft 30 ms
    ('dense', 1, 64, 1024, 275, 16, 64, 'raw'),  # step 162, raw 26, fft 28 ms
    ('dense', 1, 256, 256, 256, 16, 64, 'raw'),  # step 44, raw 7, fft 21 ms
    ('dense', 1, 256, 256, 53, 16, 64, 'raw'),  # step 39, raw 4, fft 20 ms
    ('dense', 1, 256, 1024, 1024, 16, 64, 'raw'),  # step 163, raw 52, fft 74 ms
    ('dense', 1, 256, 1024, 213, 16, 64, 'raw'),  # step 154, raw 21, fft 93 ms
    ('dense', 16, 64, 256, 256, 16, 64, 'raw'),  # step 54, raw 41, fft 81 ms
    ('dense', 16, 64, 256, 69, 16, 64, 'raw'),  # step 50, raw 12, fft 60 ms
    ('dense', 16, 64, 1024, 1024, 16, 64, 'step'),  # step 210, raw 635, fft 560 ms
    ('dense', 16, 64, 1024, 275, 16, 64, 'raw'),  # step 282, raw 220, fft 665 ms
    ('dense', 16, 256, 256, 256, 16, 64, 'raw'),  # step 213, raw 44, fft 567 ms
    ('dense', 16, 256, 256, 53, 16, 64, 'raw'),  # step 198, raw 13, fft 522 ms
    ('dense', 16, 256, 1024, 1024, 16, 64, 'raw'),  # step 1174, raw 948, fft 3259 ms
    ('dense', 16, 256, 1024, 213, 16, 64, 'raw'),  # step 879, raw 181, fft 2890 ms
    ('rnn', 1, 64, 256, 256, 16, 64, 'raw'),  # step 34, raw 15, fft 17 ms
    ('rnn', 1, 64, 256, 69, 16, 64, 'raw'),  # step 46, raw 19, fft 22 ms
    ('rnn', 1, 64, 1024, 1024, 16, 64, 'fft'),  # step 140, raw 84, fft 74 ms
    ('rnn', 1, 64, 1024, 275, 16, 64, 'raw'),  # step 147, raw 64, fft 72 ms
    ('rnn', 1, 256, 256, 256, 16, 64, 'raw'),  # step 55, raw 24, fft 29 ms
    ('rnn', 1, 256, 256, 53, 16, 64, 'raw'),  # step 46, raw 19, fft 28 ms
    ('rnn', 1, 256, 1024, 1024, 16, 64, 'fft'),  # step 228, raw 179, fft 164 ms
    ('rnn', 1, 256, 1024, 213, 16, 64, 'raw'),  # step 265, raw 125, fft 162 ms
    ('rnn', 16, 64, 256, 256, 16, 64, 'step'),  # step 66, raw 68, fft 107 ms
    ('rnn', 16, 64, 256, 69, 16, 64, 'raw'),  # step 103, raw 50, fft 97 ms
    ('rnn', 16, 64, 1024, 1024, 16, 64, 'step'),  # step 361, raw 664, fft 505 ms
    ('rnn', 16, 64, 1024, 275, 16, 64, 'raw'),  # step 452, raw 347, fft 790 ms
    ('rnn', 16, 256, 256, 256, 16, 64, 'raw'),  # step 202, raw 158, fft 394 ms
    ('rnn', 16, 256, 256, 53, 16, 64, 'raw'),  # step 205, raw 119, fft 446 ms
    ('rnn', 16, 256, 1024, 1024, 16, 64, 'step'),  # step 1170, raw 2405, fft 3644 ms
    ('rnn', 16, 256, 1024, 213, 16, 64, 'step'),  # step 1228, raw 2352, fft 6244 ms
    ('none', 1, 256, 256, 256, 100, 1, 'raw'),  # step 404, raw 124, fft 664 ms
    ('none', 1, 256, 1024, 1024, 100, 1, 'step'),  # step 448, raw 750, fft 934 ms
    ('none', 16, 256, 256, 256, 100, 1, 'step'),  # step 1619, raw 1737, fft 5571 ms
    ('none', 16, 256, 1024, 1024, 100, 1, 'step'),  # step 14293, raw 19566, fft 27337 ms
    ('dense', 1, 256, 256, 256, 100, 64, 'raw'),  # step 93, raw 24, fft 96 ms
    ('dense', 1, 256, 1024, 1024, 100, 64, 'raw'),  # step 420, raw 399, fft 640 ms
    ('dense', 16, 256, 256, 256, 100, 64, 'raw'),  # step 1091, raw 290, fft 5853 ms
    ('dense', 16, 256, 1024, 1024, 100, 64, 'raw'),  # step 5394, raw 4769, fft 23444 ms
    ('rnn', 1, 256, 256, 256, 100, 64, 'raw'),  # step 145, raw 94, fft 143 ms
    ('rnn', 1, 256, 1024, 1024, 100, 64, 'fft'),  # step 626, raw 796, fft 545 ms
    ('rnn', 16, 256, 256, 256, 100, 64, 'raw'),  # step 1177, raw 874, fft 2964 ms
    ('rnn', 16, 256, 1024, 1024, 100, 64, 'step'),  # step 5740, raw 18540, fft 28664 ms
    ('rnn', 1, 256, 256, 256, 100, 212, 'raw'),  # step 190, raw 183, fft 263 ms
    ('rnn', 1, 256, 784, 784, 100, 212, 'step'),  # step 685, raw 980, fft 1221 ms
    ('rnn', 1, 256, 1024, 1024, 100, 212, 'step'),  # step 930, raw 1498, fft 1548 ms
)


_LOGS = tuple(tuple(math.log2(v) for v in row[1:7]) for row in CPU_TABLE)


def kind_of(spec) -> tuple[str, int]:
    """The table's kind and units for a spec: ``("none", 1)``, ``("dense", units)``, or ``("rnn", units)`` for
    any recurrent hidden cell."""
    if spec.hidden is None:
        return "none", 1
    return ("dense" if spec.hidden.kind == "dense" else "rnn"), spec.hidden.units


def nearest(kind: str, memory_d: int, order: int, steps: int, kernel: int, batch: int, units: int) -> tuple:
    """The row of :data:`CPU_TABLE` of this kind nearest to the shape, by the sum of squared differences of the
    base-2 logarithms of memory_d, order, T, kernel, batch and units (the first such row on a tie).

    Examples
    --------
    >>> from lmu_torch.modes import nearest
    >>> nearest("rnn", 1, 256, 784, 784, 100, 212)  # psMNIST's LMU
    ('rnn', 1, 256, 784, 784, 100, 212, 'step')
    """
    want = [math.log2(max(v, 1)) for v in (memory_d, order, steps, kernel, batch, units)]
    best, best_distance = None, math.inf
    for row, logs in zip(CPU_TABLE, _LOGS):  # a plain loop: torch.compile traces it into a constant
        if row[0] != kind:
            continue
        distance = sum((a - b) ** 2 for a, b in zip(logs, want))
        if distance < best_distance:
            best, best_distance = row, distance
    return best


def pick(device_type: str, spec, steps: int, kernel: int, batch: int | None = None) -> str:
    """The mode ``auto`` runs an LTI spec's whole sequence in: ``step``, ``raw`` or ``fft`` (``last`` and the
    one-step and non-LTI cases are decided before, by :meth:`lmu_torch.LMU.pick_mode`).

    ``kernel`` is the length of ``H`` that ``raw`` would convolve with (:meth:`lmu_torch.LMU.raw_length`);
    ``batch`` None is taken as :data:`TABLE_BATCH`. A ``raw`` choice with a kernel longer than
    :data:`RAW_MAX_KERNEL` runs as ``fft``.

    Examples
    --------
    >>> import lmu
    >>> from lmu_torch.modes import pick
    >>> spec = lmu.LMUSpec(input_d=1, memory_d=1, order=256, theta=784, hidden=lmu.Hidden("rnn", 212),
    ...                    input_to_hidden=True)  # psMNIST's LMU
    >>> pick("cpu", spec, 784, 784, 100), pick("cuda", spec, 784, 784, 100), pick("cuda", spec, 20_000, 20_000)
    ('step', 'raw', 'fft')
    """
    if device_type == "cpu":
        kind, units = kind_of(spec)
        mode = nearest(kind, spec.memory_d, spec.order, steps, kernel,
                       batch if isinstance(batch, int) and batch > 0 else TABLE_BATCH, units)[7]
    else:
        mode = "raw"
    return "fft" if mode == "raw" and kernel > RAW_MAX_KERNEL else mode
