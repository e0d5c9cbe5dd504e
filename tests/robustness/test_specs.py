"""Specs and spec JSON from anywhere: a valid LMUSpec or one SpecError naming the field, nothing else; and every
spec accepted is one the backends can compute (its memory stays bounded in its dtype)."""

import json
import math

import numpy as np
import pytest
from _generated import count, sizes
from hypothesis import given, settings
from hypothesis import strategies as st

import lmu
from lmu import legendre
from lmu.spec import HIDDEN_FIELDS, SPEC_FIELDS

NAMES = [f.name for f in SPEC_FIELDS]
BASE = dict(memory_d=1, order=4, theta=8.0, input_d=1)

# anything a user (or a JSON file) might put in a field
ANYTHING = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**6), max_value=10**6), st.integers(min_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
    st.sampled_from(["zoh", "euler", "bilinear", "float32", "float64", "glorot_uniform", "relu", "rnn", "lstm"]),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.builds(lambda k, u: lmu.Hidden(k, u), st.sampled_from(["dense", "rnn", "lstm"]), st.integers(1, 8)),
    st.just(np.float32(2.5)), st.just(np.int64(3)), st.just(np.float64), st.just(object()))


@sizes()
def test_any_field_value_gives_a_spec_or_a_spec_error_naming_the_field(examples):
    @settings(max_examples=examples)
    @given(field=st.sampled_from(NAMES), value=ANYTHING)
    def check(field, value):
        count("spec:field")
        try:
            spec = lmu.LMUSpec(**{**BASE, field: value})
        except lmu.SpecError as err:
            text = str(err)
            assert text.startswith("LMUSpec") and (field in text or "theta" in text), text
            assert len(text) < 1000
            return
        assert lmu.LMUSpec.from_json(spec.to_json()) == spec  # and every accepted spec round-trips

    check()


@sizes()
def test_any_hidden_value_gives_a_hidden_or_a_spec_error(examples):
    @settings(max_examples=examples)
    @given(field=st.sampled_from([f.name for f in HIDDEN_FIELDS]), value=ANYTHING)
    def check(field, value):
        count("spec:hidden")
        kw = {"kind": "rnn", "units": 3, field: value}
        try:
            lmu.Hidden(**kw)
        except lmu.SpecError as err:
            assert str(err).startswith(f"Hidden.{field}"), str(err)

    check()


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=5),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                      max_size=4), max_leaves=12)


@sizes()
def test_any_json_document_gives_a_spec_or_a_spec_error(examples):
    good = lmu.LMUSpec(**BASE, hidden=lmu.Hidden("rnn", 3)).to_dict()

    @settings(max_examples=examples)
    @given(doc=st.one_of(JSON_VALUES, st.fixed_dictionaries({}, optional={**{k: JSON_VALUES for k in good},
                                                                            "extra": JSON_VALUES})),
           merge=st.booleans())
    def check(doc, merge):
        count("spec:json")
        if merge and isinstance(doc, dict):
            doc = {**good, **doc}
        try:
            lmu.LMUSpec.from_json(json.dumps(doc))
        except lmu.SpecError as err:
            assert len(str(err)) < 2000

    check()


@pytest.mark.parametrize("text, words", [
    ("[" * 30000 + "]" * 30000, "nested too deeply"),
    ('{"memory_d": 1, "order": ' + "9" * 5000 + ', "theta": 8, "input_d": 1}', "no spec field accepts"),
    ('{"memory_d": 1, "order": 4, "theta": 1e999, "input_d": 1}', "theta must be a finite number"),
    ('{"memory_d": 1, "order": 4, "theta": 8, "input_d": 1, "pad": "' + "x" * 70000 + '"}', "at most 65536"),
    (b"\xff\xfe\x00", "not valid JSON"),
])
def test_hostile_json_is_one_spec_error(text, words):
    with pytest.raises(lmu.SpecError, match=words):
        lmu.LMUSpec.from_json(text)


# ------------------------------------------------------------------------------------------------- stability
def _simulate(spec, steps=400):
    """The memory step by step in the spec's dtype, driven by white noise: its largest absolute value."""
    A_bar, B_bar = legendre.discretize(spec.order, spec.theta, spec.discretizer)
    dtype = np.dtype(spec.dtype)
    A_T, B = A_bar.T.astype(dtype), B_bar.astype(dtype)
    m = np.zeros((2, spec.order), dtype)
    u = np.random.default_rng(0).normal(size=(steps, 2, 1)).astype(dtype)
    peak = 0.0
    with np.errstate(all="ignore"):
        for t in range(steps):
            m = m @ A_T + u[t] * B
            peak = max(peak, float(np.max(np.abs(m))))
    return peak


@sizes(ci=60, slow=1500)
def test_a_spec_is_accepted_only_where_its_memory_is_computable(examples):
    """Over order, θ (30 orders of magnitude), discretizer and dtype: an accepted spec's discretized memory is
    finite, stable as stored in its dtype (spectral radius < 1), and stays bounded when stepped; a refused one
    says why, naming θ."""

    @settings(max_examples=examples)
    @given(order=st.integers(1, 48), log_theta=st.floats(-40, 40), discretizer=st.sampled_from(["zoh", "euler",
                                                                                               "bilinear"]),
           dtype=st.sampled_from(["float32", "float64"]))
    def check(order, log_theta, discretizer, dtype):
        count("spec:stability")
        theta = 10.0**log_theta
        try:
            spec = lmu.LMUSpec(memory_d=1, order=order, theta=theta, input_d=1, discretizer=discretizer, dtype=dtype)
        except lmu.SpecError as err:
            assert f"LMUSpec.theta={theta:g} cannot be computed" in str(err), str(err)
            return
        A_bar, B_bar = legendre.discretize(order, theta, discretizer)
        stored = A_bar.astype(dtype).astype(np.float64)
        assert np.isfinite(stored).all() and np.isfinite(B_bar.astype(dtype)).all()
        assert legendre.spectral_radius(stored) < 1
        assert np.isfinite(_simulate(spec))

    check()


@pytest.mark.parametrize("order, theta, discretizer, dtype", [
    (4, 1e-300, "zoh", "float64"),      # Ā and B̄ overflow: all NaN before lmu 0.5
    (256, 1.1 * 6542.0, "euler", "float32"),  # stable in float64, not as float32 rounds it
    (64, 10.0, "euler", "float64"),     # below the stability limit
    (16, 1e9, "zoh", "float32"),        # forgets slower than float32 rounds
    (8, 1e-9, "bilinear", "float32"),   # eigenvalues at -1 to float32 precision
])
def test_known_incomputable_specs_are_refused(order, theta, discretizer, dtype):
    with pytest.raises(lmu.SpecError, match="cannot be computed"):
        lmu.LMUSpec(memory_d=1, order=order, theta=theta, input_d=1, discretizer=discretizer, dtype=dtype)


def test_the_same_system_in_float64_is_accepted_where_float32_is_refused():
    lmu.LMUSpec(memory_d=1, order=16, theta=1e9, input_d=1, dtype="float64")
    spec = lmu.LMUSpec(memory_d=1, order=256, theta=1.1 * 6542.0, input_d=1, discretizer="euler", dtype="float64")
    assert math.isfinite(_simulate(spec, steps=50))


def test_a_trainable_theta_weight_is_held_to_the_same_rule():
    spec = lmu.LMUSpec(memory_d=1, order=8, theta=20.0, input_d=1, trainable_theta=True)
    with pytest.raises(lmu.SpecError, match=r"weight 'theta'=1e\+09 cannot be computed"):
        lmu.init_weights(spec).replace(theta=1e9)
