"""Backend options from anywhere: refused at build with the option's name, or accepted and then working; never
accepted only to crash later with a framework's error (nengo ``dt=inf``, torch ``device="bogus"``)."""

import numpy as np
import pytest
from _generated import count, sizes
from hypothesis import given, settings
from hypothesis import strategies as st

import lmu

SPEC = lmu.LMUSpec(memory_d=1, order=4, theta=10, input_d=1, hidden=lmu.Hidden("dense", 2, "relu"))
VALUES = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.integers(min_value=10**20),
                   st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=6),
                   st.sampled_from(["auto", "step", "fft", "raw", "last", "cpu", "cuda", "cuda:7", "meta", "default",
                                    "sim", "loihi"]),
                   st.lists(st.integers(), max_size=2), st.just(object()), st.just(1e-300), st.just(0.001))
OPTIONS = {
    "numpy": ["mode", "mdoe", "device"],
    "torch": ["mode", "device", "devcie", "dt"],
    "nengo": ["dt", "neurons", "label", "seed", "tau", "radius", "scale_firing_rates", "readout_synapse",
              "neuron_type", "max_rates", "intercepts", "direct", "nuerons"],
}


def _try(backend, options):
    try:
        model = lmu.build(SPEC, backend=backend, **options)
    except lmu.LMUError as err:  # refused at build: the message names the option (or the mode's reason)
        text = str(err)
        assert any(name in text for name in options) or "mode" in text, text
        return
    out = lmu.run(model, np.ones((1, 3, 1)))  # accepted: it must then work
    assert out.shape == (1, 2)


@pytest.mark.parametrize("backend", OPTIONS)
@sizes(ci=60, slow=600)
def test_any_option_value_is_refused_at_build_or_works(backend, examples):
    if backend != "numpy":
        pytest.importorskip(backend)

    @settings(max_examples=examples if backend != "nengo" else max(12, examples // 5))
    @given(name=st.sampled_from(OPTIONS[backend]), value=VALUES, neurons=st.sampled_from([None, 8]))
    def check(name, value, neurons):
        count(f"options:{backend}")
        options = {name: value}
        if backend == "nengo" and neurons is not None and name != "neurons":
            options["neurons"] = neurons
        _try(backend, options)

    check()


@pytest.mark.parametrize("backend, options, words", [
    ("nengo", dict(dt=float("inf")), "option dt must be a time step in seconds > 0"),
    ("nengo", dict(dt=True), "option dt must be"),
    ("nengo", dict(neurons=8, radius="wide"), "radius"),
    ("torch", dict(device="bogus"), "option device must be a device torch has here"),
    ("torch", dict(device="cuda:7"), "option device"),
])
def test_options_accepted_before_and_crashing_later_are_refused_at_build(backend, options, words):
    pytest.importorskip(backend)
    with pytest.raises(lmu.ArgumentError, match=words):
        lmu.build(SPEC, backend=backend, **options)
