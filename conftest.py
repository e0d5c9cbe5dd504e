"""Pytest configuration for the whole repository (doctests run on lmu/ too).

Tests run under pytest-xdist with one worker per core: each worker keeps its math libraries to one thread, or the
threads of the workers fight over the cores (torch's OpenMP threads spin, and small ops slow down tenfold).
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

collect_ignore = ["lmu/__main__.py", "docs/conf.py", "benchmarks", "plugins"]
