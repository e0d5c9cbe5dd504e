"""Bad input everywhere: each case gives ONE clear error of the right type whose message names the field/value.

No case may surface as a raw error from deep inside NumPy or SciPy: every refusal is raised by lmu itself, with a
message that says what was wrong and what would be accepted.
"""

import json
import os

import numpy as np
import pytest

import lmu
from lmu import Hidden, LMUSpec
from lmu.reference import NumpyBackend

LMU_DIR = os.path.dirname(os.path.abspath(lmu.__file__))
BASE = dict(memory_d=1, order=4, theta=8, input_d=1)


def make(**changes):
    return LMUSpec(**{**BASE, **changes})


def raised_by_lmu(excinfo):
    """The refusal comes from lmu's own code (not a numpy/scipy frame) and is not chained to a library error."""
    tb = excinfo.tb
    while tb.tb_next is not None:
        tb = tb.tb_next
    filename = os.path.abspath(tb.tb_frame.f_code.co_filename)
    return os.path.dirname(filename) == LMU_DIR and excinfo.value.__cause__ is None


# --------------------------------------------------------------------------------------------------- specs
SPEC_CASES = [
    ("order-0", lambda: make(order=0), r"LMUSpec\.order must be a positive integer \(got 0\)"),
    ("order-negative", lambda: make(order=-1), r"LMUSpec\.order must be a positive integer \(got -1\)"),
    ("order-float", lambda: make(order=2.5), r"LMUSpec\.order must be a positive integer \(got 2\.5\)"),
    ("order-string", lambda: make(order="8"), r"LMUSpec\.order must be a positive integer \(got '8'\)"),
    ("order-bool", lambda: make(order=True), r"LMUSpec\.order must be a positive integer \(got True\)"),
    ("theta-0", lambda: make(theta=0), r"LMUSpec\.theta must be a finite number > 0 \(got 0\)"),
    ("theta-negative", lambda: make(theta=-3), r"^LMUSpec\.theta must be a finite number > 0 \(got -3\)$"),
    ("theta-nan", lambda: make(theta=float("nan")), r"LMUSpec\.theta must be a finite number > 0 \(got nan\)"),
    ("theta-inf", lambda: make(theta=float("inf")), r"LMUSpec\.theta must be a finite number > 0 \(got inf\)"),
    ("theta-string", lambda: make(theta="784"), r"LMUSpec\.theta must be a finite number > 0 \(got '784'\)"),
    ("theta-huge-int", lambda: make(theta=10**400), r"LMUSpec\.theta must be a finite number > 0 \(got 1000"),
    ("memory_d-0", lambda: make(memory_d=0), r"LMUSpec\.memory_d must be a positive integer \(got 0\)"),
    ("discretizer", lambda: make(discretizer="rk4"),
     r"LMUSpec\.discretizer must be one of 'zoh', 'euler', 'bilinear' \(got 'rk4'\)"),
    ("hidden-kind", lambda: make(hidden=Hidden("gru", 3)),
     r"Hidden\.kind must be one of 'dense', 'rnn', 'lstm' \(got 'gru'\)"),
    ("hidden-units-0", lambda: Hidden("rnn", units=0), r"Hidden\.units must be a positive integer \(got 0\)"),
    ("hidden-activation", lambda: Hidden("rnn", 3, activation="gelu"),
     r"Hidden\.activation must be one of 'linear', 'tanh', 'relu', 'sigmoid' \(got 'gelu'\)"),
    ("hidden-not-a-Hidden", lambda: make(hidden={"kind": "rnn", "units": 3}), r"LMUSpec\.hidden must be None or"),
    ("hidden_to_memory-without-hidden", lambda: make(hidden_to_memory=True),
     r"LMUSpec\.hidden_to_memory=True needs a hidden cell \(got hidden=None\)"),
    ("no-kernel-size-mismatch", lambda: make(kernel_initializer=None, input_d=3, memory_d=2),
     r"LMUSpec\.kernel_initializer=None .* input_d \(3\) must equal memory_d \(2\)"),
    ("kernel_initializer-unknown", lambda: make(kernel_initializer="xavier"),
     r"LMUSpec\.kernel_initializer must be one of 'glorot_uniform'.* \(got 'xavier'\)"),
    ("dropout-1", lambda: make(dropout=1.0), r"LMUSpec\.dropout must be a number in \[0, 1\) \(got 1\.0\)"),
    ("dropout-negative", lambda: make(dropout=-0.1), r"LMUSpec\.dropout must be a number in \[0, 1\) \(got -0\.1\)"),
    ("recurrent_dropout-without-memory_to_memory", lambda: make(recurrent_dropout=0.2),
     r"LMUSpec\.recurrent_dropout=0\.2 .*set memory_to_memory=True"),
    ("dtype-unknown", lambda: make(dtype="int32"),
     r"LMUSpec\.dtype must be one of 'float32', 'float64', 'float16', 'bfloat16' \(got 'int32'\)"),
    ("bool-field-not-bool", lambda: make(return_sequences="yes"),
     r"LMUSpec\.return_sequences must be True or False \(got 'yes'\)"),
]


@pytest.mark.parametrize("make_it, pattern", [c[1:] for c in SPEC_CASES], ids=[c[0] for c in SPEC_CASES])
def test_bad_spec(make_it, pattern):
    with pytest.raises(lmu.SpecError, match=pattern) as info:
        make_it()
    assert isinstance(info.value, ValueError)
    assert raised_by_lmu(info)


# --------------------------------------------------------------------------------------------------- JSON
GOOD = make(hidden=Hidden("rnn", 3)).to_dict()


def doc(**changes):
    return json.dumps({**GOOD, **changes})


JSON_CASES = [
    ("unknown-key", doc(speed=3),
     r"unknown LMUSpec field\(s\) 'speed'; valid fields are memory_d, order, theta, input_d, hidden"),
    ("unknown-hidden-key", doc(hidden={"kind": "rnn", "units": 3, "size": 4}),
     r"unknown Hidden field\(s\) 'size'; valid fields are kind, units, activation"),
    ("wrong-type-order", doc(order="4"), r"LMUSpec\.order must be a positive integer \(got '4'\)"),
    ("wrong-type-theta", doc(theta=[8]), r"LMUSpec\.theta must be a finite number > 0 \(got \[8\]\)"),
    ("wrong-type-hidden", doc(hidden=[1, 2]), r"spec 'hidden' must be null or an object with kind and units"),
    ("hidden-without-units", doc(hidden={"kind": "rnn"}), r"spec 'hidden' needs 'kind' and 'units'"),
    ("future-schema", doc(schema=2), r"spec schema 2 is newer than this lmu understands \(1\): upgrade lmu"),
    ("bad-schema", doc(schema="one"), r"spec 'schema' must be a positive integer \(got 'one'\)"),
    ("not-json", "memory_d = 1, order = 4", r"spec is not valid JSON \(Expecting value at line 1 column 1\)"),
    ("json-not-an-object", "[1, 4, 8, 1]", r"an LMU spec must be a JSON object / dict \(got list\)"),
    ("missing-fields", '{"memory_d": 1, "order": 4}', r"spec is missing the required field\(s\) theta, input_d"),
]


@pytest.mark.parametrize("text, pattern", [c[1:] for c in JSON_CASES], ids=[c[0] for c in JSON_CASES])
def test_bad_json(text, pattern):
    with pytest.raises(lmu.SpecError, match=pattern) as info:
        LMUSpec.from_json(text)
    assert raised_by_lmu(info)


def test_from_json_of_a_non_string():
    with pytest.raises(lmu.SpecError, match=r"from_json needs a JSON string \(got dict\)"):
        LMUSpec.from_json(GOOD)


# --------------------------------------------------------------------------------------------------- weight files
SPEC = make(memory_d=2, input_d=3, hidden=Hidden("lstm", 2))
UNPICKLED = []


def _tripped(note):
    UNPICKLED.append(note)


class Tripwire:
    """Records it if anything ever unpickles it."""

    def __reduce__(self):
        return (_tripped, ("unpickled!",))


def arrays_of(spec=SPEC):
    arrays = {name: np.asarray(a) for name, a in lmu.init_weights(spec).items()}
    arrays["__lmu_spec__"] = np.array(spec.to_json())
    return arrays


def write_npz(path, arrays):
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)
    return path


def valid_file(path):
    lmu.save_weights(path, SPEC, lmu.init_weights(SPEC))
    return path


def missing_array(path):
    arrays = arrays_of()
    del arrays["hidden/recurrent_kernel"]
    return write_npz(path, arrays)


def wrong_shape(path):
    return write_npz(path, {**arrays_of(), "kernel": np.zeros((4, 2), np.float32)})


def wrong_dtype(path):
    return write_npz(path, {**arrays_of(), "hidden/kernel": np.zeros((8, 8), np.float64)})


def pickled_object_array(path):
    return write_npz(path, {**arrays_of(), "kernel": np.array([[Tripwire()] * 2] * 3, dtype=object)})


def truncated(path):
    data = valid_file(path).read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def not_a_zip(path):
    path.write_text("kernel,bias\n1.0,2.0\n")
    return path


def empty(path):
    path.write_bytes(b"")
    return path


def single_npy(path):
    with open(path, "wb") as fh:
        np.save(fh, np.zeros(3, np.float32))
    return path


def no_spec(path):
    arrays = arrays_of()
    del arrays["__lmu_spec__"]
    return write_npz(path, arrays)


def future_format(path):
    return write_npz(path, {**arrays_of(), "__lmu_format__": np.array(7)})


def invalid_stored_spec(path):
    return write_npz(path, {**arrays_of(), "__lmu_spec__": np.array(json.dumps({**SPEC.to_dict(), "order": 0}))})


def foreign_zip_member(path):
    import zipfile

    valid_file(path)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("README.txt", "not an array")
    return path


FILE_CASES = [
    ("missing-array", missing_array, lmu.SpecError, r"weights do not fit the spec \(missing hidden/recurrent_kernel\)"),
    ("wrong-shape", wrong_shape, lmu.SpecError,
     r"weight 'kernel' must have shape \(3, 2\) for this spec \(got \(4, 2\)\)"),
    ("wrong-dtype", wrong_dtype, lmu.SpecError,
     r"weight 'hidden/kernel' has dtype float64 but the spec's dtype is float32"),
    ("pickled-object-array", pickled_object_array, lmu.WeightsFileError,
     r"holds a pickled object array; lmu never unpickles"),
    ("truncated", truncated, lmu.WeightsFileError, r"is corrupt or truncated"),
    ("not-a-zip", not_a_zip, lmu.WeightsFileError, r"is not an LMU weights file .* does not start with a zip header"),
    ("empty", empty, lmu.WeightsFileError, r"is not an LMU weights file .* it is empty"),
    ("single-npy", single_npy, lmu.WeightsFileError, r"is a single \.npy array, not an LMU weights archive"),
    ("no-spec-inside", no_spec, lmu.WeightsFileError, r"has no __lmu_spec__ entry"),
    ("future-file-format", future_format, lmu.WeightsFileError,
     r"uses weights file format 7, newer than this lmu reads \(1\)"),
    ("invalid-stored-spec", invalid_stored_spec, lmu.SpecError,
     r"the stored spec is invalid: LMUSpec\.order must be a positive integer \(got 0\)"),
    ("foreign-zip-member", foreign_zip_member, lmu.WeightsFileError, r"entry 'README\.txt' is not a \.npy array"),
]


@pytest.mark.parametrize("write, err, pattern", [c[1:] for c in FILE_CASES], ids=[c[0] for c in FILE_CASES])
def test_bad_weights_file(tmp_path, write, err, pattern):
    path = write(tmp_path / "weights.npz")
    with pytest.raises(err, match=pattern) as info:
        lmu.load_weights(path)
    assert type(info.value) is err
    assert isinstance(info.value, ValueError)  # what lmu 0.4 raised, still caught by ``except ValueError``
    assert str(path) in str(info.value)  # names the file
    assert raised_by_lmu(info)
    assert UNPICKLED == []


def test_missing_weights_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no LMU weights file at .*nope\.npz"):
        lmu.load_weights(tmp_path / "nope.npz")


def test_bad_weights_in_memory():
    with pytest.raises(lmu.SpecError, match=r"weight 'kernel' must be an array of shape \(3, 2\)"):
        lmu.LMUWeights(SPEC, {**lmu.init_weights(SPEC), "kernel": [[1, 2], [3]]})
    with pytest.raises(TypeError, match=r"weight 'kernel' must be a real numeric array \(got dtype complex128\)"):
        lmu.LMUWeights(SPEC, {**lmu.init_weights(SPEC), "kernel": np.zeros((3, 2), complex)})
    with pytest.raises(lmu.SpecError, match=r"weight 'theta' must be a finite number > 0 \(got -1\.0\)"):
        lmu.init_weights(make(trainable_theta=True)).replace(theta=-1.0)
    with pytest.raises(ValueError, match=r"seed must be a non-negative integer or None \(got -1\)"):
        lmu.init_weights(SPEC, seed=-1)


# --------------------------------------------------------------------------------------------------- run() input
@pytest.fixture(scope="module")
def model():
    return lmu.build(make(input_d=2, hidden=Hidden("lstm", 3)))


INPUT_CASES = [
    ("rank-2", np.zeros((5, 2)), ValueError,
     r"input x must have shape \(batch, T, 2\), 3 axes \(got shape \(5, 2\); add a batch axis with x\[None\]\)"),
    ("rank-4", np.zeros((1, 5, 2, 1)), ValueError, r"3 axes \(got shape \(1, 5, 2, 1\)\)"),
    ("feature-size", np.zeros((1, 5, 3)), ValueError, r"input x has 3 features but LMUSpec\.input_d is 2"),
    ("T-0", np.zeros((1, 0, 2)), ValueError, r"at least one sequence and one time step \(got shape \(1, 0, 2\)\)"),
    ("complex", np.zeros((1, 5, 2), complex), TypeError, r"input x must hold real numbers \(got a complex array\)"),
    ("object", np.zeros((1, 5, 2), object), TypeError, r"input x must hold real numbers \(got dtype object\)"),
    ("strings", np.full((1, 5, 2), "a"), TypeError, r"input x must hold real numbers \(got dtype <U1\)"),
    ("ragged", [[[1.0, 2.0]], [[1.0, 2.0], [3.0, 4.0]]], ValueError, r"input x must be an array of shape"),
]


@pytest.mark.parametrize("x, err, pattern", [c[1:] for c in INPUT_CASES], ids=[c[0] for c in INPUT_CASES])
def test_bad_run_input(model, x, err, pattern):
    with pytest.raises(err, match=pattern) as info:
        lmu.run(model, x)
    assert raised_by_lmu(info)


def good_state(batch=1):
    return {"memory": np.zeros((batch, 4)), "hidden": np.zeros((batch, 3)), "cell": np.zeros((batch, 3))}


STATE_CASES = [
    ("missing-key", {"memory": np.zeros((1, 4))}, ValueError,
     r"state must have exactly the keys \['cell', 'hidden', 'memory'\] \(got \['memory'\]\)"),
    ("extra-key", {**good_state(), "carry": np.zeros((1, 3))}, ValueError,
     r"state must have exactly the keys .*'carry'"),
    ("wrong-shape", {**good_state(), "memory": np.zeros((1, 5))}, ValueError,
     r"state\['memory'\] must have shape \(1, 4\) \(got \(1, 5\)\)"),
    ("wrong-batch", good_state(batch=2), ValueError, r"state\['memory'\] must have shape \(1, 4\) \(got \(2, 4\)\)"),
    ("not-a-dict", [np.zeros((1, 4))], TypeError, r"state must be a dict with keys"),
    ("complex-state", {**good_state(), "cell": np.zeros((1, 3), complex)}, TypeError,
     r"state\['cell'\] must hold real numbers"),
    ("string-state", {**good_state(), "hidden": np.full((1, 3), "x")}, TypeError,
     r"state\['hidden'\] must hold real numbers"),
]


@pytest.mark.parametrize("state, err, pattern", [c[1:] for c in STATE_CASES], ids=[c[0] for c in STATE_CASES])
def test_bad_state(model, state, err, pattern):
    with pytest.raises(err, match=pattern) as info:
        lmu.run(model, np.zeros((1, 5, 2)), state=state)
    assert raised_by_lmu(info)


# --------------------------------------------------------------------------------------------------- registry
class NotInstalled(NumpyBackend):
    name = "xyz_test_backend"
    extra = "xyz"
    requires = ("surely_not_a_module_xyz",)


class Picky(NumpyBackend):
    name = "picky_test_backend"

    def check(self, spec):
        return ["no hidden cell is not supported"] if spec.hidden is None else []


@pytest.fixture
def registered():
    names = []

    def add(backend):
        instance = lmu.register(backend)
        names.append(instance.name)
        return instance

    yield add
    for name in names:
        lmu.registry.unregister(name)


def test_unknown_backend_lists_known_backends():
    with pytest.raises(lmu.BackendUnavailable, match=r"unknown backend 'no_such'; known backends: .*numpy"):
        lmu.build(make(), backend="no_such")


def test_missing_backend_says_what_to_install(registered):
    registered(NotInstalled)
    with pytest.raises(lmu.BackendUnavailable, match=r"backend 'xyz_test_backend' is not installed") as info:
        lmu.build(make(), backend="xyz_test_backend")
    assert "pip install surely_not_a_module_xyz" in str(info.value)  # 'xyz' is no extra of lmu: the module
    assert "lmu[" not in str(info.value)  # never the package index's unrelated "lmu"
    assert isinstance(info.value, ImportError)
    row = [b for b in lmu.backends() if b.name == "xyz_test_backend"][0]
    assert not row.available and "pip install surely_not_a_module_xyz" in row.reason
    lmu.registry.unregister("xyz_test_backend")
    assert "xyz_test_backend" not in [b.name for b in lmu.backends()]


def test_unsupported_spec(registered):
    registered(Picky)
    assert lmu.spec_of(lmu.build(make(hidden=Hidden("rnn", 2)), backend="picky_test_backend")).hidden is not None
    with pytest.raises(lmu.UnsupportedSpec,
                       match=r"backend 'picky_test_backend' cannot build this spec: no hidden cell is not supported"):
        lmu.build(make(), backend="picky_test_backend")


def test_build_needs_a_spec():
    with pytest.raises(TypeError, match=r"lmu\.build needs an lmu\.LMUSpec \(got dict\)"):
        lmu.build(dict(BASE))


def test_run_needs_an_lmu_object():
    with pytest.raises(TypeError, match=r"object object was not built by an lmu backend"):
        lmu.run(object(), np.zeros((1, 3, 1)))


def test_build_with_weights_for_another_spec():
    with pytest.raises(lmu.SpecError, match=r"weight 'kernel' must have shape \(1, 1\) for this spec"):
        lmu.build(make(), weights={"kernel": np.zeros((2, 1))})

