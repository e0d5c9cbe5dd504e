"""Weights-only Keras 3 files (``model.save_weights("m.weights.h5")``) of a keras-lmu layer → ``lmu.LMUWeights``.

A ``.weights.h5`` file holds no configuration, so the caller gives the spec; this module finds the one keras-lmu
layer whose variables fit it. The file is opened read-only with h5py and only numeric datasets are read (nothing is
unpickled, no Keras object is built).

Layout (observed with Keras 3 and keras-lmu 0.9): each layer is a group, its own variables are the datasets
``vars/0``, ``vars/1``, ... in creation order, and its sub-layers are sub-groups named after the attribute that holds
them. For the three keras-lmu forms, with ``L`` the layer's group:

- ``keras_lmu.LMU``: hidden cell in ``L/hidden_cell``; the LMU's own variables in ``L/layer/cell`` (an RNN of
  ``LMUCell``) or ``L/layer`` (an ``LMUFeedforward``);
- ``keras.layers.RNN(keras_lmu.LMUCell)``: ``L`` is the RNN's ``cell`` group: hidden cell in ``L/hidden_cell``,
  the LMU's variables in ``L``;
- ``keras_lmu.LMUFeedforward``: hidden cell in ``L/hidden_cell``, the LMU's variables in ``L``.

The LMU's variables come in the order ``kernel``, ``bias``, ``theta_inv``, ``recurrent_kernel`` (each only when the
layer has it: ``LMUCell.build``); the hidden cell's in the order ``kernel``, ``recurrent_kernel``, ``bias``
(``Dense``, ``SimpleRNNCell`` and ``LSTMCell``).
"""

import os

import numpy as np

from lmu.errors import ArgumentError, WeightsFileError
from lmu.spec import LMUSpec
from lmu.weights import LMUWeights, weight_shapes

__all__ = ["weights_from_h5"]

_CORE_ORDER = ("kernel", "bias", "theta", "recurrent_kernel")  # theta is stored as theta_inv, a scalar
_HIDDEN_ORDER = ("hidden/kernel", "hidden/recurrent_kernel", "hidden/bias")
_CORE_PLACES = ("", "layer/cell", "layer")  # where a layer group L keeps the LMU's own variables (relative to L)


def _expected(spec):
    shapes = weight_shapes(spec)
    core = [(n, shapes[n]) for n in _CORE_ORDER if n in shapes]
    hidden = [(n, shapes[n]) for n in _HIDDEN_ORDER if n in shapes]
    return core, hidden


def _vars(group):
    """The datasets ``vars/0``, ``vars/1``, ... of a group, in order (None when the group has no ``vars``)."""
    import h5py

    sub = group.get("vars")
    if not isinstance(sub, h5py.Group):
        return None
    keys = list(sub.keys())
    if not all(k.isdigit() for k in keys) or sorted(int(k) for k in keys) != list(range(len(keys))):
        return None
    out = [sub[str(i)] for i in range(len(keys))]
    return out if all(isinstance(d, h5py.Dataset) for d in out) else None


def _fits(datasets, expected):
    return datasets is not None and [tuple(d.shape) for d in datasets] == [tuple(s) for _, s in expected]


def _describe(expected):
    return "[" + ", ".join(f"{n.replace('theta', 'theta_inv') if n == 'theta' else n} {tuple(s)}"
                           for n, s in expected) + "]" if expected else "no variables"


def _shapes(datasets):
    return "[" + ", ".join(str(tuple(d.shape)) for d in datasets) + "]"


def _groups(root):
    """Every group below root (root included), as (path, group)."""
    import h5py

    found = [(root.name, root)]

    def visit(name, obj):
        if isinstance(obj, h5py.Group):
            found.append((obj.name, obj))

    root.visititems(visit)
    return found


def _join(path, rel):
    return path if not rel else (path.rstrip("/") + "/" + rel)


def _match(groups, core, hidden):
    """The (core group path or None, hidden group path or None) pairs that fit the expected shapes."""
    import h5py

    matches = set()
    for path, group in groups:
        if hidden:
            cell = group.get("hidden_cell")
            if not isinstance(cell, h5py.Group) or not _fits(_vars(cell), hidden):
                continue
            hidden_path = _join(path, "hidden_cell")
        else:
            if isinstance(group.get("hidden_cell"), h5py.Group):  # a layer with a hidden cell the spec lacks
                continue
            hidden_path = None
        places = [rel for rel in _CORE_PLACES
                  if isinstance(group.get(rel) if rel else group, h5py.Group)
                  and _vars(group.get(rel) if rel else group)]  # empty vars groups do not count
        if core:
            fitting = [rel for rel in places if _fits(_vars(group.get(rel) if rel else group), core)]
            if len(fitting) != 1 or len(places) != 1:  # the LMU's variables live in exactly one place
                continue
            matches.add((_join(path, fitting[0]), hidden_path))
        elif hidden and not places:  # kernel_initializer=None, no bias: only the hidden cell has variables
            matches.add((None, hidden_path))
    return sorted(matches, key=lambda m: (m[1] or "", m[0] or ""))


def _candidates(file):
    """What the file holds, for error messages: every group with variables and their shapes (at most 12)."""
    lines = []
    for path, group in _groups(file):
        ds = _vars(group)
        if ds is not None:
            lines.append(f"{path}: {_shapes(ds)}")
    more = f" and {len(lines) - 12} more" if len(lines) > 12 else ""
    return ("; ".join(lines[:12]) + more) if lines else "no groups with vars/0, vars/1, ..."


def weights_from_h5(path, spec: LMUSpec, group: str | None = None) -> LMUWeights:
    """The canonical weights of the one keras-lmu layer in a Keras 3 weights-only file.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by ``model.save_weights("m.weights.h5")`` (or ``layer.save_weights``) in Keras 3.
    spec : LMUSpec
        What the layer is (the file holds no configuration): the variables are found by the shapes it implies.
    group : str, optional
        The HDF5 path of the keras-lmu layer's group (e.g. ``"/layers/lmu"``), when several groups fit the spec.

    Returns
    -------
    LMUWeights
        ``theta`` (with ``trainable_theta``) is ``1 / theta_inv``.

    Raises
    ------
    ValueError
        When the file cannot be read as HDF5, is a legacy (Keras 2 style) ``.h5``, or when no group or several
        groups fit the spec; the message names the file, what was expected and what was found.
    """
    import h5py

    if not isinstance(spec, LMUSpec):
        raise ArgumentError(f"weights_from_h5 needs an lmu.LMUSpec (got {type(spec).__name__})")
    path = os.fspath(path)
    core, hidden = _expected(spec)
    if not core and not hidden:
        return LMUWeights(spec, {})
    want = (f"the LMU's variables {_describe(core)}"
            + (f" and a hidden_cell group with {_describe(hidden)}" if hidden else " and no hidden_cell group"))
    try:
        file = h5py.File(path, "r")
    except OSError as err:
        raise WeightsFileError(f"{path!r} is not a readable HDF5 file ({err})") from None
    with file:
        if "model_weights" in file or "layer_names" in file.attrs:
            raise WeightsFileError(f"{path!r} is a legacy (Keras 2 style) .h5 file; lmu reads Keras 3 weights-only "
                                   "files (model.save_weights('m.weights.h5')): load it with Keras and pass the model "
                                   "or layer to lmu.from_keras")
        if group is None:
            groups = _groups(file)
        else:
            chosen = file.get(group)
            if not isinstance(chosen, h5py.Group):
                raise WeightsFileError(f"{path!r} has no group {group!r} (expected a keras-lmu layer's group with "
                                       f"{want}; found {_candidates(file)})")
            groups = [(chosen.name, chosen)]
        matches = _match(groups, core, hidden)
        if not matches:
            raise WeightsFileError(f"no keras-lmu layer in {path!r} fits the spec: expected {want}; found "
                                   f"{_candidates(file)}")
        if len(matches) > 1:
            where = "; ".join(f"LMU variables in {c}" + (f", hidden cell in {h}" if h else "") for c, h in matches)
            raise WeightsFileError(f"several groups in {path!r} fit the spec ({want}): {where}; pass group= (the HDF5 "
                                   "path of the keras-lmu layer) to lmu_keras.h5.weights_from_h5")
        core_path, hidden_path = matches[0]
        arrays = {}
        for names, where in ((core, core_path), (hidden, hidden_path)):
            if not names:
                continue
            for (name, _), ds in zip(names, _vars(file[where])):
                value = np.array(ds[()])
                if value.dtype.kind not in "fiu":
                    raise WeightsFileError(f"{path!r}: {ds.name} holds {value.dtype}, not numbers")
                arrays[name] = value
        if "theta" in arrays:
            theta_inv = arrays["theta"]
            if not (np.isfinite(theta_inv) and theta_inv > 0):
                raise WeightsFileError(f"{path!r}: theta_inv ({core_path}) is {float(theta_inv)!r}; expected a finite "
                                       "number > 0")
            arrays["theta"] = 1.0 / theta_inv
    return LMUWeights(spec, arrays)
