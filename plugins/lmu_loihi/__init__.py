"""lmu_loihi: the Loihi backend of lmu (``lmu.build(spec, backend="loihi")``), run by ``nengo_loihi.Simulator``.

Design rule: importing this package imports neither nengo nor nengo-loihi; the backend imports them when it
builds or runs. The network is lmu_nengo's neurons mode with Loihi's rules applied (see :class:`LoihiBackend`).
"""

from .backend import REFUSALS, LoihiBackend, Simulator

__all__ = ["LoihiBackend", "Simulator", "REFUSALS"]
