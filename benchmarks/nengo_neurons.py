"""Neurons mode and Loihi: the memory's NRMSE against the reference as the neurons per dimension grow.

Prints one row per neuron type: order 6, θ = 1 s (1000 steps of 1 ms), white noise band-limited to 1 Hz with RMS
0.5, 3 s simulated, NRMSE over the last 2 s (after the first θ); ensembles of radius 1.5. Spiking memories are read through the readout
synapse (0.02 s), so the reference is passed through the same lowpass before comparing. Loihi runs on
nengo-loihi's emulator with Loihi's default rates (100–120 Hz) and intercepts (−1 to 0.5).

    python benchmarks/nengo_neurons.py [--sizes 25,50,100,200,400] [--loihi-sizes 25,50,100,200] [--steps 3000]
"""

import argparse
import time
import warnings


import lmu
from lmu.signals import nrmse, white_noise

#: The memory of this input reaches 1.3 in its dimensions 1 and 2: the ensembles' radius covers it.
RADIUS = 1.5
SPEC = lmu.LMUSpec(memory_d=1, order=6, theta=1000, input_d=1, kernel_initializer=None, return_sequences=True)


def memory_nrmse(backend, neurons, steps, **options):
    import nengo

    x = white_noise(steps, cutoff=0.001, rms=0.5, seed=0)[None]
    ref = lmu.run(lmu.build(SPEC), x)[0]
    net = lmu.build(SPEC, backend=backend, neurons=neurons, radius=RADIUS, seed=1, **options)
    started = time.perf_counter()
    got = lmu.run(net, x)[0]
    seconds = time.perf_counter() - started
    syn = net.memory_block.readout_synapse
    if syn is not None:
        ref = nengo.Lowpass(syn).filt(ref, dt=0.001, y0=0)
    return nrmse(got[1000:], ref[1000:]), seconds


def main():
    import nengo

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="25,50,100,200,400,800")
    parser.add_argument("--loihi-sizes", default="25,50,100,200")
    parser.add_argument("--steps", type=int, default=3000)
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",")]
    nengo.rc["decoder_cache"]["enabled"] = "False"
    rows = [("nengo LIFRate", "nengo", sizes, dict(neuron_type=nengo.LIFRate())),
            ("nengo RectifiedLinear", "nengo", sizes, dict(neuron_type=nengo.RectifiedLinear())),
            ("nengo LIF (spiking)", "nengo", sizes, dict(neuron_type=nengo.LIF())),
            ("nengo SpikingRectifiedLinear ×4 rates", "nengo", sizes,
             dict(neuron_type=nengo.SpikingRectifiedLinear(), scale_firing_rates=4.0))]
    if any(b.name == "loihi" and b.available for b in lmu.backends()):
        rows.append(("loihi emulator LIF", "loihi", [int(n) for n in args.loihi_sizes.split(",")], {}))
    print(f"memory NRMSE, order 6, θ = 1 s, 1 Hz white noise, {args.steps} steps")
    for label, backend, ns, options in rows:
        cells = []
        for n in ns:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                err, seconds = memory_nrmse(backend, n, args.steps, **options)
            cells.append(f"N={n}: {err:.3f} ({seconds:.1f}s)")
        print(f"{label:40s} " + "  ".join(cells), flush=True)


if __name__ == "__main__":
    main()
