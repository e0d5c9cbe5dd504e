"""LMUSpec and Hidden: validation, defaults, immutability, serialization, helpers and warnings."""

import dataclasses
import json
import warnings

import numpy as np
import pytest

import lmu
from lmu import Hidden, LMUSpec
from lmu.spec import ACTIVATIONS, DTYPES, HIDDEN_KINDS, INITIALIZERS, SCHEMA_VERSION

BASE = dict(memory_d=1, order=4, theta=8, input_d=1)


def make(**changes):
    return LMUSpec(**{**BASE, **changes})


# A broad set of valid specs: every hidden kind, every flag, every discretizer and dtype.
SPECS = [
    make(),
    make(memory_d=3, order=16, theta=100.5, input_d=5),
    make(hidden=Hidden("dense", 7)),
    make(hidden=Hidden("dense", 7, activation="relu", use_bias=False)),
    make(hidden=Hidden("rnn", 212), input_to_hidden=True, order=256, theta=784),
    make(hidden=Hidden("lstm", 5, activation="sigmoid", recurrent_activation="tanh"), input_d=3),
    make(hidden=Hidden("lstm", 4), hidden_to_memory=True, memory_to_memory=True, use_bias=True),
    make(hidden=Hidden("rnn", 3), hidden_to_memory=True, kernel_initializer=None, memory_d=4),
    make(memory_d=2, input_d=2, kernel_initializer=None, memory_to_memory=True, recurrent_dropout=0.3),
    make(discretizer="euler", theta=64),
    make(discretizer="bilinear", trainable_theta=True),
    make(dropout=0.5, return_sequences=True, dtype="float64"),
    make(kernel_initializer="he_normal", use_bias=True),
    make(hidden=Hidden("dense", 2), input_to_hidden=True, memory_to_memory=True, trainable_theta=True,
         return_sequences=True, dtype="float64", discretizer="bilinear", dropout=0.1, recurrent_dropout=0.2),
]


# --------------------------------------------------------------------------------------------------- Hidden
@pytest.mark.parametrize("kind, default", [("dense", "linear"), ("rnn", "tanh"), ("lstm", "tanh")])
def test_hidden_activation_default_depends_on_kind(kind, default):
    h = Hidden(kind, units=3)
    assert h.activation == default
    assert h.recurrent_activation == "sigmoid"
    assert h.use_bias is True
    assert Hidden(kind, 3, activation=None) == h


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("kind", HIDDEN_KINDS)
def test_hidden_explicit_activation_is_kept(kind, activation):
    assert Hidden(kind, 2, activation=activation).activation == activation


def test_hidden_gates():
    assert Hidden("lstm", 3).gates == 4
    assert Hidden("rnn", 3).gates == 1
    assert Hidden("dense", 3).gates == 1


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(kind="gru", units=3), "kind"),
        (dict(kind=None, units=3), "kind"),
        (dict(kind="rnn", units=0), "units"),
        (dict(kind="rnn", units=-2), "units"),
        (dict(kind="rnn", units=2.0), "units"),
        (dict(kind="rnn", units=True), "units"),
        (dict(kind="rnn", units=3, activation="gelu"), "activation"),
        (dict(kind="lstm", units=3, recurrent_activation="hard_sigmoid"), "recurrent_activation"),
        (dict(kind="lstm", units=3, recurrent_activation=None), "recurrent_activation"),
        (dict(kind="rnn", units=3, use_bias=1), "use_bias"),
    ],
)
def test_hidden_validation(kwargs, field):
    with pytest.raises(lmu.SpecError, match=rf"^Hidden\.{field} must be"):
        Hidden(**kwargs)


def test_hidden_is_frozen_and_hashable():
    h = Hidden("rnn", 3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        h.units = 4
    assert hash(h) == hash(Hidden("rnn", 3, activation="tanh"))


# --------------------------------------------------------------------------------------------------- LMUSpec
def test_defaults():
    spec = make()
    assert spec.hidden is None
    assert (spec.hidden_to_memory, spec.memory_to_memory, spec.input_to_hidden) == (False, False, False)
    assert spec.discretizer == "zoh"
    assert spec.trainable_theta is False and spec.use_bias is False and spec.return_sequences is False
    assert spec.kernel_initializer == "glorot_uniform"
    assert spec.dropout == 0.0 and spec.recurrent_dropout == 0.0
    assert spec.dtype == "float32"
    assert isinstance(spec.theta, float) and spec.theta == 8.0


def test_input_d_is_required_and_fields_are_keyword_only():
    with pytest.raises(TypeError, match="input_d"):
        LMUSpec(memory_d=1, order=4, theta=8)
    with pytest.raises(TypeError):
        LMUSpec(1, 4, 8, 1)


@pytest.mark.parametrize(
    "changes, field",
    [
        (dict(memory_d=0), "memory_d"),
        (dict(input_d=0), "input_d"),
        (dict(order=-1), "order"),
        (dict(order=np.float64(4)), "order"),
        (dict(theta=0), "theta"),
        (dict(theta=None), "theta"),
        (dict(theta=np.bool_(True)), "theta"),
        (dict(theta=10**400), "theta"),
        (dict(hidden="rnn"), "hidden"),
        (dict(memory_to_memory="yes"), "memory_to_memory"),
        (dict(return_sequences=None), "return_sequences"),
        (dict(discretizer="ZOH"), "discretizer"),
        (dict(kernel_initializer="random"), "kernel_initializer"),
        (dict(dropout="0.1"), "dropout"),
        (dict(dropout=float("nan")), "dropout"),
        (dict(recurrent_dropout=10**400), "recurrent_dropout"),
        (dict(dtype="complex64"), "dtype"),
        (dict(dtype=np.int32), "dtype"),
    ],
)
def test_spec_validation(changes, field):
    with pytest.raises(lmu.SpecError, match=rf"^LMUSpec\.{field}\b"):
        make(**changes)


def test_long_values_are_shortened_in_messages():
    with pytest.raises(lmu.SpecError) as info:
        make(theta=10**400)
    assert len(str(info.value)) < 200 and str(info.value).endswith("...)")


@pytest.mark.parametrize("init", INITIALIZERS + (None,))
def test_every_initializer_is_accepted(init):
    assert make(kernel_initializer=init).kernel_initializer == init


def test_kernel_initializer_none_with_matching_sizes():
    spec = make(memory_d=5, input_d=2, hidden=Hidden("rnn", 3), hidden_to_memory=True, kernel_initializer=None)
    assert spec.enc_d == spec.memory_d == 5


def test_spec_is_frozen_and_hashable():
    spec = make(hidden=Hidden("rnn", 3))
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.order = 8
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.hidden.units = 8
    assert hash(spec) == hash(make(hidden=Hidden("rnn", 3)))
    assert len({spec, make(hidden=Hidden("rnn", 3)), make()}) == 2


def test_numpy_scalars_and_dtypes_are_accepted_and_normalized():
    spec = LMUSpec(
        memory_d=np.int64(2),
        order=np.int32(4),
        theta=np.float32(8.5),
        input_d=np.uint8(3),
        hidden=Hidden("lstm", np.int16(5), use_bias=np.bool_(False)),
        return_sequences=np.bool_(True),
        dropout=np.float64(0.25),
        dtype=np.float64,
    )
    assert type(spec.memory_d) is int and type(spec.order) is int and type(spec.input_d) is int
    assert type(spec.hidden.units) is int and spec.hidden.units == 5
    assert type(spec.theta) is float and spec.theta == 8.5
    assert spec.return_sequences is True and spec.hidden.use_bias is False
    assert type(spec.dropout) is float and spec.dropout == 0.25
    assert spec.dtype == "float64"
    assert make(dtype=np.dtype("float32")).dtype == "float32"
    assert make(dtype=np.float32).dtype == "float32"
    assert make(theta=np.int32(5)).theta == 5.0
    # and it still serializes
    assert LMUSpec.from_json(spec.to_json()) == spec


@pytest.mark.parametrize("dtype", DTYPES)
def test_dtype_names(dtype):
    assert make(dtype=dtype).dtype == dtype


# --------------------------------------------------------------------------------------------------- helpers
def test_sizes():
    spec = make(memory_d=3, order=5, input_d=2, hidden=Hidden("rnn", 7), hidden_to_memory=True,
                input_to_hidden=True)
    assert spec.memory_size == 15
    assert spec.enc_d == 2 + 7
    assert spec.z_d == 15 + 2
    assert spec.output_size == 7
    plain = make(memory_d=3, order=5, input_d=2)
    assert plain.enc_d == 2 and plain.z_d == 15 and plain.output_size == 15
    assert plain.replace(input_to_hidden=True).output_size == 17


def test_is_lti():
    assert make().is_lti
    assert make(hidden=Hidden("lstm", 2), input_to_hidden=True).is_lti
    assert not make(memory_to_memory=True).is_lti
    assert not make(hidden=Hidden("rnn", 2), hidden_to_memory=True).is_lti


@pytest.mark.parametrize(
    "hidden, keys",
    [(None, ["memory"]), (Hidden("dense", 3), ["memory", "hidden"]), (Hidden("rnn", 3), ["memory", "hidden"]),
     (Hidden("lstm", 3), ["memory", "hidden", "cell"])],
)
def test_state_shapes(hidden, keys):
    spec = make(memory_d=2, order=6, hidden=hidden)
    shapes = spec.state_shapes(4)
    assert list(shapes) == keys
    assert shapes["memory"] == (4, 12)
    for key in keys[1:]:
        assert shapes[key] == (4, 3)
    assert spec.state_shapes()["memory"] == (1, 12)


def test_replace_validates_again():
    spec = make(hidden=Hidden("rnn", 3))
    new = spec.replace(order=16, theta=32)
    assert (new.order, new.theta, new.hidden) == (16, 32.0, spec.hidden)
    assert spec.order == 4  # the original is untouched
    with pytest.raises(lmu.SpecError, match="order"):
        spec.replace(order=0)
    with pytest.raises(lmu.SpecError, match="hidden_to_memory"):
        make().replace(hidden_to_memory=True)
    with pytest.raises(TypeError, match="no_such_field"):
        spec.replace(no_such_field=1)


# --------------------------------------------------------------------------------------------------- serialization
@pytest.mark.parametrize("spec", SPECS, ids=range(len(SPECS)))
def test_round_trips(spec):
    data = spec.to_dict()
    assert list(data)[0] == "schema" and data["schema"] == SCHEMA_VERSION
    assert LMUSpec.from_dict(data) == spec
    assert LMUSpec.from_dict(json.loads(json.dumps(data))) == spec
    text = spec.to_json()
    assert json.loads(text) == data
    assert LMUSpec.from_json(text) == spec
    assert LMUSpec.from_json(text.encode()) == spec
    assert LMUSpec.from_json(spec.to_json(indent=2, sort_keys=True)) == spec


def test_to_dict_is_plain_json():
    spec = make(hidden=Hidden("lstm", 3))
    data = spec.to_dict()
    assert data["hidden"] == {"kind": "lstm", "units": 3, "activation": "tanh", "recurrent_activation": "sigmoid",
                              "use_bias": True}
    assert set(data) == {"schema"} | {f.name for f in dataclasses.fields(LMUSpec)}
    assert make().to_dict()["hidden"] is None


def test_schema_version():
    assert SCHEMA_VERSION == 1
    data = make().to_dict()
    del data["schema"]
    assert LMUSpec.from_dict(data) == make()  # a missing schema means the current one
    data["schema"] = SCHEMA_VERSION
    assert LMUSpec.from_dict(data) == make()


def test_from_dict_keeps_optional_fields_default_and_does_not_mutate_input():
    data = {"memory_d": 1, "order": 4, "theta": 8, "input_d": 1, "hidden": {"kind": "rnn", "units": 2}}
    before = json.loads(json.dumps(data))
    spec = LMUSpec.from_dict(data)
    assert data == before
    assert spec.hidden == Hidden("rnn", 2) and spec.discretizer == "zoh"


def test_from_dict_accepts_a_hidden_instance():
    data = {**make().to_dict(), "hidden": Hidden("dense", 2)}
    assert LMUSpec.from_dict(data).hidden == Hidden("dense", 2)


def test_from_json_refuses_non_finite_theta():
    with pytest.raises(lmu.SpecError, match="theta"):
        LMUSpec.from_json('{"memory_d": 1, "order": 4, "theta": NaN, "input_d": 1}')


# --------------------------------------------------------------------------------------------------- stability
def test_unstable_euler_is_refused_not_warned():
    with pytest.raises(lmu.SpecError, match=r"LMUSpec\.theta=10 cannot be computed with discretizer='euler', "
                                            r"order=64.*euler is stable only for theta above 638\.7.*zoh"):
        make(order=64, theta=10, discretizer="euler")


@pytest.mark.parametrize("discretizer", ["zoh", "bilinear"])
def test_no_warning_for_stable_discretizers(discretizer):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make(order=64, theta=10, discretizer=discretizer)


def test_no_warning_for_stable_euler():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make(order=4, theta=100, discretizer="euler")


def test_instability_is_refused_through_replace_and_json():
    stable = make(order=64, theta=1000, discretizer="euler")
    with pytest.raises(lmu.SpecError, match="cannot be computed"):
        stable.replace(theta=10)
    with pytest.raises(lmu.SpecError, match="cannot be computed"):
        LMUSpec.from_json(stable.replace(discretizer="zoh", theta=10).to_json().replace('"zoh"', '"euler"'))


# --------------------------------------------------------------------------------------------------- the field table
def test_the_field_tables_are_the_dataclasses_fields():
    from lmu.spec import HIDDEN_FIELDS, SPEC_FIELDS

    for cls, table in ((LMUSpec, SPEC_FIELDS), (Hidden, HIDDEN_FIELDS)):
        fields = dataclasses.fields(cls)
        assert [f.name for f in fields] == [f.name for f in table]
        for declared, tabled in zip(fields, table):
            if declared.default is dataclasses.MISSING:
                assert tabled.required, declared.name
            else:
                assert not tabled.required and tabled.default == declared.default, declared.name


def test_json_schema_follows_the_table():
    from lmu.spec import SPEC_FIELDS, json_schema

    schema = json_schema()
    assert list(schema["properties"]) == ["schema"] + [f.name for f in SPEC_FIELDS]
    assert schema["required"] == ["memory_d", "order", "theta", "input_d"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["discretizer"]["enum"] == ["zoh", "euler", "bilinear"]
    assert None in schema["properties"]["kernel_initializer"]["enum"]
    assert schema["properties"]["dropout"] == {"type": "number", "minimum": 0, "exclusiveMaximum": 1,
                                               "description": SPEC_FIELDS[12].help, "default": 0.0}
    hidden = schema["$defs"]["Hidden"]
    assert hidden["required"] == ["kind", "units"] and hidden["properties"]["activation"]["default"] is None
    json.dumps(schema)  # plain JSON
    # every default in the schema is a valid value, and a document of defaults is a valid spec
    doc = {f: p["default"] for f, p in schema["properties"].items() if "default" in p}
    assert LMUSpec.from_dict({**doc, "memory_d": 1, "order": 4, "theta": 8, "input_d": 1}) == make()


@pytest.mark.parametrize("field", ["order", "theta", "dropout", "discretizer", "dtype", "return_sequences"])
def test_messages_come_from_the_table(field):
    from lmu.spec import SPEC_FIELDS

    row = next(f for f in SPEC_FIELDS if f.name == field)
    with pytest.raises(lmu.SpecError) as info:
        make(**{field: "nonsense"})
    assert str(info.value) == f"LMUSpec.{field} must be {row.expected(with_maximum=False)} (got 'nonsense')"


def test_sizes_are_bounded():
    from lmu.spec import MAX_ORDER

    with pytest.raises(lmu.SpecError, match=rf"LMUSpec\.order must be at most {MAX_ORDER} \(got an integer of "
                                            r"about 5000 digits\)"):
        make(order=10**5000)
    with pytest.raises(lmu.SpecError, match=r"more than the 2\.15e\+09 lmu\.spec\.MAX_WEIGHTS allows"):
        make(memory_d=1 << 20, order=4096)


def test_check_input_and_check_state_moved_to_lmu_arrays():
    spec = make(input_d=2)
    with pytest.warns(DeprecationWarning, match="lmu.arrays.check_input"):
        assert spec.check_input(np.zeros((1, 3, 2))).dtype == np.float32
    with pytest.warns(DeprecationWarning, match="lmu.arrays.check_state"):
        assert set(spec.check_state({"memory": np.zeros((1, 4))}, 1)) == {"memory"}
