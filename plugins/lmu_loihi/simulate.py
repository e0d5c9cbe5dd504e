"""Running a Loihi-built LMU: ``nengo_loihi.Simulator`` with the settings the network needs.

Design rule: the same harness as lmu_nengo's (``lmu_nengo.simulate.run_batch``), with this simulator; nengo-loihi is
imported inside the function, never when the plugin loads.
"""

from __future__ import annotations

__all__ = ["Simulator"]


def Simulator(network, dt=0.001, target=None, **kwargs):
    """``nengo_loihi.Simulator`` for a network that holds a Loihi-built LMU (e.g. with an online readout).

    It keeps passthrough nodes (nengo-loihi 1.1's passthrough removal zeroes what is read downstream of the LMU's
    recurrent memory) and takes the LMU's ``target`` unless given.

    Examples
    --------
    >>> import lmu, lmu_loihi, nengo
    >>> net = lmu.build(lmu.LMUSpec(memory_d=1, order=4, theta=100, input_d=1), backend="loihi", neurons=20)
    >>> with lmu_loihi.Simulator(net) as sim:
    ...     sim.run_steps(10)
    """
    import nengo_loihi

    from lmu_nengo.simulate import all_networks

    if target is None:
        target = next((n.loihi_target for n in all_networks(network) if hasattr(n, "loihi_target")), "sim")
    kwargs.setdefault("progress_bar", False)
    kwargs.setdefault("remove_passthrough", False)
    return nengo_loihi.Simulator(network, dt=dt, target=target, **kwargs)

