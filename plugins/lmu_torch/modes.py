"""Which mode ``auto`` runs: a pure function of the device type, the shapes and the spec, never of the data.

Design rule: a choice comes from measurements committed here, not from a timing at run time (no warm-up race, no
host sync; under ``torch.compile`` and export the same function of the traced shapes, a symbolic batch counting as
:data:`TABLE_BATCH`). On a CPU, ``auto`` takes the mode that was fastest at the nearest measured shape of
:data:`CPU_TABLE` (``python benchmarks/auto_modes.py`` prints the table); on other devices, where no table is
measured yet, the rule from before: ``raw`` up to :data:`RAW_MAX_KERNEL` steps of kernel and ``fft`` beyond. The
table's ``dense`` rows were measured where ``raw`` runs its projected path (units ≤ order, no initial memory, the
cell in the compute dtype); elsewhere ``raw`` materializes the memory, as it did before the table.
"""

from __future__ import annotations

import math

from lmu.errors import ArgumentError
from lmu.spec import Hidden, LMUSpec

__all__ = ["RAW_MAX_KERNEL", "CPU_TABLE", "KINDS", "TABLE_BATCH", "kind_of", "table_spec", "nearest", "pick"]

#: The longest kernel ``raw`` convolves with when ``auto`` chooses; beyond it the blocked FFT (``fft``) is faster
#: (``python benchmarks/torch_causality.py``: T = 4096 raw 1.6 s vs fft 1.8 s, T = 16384 raw 6.0 s vs fft 3.1 s,
#: order 256, 2 threads).
RAW_MAX_KERNEL = 8192

#: The table's kinds of hidden cell (:func:`kind_of`).
KINDS = ("none", "dense", "rnn")

#: The batch ``pick`` assumes when it is not told one (that of the table's full grid).
TABLE_BATCH = 16

#: ``(kind, memory_d, order, T, kernel, batch, units, fastest)``: one training step (forward, backward, Adam) per
#: mode, the modes timed in turns, on a 2-core AMD EPYC (AVX-512), torch 2.13.0+cpu, 2 threads, 2026-12-03
#: (``python benchmarks/auto_modes.py``, one run, after the step-mode changes of that day; the times, medians,
#: beside each row). ``kind``: ``none`` (memory out, every step), ``dense`` (a dense hidden cell, every step),
#: ``rnn`` (a SimpleRNN, the last step); ``units`` the hidden cell's (1 for none); ``kernel`` the length of ``H``
#: that ``raw`` convolves with (θ = T or T/8). The machine's speed moved up to 1.9× between runs, so near-ties are
#: noise; what the table settles is the large differences (step far ahead for many memories on this CPU, fft
#: rarely fastest).
CPU_TABLE = (
    ('none', 1, 64, 256, 256, 16, 1, 'raw'),  # step 23, raw 6, fft 9 ms
    ('none', 1, 64, 256, 69, 16, 1, 'raw'),  # step 23, raw 6, fft 6 ms
    ('none', 1, 64, 1024, 1024, 16, 1, 'fft'),  # step 65, raw 34, fft 24 ms
    ('none', 1, 64, 1024, 275, 16, 1, 'raw'),  # step 107, raw 15, fft 57 ms
    ('none', 1, 256, 256, 256, 16, 1, 'raw'),  # step 53, raw 29, fft 32 ms
    ('none', 1, 256, 256, 53, 16, 1, 'raw'),  # step 43, raw 10, fft 25 ms
    ('none', 1, 256, 1024, 1024, 16, 1, 'step'),  # step 143, raw 188, fft 208 ms
    ('none', 1, 256, 1024, 213, 16, 1, 'raw'),  # step 156, raw 36, fft 118 ms
    ('none', 16, 64, 256, 256, 16, 1, 'raw'),  # step 62, raw 44, fft 114 ms
    ('none', 16, 64, 256, 69, 16, 1, 'raw'),  # step 60, raw 39, fft 132 ms
    ('none', 16, 64, 1024, 1024, 16, 1, 'step'),  # step 223, raw 789, fft 754 ms
    ('none', 16, 64, 1024, 275, 16, 1, 'step'),  # step 246, raw 326, fft 617 ms
    ('none', 16, 256, 256, 256, 16, 1, 'raw'),  # step 260, raw 240, fft 539 ms
    ('none', 16, 256, 256, 53, 16, 1, 'raw'),  # step 256, raw 215, fft 572 ms
    ('none', 16, 256, 1024, 1024, 16, 1, 'step'),  # step 1522, raw 3190, fft 3753 ms
    ('none', 16, 256, 1024, 213, 16, 1, 'step'),  # step 1200, raw 1965, fft 3494 ms
    ('dense', 1, 64, 256, 256, 16, 64, 'raw'),  # step 30, raw 6, fft 7 ms
    ('dense', 1, 64, 256, 69, 16, 64, 'raw'),  # step 32, raw 4, fft 6 ms
    ('dense', 1, 64, 1024, 1024, 16, 64, 'fft'),  # step 117, raw 58, fft 24 ms
    ('dense', 1, 64, 1024, 275, 16, 64, 'raw'),  # step 103, raw 20, fft 23 ms
    ('dense', 1, 256, 256, 256, 16, 64, 'raw'),  # step 50, raw 7, fft 22 ms
    ('dense', 1, 256, 256, 53, 16, 64, 'raw'),  # step 41, raw 5, fft 18 ms
    ('dense', 1, 256, 1024, 1024, 16, 64, 'raw'),  # step 229, raw 74, fft 103 ms
    ('dense', 1, 256, 1024, 213, 16, 64, 'raw'),  # step 169, raw 24, fft 81 ms
    ('dense', 16, 64, 256, 256, 16, 64, 'raw'),  # step 65, raw 38, fft 75 ms
    ('dense', 16, 64, 256, 69, 16, 64, 'raw'),  # step 56, raw 13, fft 70 ms
    ('dense', 16, 64, 1024, 1024, 16, 64, 'step'),  # step 273, raw 800, fft 729 ms
    ('dense', 16, 64, 1024, 275, 16, 64, 'step'),  # step 222, raw 230, fft 626 ms
    ('dense', 16, 256, 256, 256, 16, 64, 'raw'),  # step 205, raw 38, fft 606 ms
    ('dense', 16, 256, 256, 53, 16, 64, 'raw'),  # step 256, raw 15, fft 624 ms
    ('dense', 16, 256, 1024, 1024, 16, 64, 'raw'),  # step 1169, raw 845, fft 3418 ms
    ('dense', 16, 256, 1024, 213, 16, 64, 'raw'),  # step 884, raw 165, fft 3556 ms
    ('rnn', 1, 64, 256, 256, 16, 64, 'raw'),  # step 55, raw 27, fft 28 ms
    ('rnn', 1, 64, 256, 69, 16, 64, 'raw'),  # step 57, raw 25, fft 30 ms
    ('rnn', 1, 64, 1024, 1024, 16, 64, 'fft'),  # step 226, raw 112, fft 94 ms
    ('rnn', 1, 64, 1024, 275, 16, 64, 'raw'),  # step 174, raw 86, fft 92 ms
    ('rnn', 1, 256, 256, 256, 16, 64, 'raw'),  # step 77, raw 30, fft 43 ms
    ('rnn', 1, 256, 256, 53, 16, 64, 'raw'),  # step 64, raw 27, fft 39 ms
    ('rnn', 1, 256, 1024, 1024, 16, 64, 'fft'),  # step 194, raw 166, fft 147 ms
    ('rnn', 1, 256, 1024, 213, 16, 64, 'raw'),  # step 194, raw 104, fft 149 ms
    ('rnn', 16, 64, 256, 256, 16, 64, 'raw'),  # step 100, raw 67, fft 106 ms
    ('rnn', 16, 64, 256, 69, 16, 64, 'raw'),  # step 87, raw 48, fft 80 ms
    ('rnn', 16, 64, 1024, 1024, 16, 64, 'step'),  # step 254, raw 653, fft 625 ms
    ('rnn', 16, 64, 1024, 275, 16, 64, 'step'),  # step 253, raw 317, fft 582 ms
    ('rnn', 16, 256, 256, 256, 16, 64, 'raw'),  # step 210, raw 172, fft 478 ms
    ('rnn', 16, 256, 256, 53, 16, 64, 'raw'),  # step 240, raw 202, fft 598 ms
    ('rnn', 16, 256, 1024, 1024, 16, 64, 'step'),  # step 885, raw 2342, fft 4267 ms
    ('rnn', 16, 256, 1024, 213, 16, 64, 'step'),  # step 954, raw 1368, fft 3415 ms
    ('none', 1, 256, 256, 256, 100, 1, 'step'),  # step 83, raw 84, fft 172 ms
    ('none', 1, 256, 1024, 1024, 100, 1, 'step'),  # step 530, raw 828, fft 880 ms
    ('none', 16, 256, 256, 256, 100, 1, 'step'),  # step 1723, raw 2102, fft 6008 ms
    ('none', 16, 256, 1024, 1024, 100, 1, 'step'),  # step 13196, raw 24349, fft 29606 ms
    ('dense', 1, 256, 256, 256, 100, 64, 'raw'),  # step 88, raw 22, fft 96 ms
    ('dense', 1, 256, 1024, 1024, 100, 64, 'raw'),  # step 415, raw 363, fft 494 ms
    ('dense', 16, 256, 256, 256, 100, 64, 'raw'),  # step 905, raw 193, fft 2912 ms
    ('dense', 16, 256, 1024, 1024, 100, 64, 'raw'),  # step 4718, raw 4255, fft 26806 ms
    ('rnn', 1, 256, 256, 256, 100, 64, 'raw'),  # step 96, raw 76, fft 113 ms
    ('rnn', 1, 256, 1024, 1024, 100, 64, 'step'),  # step 382, raw 728, fft 709 ms
    ('rnn', 16, 256, 256, 256, 100, 64, 'raw'),  # step 1117, raw 949, fft 3979 ms
    ('rnn', 16, 256, 1024, 1024, 100, 64, 'step'),  # step 4614, raw 17332, fft 29178 ms
    ('rnn', 1, 256, 256, 256, 100, 212, 'step'),  # step 240, raw 248, fft 270 ms
    ('rnn', 1, 256, 784, 784, 100, 212, 'step'),  # step 700, raw 893, fft 747 ms
    ('rnn', 1, 256, 1024, 1024, 100, 212, 'step'),  # step 1004, raw 1146, fft 1039 ms
)


_LOGS = tuple(tuple(math.log2(v) for v in row[1:7]) for row in CPU_TABLE)


def kind_of(spec) -> tuple[str, int]:
    """The table's kind and units for a spec: ``("none", 1)``, ``("dense", units)``, or ``("rnn", units)`` for
    any recurrent hidden cell."""
    if spec.hidden is None:
        return "none", 1
    return ("dense" if spec.hidden.kind == "dense" else "rnn"), spec.hidden.units


def table_spec(kind: str, memory_d: int, order: int, theta: float, units: int = 64):
    """The spec ``benchmarks/auto_modes.py`` times for a row of :data:`CPU_TABLE`: input 4 and a 64-unit cell
    (dense relu every step out, or a SimpleRNN with the last step out), or psMNIST's own LMU for 212 units (input 1,
    ``input_to_hidden``).

    Examples
    --------
    >>> from lmu_torch.modes import table_spec
    >>> table_spec("rnn", 1, 256, 784.0, 212).input_to_hidden
    True
    """
    hidden = {"none": None, "dense": Hidden("dense", units, "relu"), "rnn": Hidden("rnn", units)}[kind]
    psmnist = units == 212
    return LMUSpec(input_d=1 if psmnist else 4, memory_d=memory_d, order=order, theta=float(theta),
                       hidden=hidden, input_to_hidden=psmnist, return_sequences=kind != "rnn")


def nearest(kind: str, memory_d: int, order: int, steps: int, kernel: int, batch: int, units: int) -> tuple:
    """The row of :data:`CPU_TABLE` of this kind nearest to the shape, by the sum of squared differences of the
    base-2 logarithms of memory_d, order, T, kernel, batch and units (the first such row on a tie). ``kind`` is
    one of :func:`kind_of`'s.

    Examples
    --------
    >>> from lmu_torch.modes import nearest
    >>> nearest("rnn", 1, 256, 784, 784, 100, 212)  # psMNIST's LMU
    ('rnn', 1, 256, 784, 784, 100, 212, 'step')
    """
    if kind not in KINDS:
        raise ArgumentError(f"lmu_torch.modes.nearest: kind must be 'none', 'dense' or 'rnn' (got {kind!r})")
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
