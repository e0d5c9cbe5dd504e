"""The two sizes of every generated robustness test, and a counter of generated cases.

Every generated test runs twice over: a few dozen examples in the default run (CI: all of tests/robustness in under
three minutes on two cores), and thousands under ``-m slow`` (``python -m pytest -m slow tests/robustness``). Set
``LMU_COUNT_CASES=FILE`` to append one line per generated case to FILE (what the closing notes count).
"""

import os

import pytest

#: (examples in the default run, examples under -m slow)
CI, SLOW = 250, 5000


def sizes(ci: int = CI, slow: int = SLOW):
    """``@pytest.mark.parametrize("examples", sizes())``: the default run's count, and the slow one's."""
    return pytest.mark.parametrize("examples", [pytest.param(ci, id="ci"),
                                                pytest.param(slow, id="slow", marks=pytest.mark.slow)])


def count(test: str) -> None:
    """Record one generated case of ``test`` (when LMU_COUNT_CASES names a file)."""
    path = os.environ.get("LMU_COUNT_CASES")
    if path:
        with open(path, "a") as f:
            f.write(test + "\n")
