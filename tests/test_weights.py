"""The canonical weight layout: names and shapes, initialization, LMUWeights, and .npz files."""

import itertools
import json
import pathlib

import numpy as np
import pytest

import lmu
from lmu import Hidden, LMUSpec, LMUWeights, init_weights, load_weights, save_weights
from lmu.weights import weight_shapes

BASE = dict(memory_d=1, order=4, theta=8, input_d=1)


def make(**changes):
    return LMUSpec(**{**BASE, **changes})


def expected_shapes(spec):
    """The design document's list (docs/design.rst), written out from the spec's fields (independently of the spec's size helpers)."""
    units = spec.hidden.units if spec.hidden is not None else 0
    enc_d = spec.input_d + (units if spec.hidden_to_memory else 0)
    z_d = spec.memory_d * spec.order + (spec.input_d if spec.input_to_hidden else 0)
    out = {}
    if spec.kernel_initializer is not None:
        out["kernel"] = (enc_d, spec.memory_d)
    if spec.use_bias:
        out["bias"] = (spec.memory_d,)
    if spec.memory_to_memory:
        out["recurrent_kernel"] = (spec.memory_d * spec.order, spec.memory_d)
    if spec.trainable_theta:
        out["theta"] = ()
    if spec.hidden is not None:
        k = 4 if spec.hidden.kind == "lstm" else 1
        out["hidden/kernel"] = (z_d, k * units)
        if spec.hidden.kind in ("rnn", "lstm"):
            out["hidden/recurrent_kernel"] = (units, k * units)
        if spec.hidden.use_bias:
            out["hidden/bias"] = (k * units,)
    return out


def all_flag_specs():
    """Every combination of hidden kind and weight-relevant flag (invalid combinations skipped)."""
    specs = []
    for kind, hbias, h2m, m2m, i2h, tt, bias, no_kernel in itertools.product(
        [None, "dense", "rnn", "lstm"], *[[False, True]] * 7
    ):
        if kind is None and (h2m or hbias):
            continue
        hidden = Hidden(kind, 3, use_bias=hbias) if kind else None
        input_d = 2
        memory_d = input_d + (3 if h2m else 0) if no_kernel else 2
        specs.append(LMUSpec(memory_d=memory_d, order=5, theta=10, input_d=input_d, hidden=hidden,
                             hidden_to_memory=h2m, memory_to_memory=m2m, input_to_hidden=i2h, trainable_theta=tt,
                             use_bias=bias, kernel_initializer=None if no_kernel else "glorot_uniform"))
    return specs


FLAG_SPECS = all_flag_specs()


# --------------------------------------------------------------------------------------------------- shapes
def test_weight_shapes_match_design_for_every_kind_and_flag():
    assert len(FLAG_SPECS) > 300
    for spec in FLAG_SPECS:
        shapes = weight_shapes(spec)
        want = expected_shapes(spec)
        assert shapes == want, spec
        assert list(shapes) == list(want), spec  # the documented order


@pytest.mark.parametrize(
    "hidden, want",
    [
        (None, {"kernel": (2, 3)}),
        (Hidden("dense", 5), {"kernel": (2, 3), "hidden/kernel": (12, 5), "hidden/bias": (5,)}),
        (Hidden("rnn", 5), {"kernel": (2, 3), "hidden/kernel": (12, 5), "hidden/recurrent_kernel": (5, 5),
                            "hidden/bias": (5,)}),
        (Hidden("lstm", 5, use_bias=False), {"kernel": (2, 3), "hidden/kernel": (12, 20),
                                             "hidden/recurrent_kernel": (5, 20)}),
    ],
)
def test_weight_shapes_literal(hidden, want):
    assert weight_shapes(make(memory_d=3, order=4, input_d=2, hidden=hidden)) == want


def test_weight_shapes_all_memory_weights():
    spec = make(memory_d=2, order=3, input_d=1, hidden=Hidden("rnn", 4), hidden_to_memory=True,
                memory_to_memory=True, input_to_hidden=True, trainable_theta=True, use_bias=True)
    assert weight_shapes(spec) == {
        "kernel": (5, 2), "bias": (2,), "recurrent_kernel": (6, 2), "theta": (),
        "hidden/kernel": (7, 4), "hidden/recurrent_kernel": (4, 4), "hidden/bias": (4,),
    }


def test_weight_shapes_no_weights_at_all():
    assert weight_shapes(make(kernel_initializer=None)) == {}
    w = init_weights(make(kernel_initializer=None))
    assert len(w) == 0 and dict(w) == {}


def test_weight_shapes_needs_a_spec():
    with pytest.raises(TypeError, match="LMUSpec"):
        weight_shapes({"memory_d": 1})


# --------------------------------------------------------------------------------------------------- init
def test_init_gives_every_weight_in_the_spec_dtype():
    for spec in FLAG_SPECS[::7]:
        for dtype in ("float32", "float64"):
            s = spec.replace(dtype=dtype)
            w = init_weights(s, seed=3)
            assert {n: a.shape for n, a in w.items()} == weight_shapes(s)
            assert all(a.dtype == np.dtype(dtype) for a in w.values())
            assert w.spec is s


def test_init_is_deterministic_by_seed():
    spec = make(memory_d=2, input_d=3, hidden=Hidden("lstm", 4), memory_to_memory=True)
    a, b = init_weights(spec, seed=7), init_weights(spec, seed=7)
    assert a == b
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    assert init_weights(spec) == init_weights(spec, seed=0)
    assert init_weights(spec, seed=np.int64(7)) == a


def test_different_seeds_differ():
    spec = make(memory_d=2, input_d=3, hidden=Hidden("lstm", 4), memory_to_memory=True)
    a, b = init_weights(spec, seed=1), init_weights(spec, seed=2)
    assert a != b
    for name in ("kernel", "recurrent_kernel", "hidden/kernel", "hidden/recurrent_kernel"):
        assert not np.array_equal(a[name], b[name]), name
    np.testing.assert_array_equal(a["hidden/bias"], b["hidden/bias"])  # biases are not random


def test_seed_none_draws_fresh_weights():
    spec = make(input_d=20, memory_d=20)
    assert init_weights(spec, seed=None) != init_weights(spec, seed=None)


@pytest.mark.parametrize("seed, err", [(-1, ValueError), (1.5, TypeError), ("a", TypeError), (True, TypeError)])
def test_bad_seed(seed, err):
    with pytest.raises(err, match=r"seed must be a non-negative integer"):
        init_weights(make(), seed=seed)


def test_glorot_uniform_limits():
    spec = make(memory_d=30, order=4, input_d=50, hidden=Hidden("dense", 40), dtype="float64")
    w = init_weights(spec, seed=0)
    for name, (fan_in, fan_out) in {"kernel": (50, 30), "hidden/kernel": (120, 40)}.items():
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        arr = w[name]
        assert np.abs(arr).max() <= limit
        assert np.abs(arr).max() > 0.95 * limit  # spans the range, not a smaller one
        assert abs(arr.mean()) < 0.05 * limit
        assert np.isclose(arr.std(), limit / np.sqrt(3), rtol=0.05)


def test_lstm_glorot_uses_the_whole_kernel_as_fan_out():
    spec = make(memory_d=2, order=10, hidden=Hidden("lstm", 25))
    limit = np.sqrt(6.0 / (20 + 100))
    k = init_weights(spec)["hidden/kernel"]
    assert np.abs(k).max() <= limit and np.abs(k).max() > 0.9 * limit


@pytest.mark.parametrize(
    "init, bound",
    [("he_uniform", np.sqrt(6 / 40)), ("lecun_uniform", np.sqrt(3 / 40)), ("glorot_normal", 2 * np.sqrt(2 / 70)),
     ("he_normal", 2 * np.sqrt(2 / 40)), ("lecun_normal", 2 * np.sqrt(1 / 40))],
)
def test_other_kernel_initializers_stay_in_bounds(init, bound):
    spec = make(input_d=40, memory_d=30, kernel_initializer=init, dtype="float64")
    k = init_weights(spec)["kernel"]
    if init.endswith("normal"):
        bound /= 0.87962566103423978  # Keras' truncated normal: cut at 2 std of the untruncated draw
    assert np.abs(k).max() <= bound + 1e-12
    assert k.std() > 0.3 * bound


def test_constant_and_orthogonal_kernel_initializers():
    assert np.all(init_weights(make(input_d=3, memory_d=2, kernel_initializer="zeros"))["kernel"] == 0)
    assert np.all(init_weights(make(input_d=3, memory_d=2, kernel_initializer="ones"))["kernel"] == 1)
    k = init_weights(make(input_d=6, memory_d=3, kernel_initializer="orthogonal", dtype="float64"))["kernel"]
    np.testing.assert_allclose(k.T @ k, np.eye(3), atol=1e-12)


@pytest.mark.parametrize("kind, units", [("rnn", 6), ("lstm", 5), ("lstm", 1)])
def test_hidden_recurrent_kernels_are_orthogonal(kind, units):
    spec = make(hidden=Hidden(kind, units), dtype="float64")
    u = init_weights(spec, seed=4)["hidden/recurrent_kernel"]
    # (units, k*units): the rows are orthonormal
    np.testing.assert_allclose(u @ u.T, np.eye(units), atol=1e-12)


def test_memory_recurrent_kernel_is_orthogonal():
    spec = make(memory_d=3, order=5, memory_to_memory=True, dtype="float64")
    r = init_weights(spec, seed=4)["recurrent_kernel"]
    assert r.shape == (15, 3)
    np.testing.assert_allclose(r.T @ r, np.eye(3), atol=1e-12)  # columns orthonormal


def test_orthogonal_in_float32_is_orthogonal_to_float32_precision():
    u = init_weights(make(hidden=Hidden("rnn", 16)))["hidden/recurrent_kernel"]
    np.testing.assert_allclose(u @ u.T, np.eye(16), atol=1e-5)


def test_lstm_forget_gate_bias_is_one():
    units = 3
    b = init_weights(make(hidden=Hidden("lstm", units)))["hidden/bias"]
    np.testing.assert_array_equal(b[:units], 0)
    np.testing.assert_array_equal(b[units:2 * units], 1)
    np.testing.assert_array_equal(b[2 * units:], 0)


@pytest.mark.parametrize("kind", ["dense", "rnn"])
def test_other_biases_are_zero(kind):
    w = init_weights(make(memory_d=3, use_bias=True, hidden=Hidden(kind, 4)), seed=9)
    np.testing.assert_array_equal(w["bias"], np.zeros(3))
    np.testing.assert_array_equal(w["hidden/bias"], np.zeros(4))


def test_theta_weight_is_spec_theta():
    spec = make(theta=784, trainable_theta=True)
    w = init_weights(spec)
    assert w["theta"].shape == () and float(w["theta"]) == 784.0 and w.theta == 784.0
    assert init_weights(make(theta=12.5)).theta == 12.5  # without the weight, spec.theta
    assert "theta" not in init_weights(make(theta=12.5))
    assert w.replace(theta=100.0).theta == 100.0  # the weight wins over spec.theta


def test_init_needs_a_spec():
    with pytest.raises(TypeError, match="LMUSpec"):
        init_weights(BASE)


# --------------------------------------------------------------------------------------------------- LMUWeights
def test_weights_are_read_only():
    w = init_weights(make(hidden=Hidden("rnn", 3)))
    with pytest.raises(ValueError, match="read-only"):
        w["kernel"][0, 0] = 1.0
    with pytest.raises(TypeError):
        w["kernel"] = np.zeros((1, 1))
    with pytest.raises(TypeError):
        del w["kernel"]
    assert not any(a.flags.writeable for a in w.values())


def test_weights_copy_their_input():
    spec = make(input_d=2)
    source = {"kernel": np.ones((2, 1))}
    w = LMUWeights(spec, source)
    source["kernel"][:] = 5
    np.testing.assert_array_equal(w["kernel"], 1)
    assert source["kernel"].flags.writeable  # the caller's array is not frozen


def test_weights_are_checked_and_cast():
    spec = make(input_d=2, dtype="float64")
    w = LMUWeights(spec, {"kernel": [[1], [2]]})
    assert w["kernel"].dtype == np.float64 and w["kernel"].tolist() == [[1.0], [2.0]]
    with pytest.raises(lmu.SpecError, match="missing kernel"):
        LMUWeights(spec, {})
    with pytest.raises(lmu.SpecError, match="unexpected bias"):
        LMUWeights(spec, {"kernel": np.zeros((2, 1)), "bias": np.zeros(1)})
    with pytest.raises(lmu.SpecError, match=r"'kernel' must have shape \(2, 1\)"):
        LMUWeights(spec, {"kernel": np.zeros((1, 2))})
    with pytest.raises(TypeError, match="LMUSpec"):
        LMUWeights(BASE, {})
    with pytest.raises(TypeError, match="mapping"):
        LMUWeights(spec, [("kernel", np.zeros((2, 1)))])


def test_mapping_interface_and_repr():
    spec = make(hidden=Hidden("lstm", 2), use_bias=True)
    w = init_weights(spec)
    assert list(w) == list(weight_shapes(spec)) and len(w) == 5
    assert "kernel" in w and "nope" not in w
    assert set(dict(w)) == set(w.keys())
    assert "hidden/kernel: (4, 8)" in repr(w) and "float32" in repr(w)


def test_replace():
    spec = make(hidden=Hidden("rnn", 3), dtype="float64")
    w = init_weights(spec)
    k2 = np.full((4, 3), 0.5)
    by_name = w.replace(kernel=np.zeros((1, 1)))
    by_map = w.replace({"hidden/kernel": k2})
    both = w.replace({"hidden/kernel": k2}, kernel=np.zeros((1, 1)))
    assert by_name["kernel"].tolist() == [[0.0]] and np.array_equal(by_name["hidden/kernel"], w["hidden/kernel"])
    np.testing.assert_array_equal(by_map["hidden/kernel"], k2)
    assert both == by_name.replace({"hidden/kernel": k2})
    assert w["kernel"].tolist() != [[0.0]]  # the original is untouched
    assert by_name.spec is spec
    with pytest.raises(lmu.SpecError, match="hidden/kernel"):
        w.replace({"hidden/kernel": np.zeros((3, 3))})
    with pytest.raises(lmu.SpecError, match="unexpected bias"):
        w.replace(bias=np.zeros(1))


def test_astype():
    w = init_weights(make(hidden=Hidden("rnn", 3)))
    w64 = w.astype("float64")
    assert w64.spec == w.spec.replace(dtype="float64")
    assert all(a.dtype == np.float64 for a in w64.values())
    assert w64.astype(np.float32) == w


def test_equality():
    spec = make(hidden=Hidden("rnn", 3))
    w = init_weights(spec)
    assert w == init_weights(spec) and not (w != init_weights(spec))
    assert w != init_weights(spec.replace(return_sequences=True))  # another spec
    assert w != w.replace(kernel=w["kernel"] + 1)
    assert (w == dict(w)) is False
    with pytest.raises(TypeError):
        hash(w)


# --------------------------------------------------------------------------------------------------- files
FILE_SPECS = [
    make(),
    make(kernel_initializer=None),
    make(memory_d=2, order=3, input_d=3, hidden=Hidden("lstm", 4), use_bias=True, memory_to_memory=True,
         trainable_theta=True, input_to_hidden=True),
    make(hidden=Hidden("rnn", 3), hidden_to_memory=True, discretizer="bilinear", return_sequences=True),
    make(hidden=Hidden("dense", 2, activation="relu", use_bias=False), dropout=0.2),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("spec", FILE_SPECS, ids=range(len(FILE_SPECS)))
def test_save_load_round_trip(tmp_path, spec, dtype):
    spec = spec.replace(dtype=dtype)
    w = init_weights(spec, seed=5)
    if spec.trainable_theta:
        w = w.replace(theta=3.25)
    path = tmp_path / "weights.npz"
    save_weights(path, spec, w)
    spec2, w2 = load_weights(path)
    assert spec2 == spec
    assert isinstance(w2, LMUWeights) and w2.spec == spec
    assert list(w2) == list(w)
    for name in w:
        assert w2[name].dtype == np.dtype(dtype), name
        np.testing.assert_array_equal(w2[name], w[name])
    assert w2 == w
    assert w2.theta == w.theta


def test_saved_file_is_plain_npz_without_pickles(tmp_path):
    spec = make(hidden=Hidden("rnn", 3))
    path = tmp_path / "w.npz"
    save_weights(str(path), spec, init_weights(spec))
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    assert LMUSpec.from_json(str(arrays.pop("__lmu_spec__"))) == spec
    assert json.loads(str(np.load(path)["__lmu_spec__"]))["schema"] == 1
    assert int(arrays.pop("__lmu_format__")) == 1
    assert set(arrays) == set(weight_shapes(spec))
    assert all(a.dtype != object for a in arrays.values())


def test_save_keeps_the_path_as_given_and_accepts_a_mapping(tmp_path):
    spec = make(input_d=2)
    path = pathlib.Path(tmp_path) / "weights.bin"
    save_weights(path, spec, {"kernel": np.array([[1.0], [2.0]])})
    assert path.exists() and not (tmp_path / "weights.bin.npz").exists()
    spec2, w = load_weights(path)
    assert spec2 == spec and w["kernel"].tolist() == [[1.0], [2.0]] and w["kernel"].dtype == np.float32


def test_save_checks_weights_against_the_spec(tmp_path):
    spec = make(input_d=2)
    with pytest.raises(lmu.SpecError, match="kernel"):
        save_weights(tmp_path / "w.npz", spec, init_weights(make(input_d=3)))
    assert not (tmp_path / "w.npz").exists()


def test_save_weights_of_a_dtype_twin(tmp_path):
    spec64 = make(dtype="float64")
    w32 = init_weights(make())
    save_weights(tmp_path / "w.npz", spec64, w32)  # checked and cast to the given spec
    spec, w = load_weights(tmp_path / "w.npz")
    assert spec == spec64 and w["kernel"].dtype == np.float64
    np.testing.assert_array_equal(w["kernel"], w32["kernel"].astype(np.float64))


def test_loaded_weights_build_the_same_model(tmp_path):
    spec = make(hidden=Hidden("lstm", 3), return_sequences=True)
    w = init_weights(spec, seed=11)
    save_weights(tmp_path / "w.npz", spec, w)
    spec2, w2 = load_weights(tmp_path / "w.npz")
    x = np.random.default_rng(0).normal(size=(2, 12, 1))
    np.testing.assert_array_equal(lmu.run(lmu.build(spec, weights=w), x), lmu.run(lmu.build(spec2, weights=w2), x))
