"""The torch module's parallel paths give the numbers of mode ``step``: explicit ``fft``/``raw`` (which run as
named, the whole sequence, even where only the last step is read), a dense hidden cell computed through the
projected impulse response (:func:`lmu_torch.forward.dense_through_memory`) without the memory tensor, and ``last``
contracted chunk by chunk on long sequences. Outputs, states and gradients (kernel, hidden weights, θ) are compared
with mode ``step`` in float64, with padded lengths and NaN input too. And the loops over time build no
quadratic backward: steps read by ``unbind``, only the returned outputs stacked (checked on the autograd graph).
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import lmu  # noqa: E402
import lmu.testing as kit  # noqa: E402


def _spec(**fields):
    base = dict(memory_d=2, order=12, theta=15.0, input_d=3, hidden=lmu.Hidden("dense", 7, "tanh"),
                input_to_hidden=True, return_sequences=True, dtype="float64")
    return lmu.LMUSpec(**{**base, **fields})


def _pair(spec, mode):
    weights = kit.case_weights(spec)
    return (lmu.build(spec, backend="torch", mode=mode, weights=weights),
            lmu.build(spec, backend="torch", mode="step", weights=weights))


def _grads(model, x, lengths=None):
    model.zero_grad()
    out, state = model(x, return_state=True, lengths=lengths)
    torch.nan_to_num(out).pow(2).sum().backward()
    return out.detach(), {k: v.detach() for k, v in state.items()}, \
        {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def _assert_same(fast, slow, x, lengths=None):
    """Outputs, states and gradients of ``fast`` equal those of ``slow`` (mode ``step``); returns both sides'."""
    (o1, s1, g1), (o2, s2, g2) = _grads(fast, x, lengths), _grads(slow, x, lengths)
    torch.testing.assert_close(o1, o2, rtol=1e-9, atol=1e-9)
    for k in s1:
        torch.testing.assert_close(s1[k], s2[k], rtol=1e-9, atol=1e-9, msg=k)
    for k in g1:
        torch.testing.assert_close(g1[k], g2[k], rtol=1e-7, atol=1e-9, msg=k)
    return (s1, g1), (s2, g2)


@pytest.mark.parametrize("fields", [{}, {"trainable_theta": True}, {"input_to_hidden": False},
                                    {"hidden": lmu.Hidden("dense", 12, "relu"), "memory_d": 1}],
                         ids=["dense", "trainable-theta", "no-input-to-hidden", "units=order"])
def test_dense_hidden_through_the_projected_impulse_response(fields):
    from lmu_torch import forward

    spec = _spec(**fields)
    fast, slow = _pair(spec, "raw")
    assert forward.projects(fast, "raw", None)
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(3, 40, 3)))
    lengths = torch.tensor([40, 17, 1])
    for given in (None, lengths):
        (s1, g1), (s2, g2) = _assert_same(fast, slow, x, given)
        assert s1.keys() == s2.keys()
        assert g1.keys() == g2.keys() and g1


def test_projected_path_puts_nan_where_stepping_does():
    fast, slow = _pair(_spec(), "raw")
    x = torch.from_numpy(np.random.default_rng(1).normal(size=(2, 30, 3)))
    x[0, 11, 1] = float("nan")
    x[1, 5, 0] = float("inf")
    with torch.no_grad():
        (o1, s1), (o2, s2) = fast(x, return_state=True), slow(x, return_state=True)
    assert torch.equal(torch.isnan(o1), torch.isnan(o2)) and torch.isnan(o1[0, 11:]).all()
    assert not torch.isnan(o1[0, :11]).any()
    torch.testing.assert_close(o1[0, :11], o2[0, :11], rtol=1e-9, atol=1e-9)
    assert torch.equal(torch.isnan(s1["memory"]), torch.isnan(s2["memory"]))


def test_projected_path_is_causal_in_float32():
    spec = _spec(dtype="float32", memory_d=1, input_d=1, order=32, theta=200.0)
    model = lmu.build(spec, backend="torch", mode="raw", weights=kit.case_weights(spec)).eval()
    x = torch.randn(2, 784, 1)
    late = x.clone()
    late[:, -1] = 1e30
    with torch.no_grad():
        assert torch.equal(model(x)[:, :-1], model(late)[:, :-1])


@pytest.mark.parametrize("mode", ["fft", "raw"])
@pytest.mark.parametrize("hidden", [None, lmu.Hidden("dense", 5, "relu")], ids=["no-hidden", "dense"])
def test_parallel_modes_on_the_last_step_only_run_as_named(mode, hidden):
    spec = _spec(hidden=hidden, return_sequences=False, input_to_hidden=False)
    fast, slow = _pair(spec, mode)
    assert fast.pick_mode(40) == mode  # an explicit mode is what runs (a user, or P3, measures that mode)
    x = torch.from_numpy(np.random.default_rng(2).normal(size=(3, 40, 3)))
    for lengths in (None, torch.tensor([40, 9, 2])):
        _assert_same(fast, slow, x, lengths)


@pytest.mark.parametrize("fields", [{}, {"trainable_theta": True}, {"hidden": None}], ids=["dense", "theta", "none"])
def test_last_contracts_long_sequences_chunk_by_chunk(monkeypatch, fields):
    from lmu_torch import forward

    spec = _spec(return_sequences=False, input_to_hidden=False, **fields)
    fast, slow = _pair(spec, "last")
    x = torch.from_numpy(np.random.default_rng(4).normal(size=(3, 53, 3)))
    monkeypatch.setattr(forward, "LAST_CHUNK", 8)  # 53 steps: 7 chunks, the first one padded
    for lengths in (None, torch.tensor([53, 17, 45])):
        _assert_same(fast, slow, x, lengths)
    x[2, 40] = float("nan")  # within sequence 2's 45 steps: its outputs are NaN, the others untouched
    lengths = torch.tensor([53, 17, 45])
    with torch.no_grad():
        o1, o2 = fast(x, lengths=lengths), slow(x, lengths=lengths)
    assert torch.isnan(o1[2]).all() and torch.isfinite(o1[:2]).all()
    torch.testing.assert_close(o1, o2, rtol=1e-9, atol=1e-9, equal_nan=True)


@pytest.mark.parametrize("mode", ["last", "fft", "raw"])
@pytest.mark.parametrize("fields", [{}, {"trainable_theta": True}], ids=["fixed", "theta"])
def test_parallel_modes_from_a_given_state(mode, fields):
    # last without lengths adds m0 (Ā^T)ᵀ by one matrix power; the others the free response, which with a
    # trainable θ once failed in backward (legendre.propagate wrote into rows autograd had saved)
    spec = _spec(return_sequences=False, input_to_hidden=False, **fields)
    fast, slow = _pair(spec, mode)
    rng = np.random.default_rng(5)
    x = torch.from_numpy(rng.normal(size=(3, 30, 3)))
    m0 = {"memory": torch.from_numpy(rng.normal(size=(3, spec.memory_d * spec.order))),
          "hidden": torch.from_numpy(rng.normal(size=(3, spec.hidden.units)))}
    for lengths in (None, torch.tensor([30, 11, 4])):
        fast.zero_grad(), slow.zero_grad()
        (o1, s1), (o2, s2) = (m(x, state=m0, return_state=True, lengths=lengths) for m in (fast, slow))
        torch.testing.assert_close(o1, o2, rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(s1["memory"], s2["memory"], rtol=1e-9, atol=1e-9)
        (o1.sum() + s1["memory"].sum()).backward()
        (o2.sum() + s2["memory"].sum()).backward()
        for (name, p1), p2 in zip(fast.named_parameters(), slow.parameters()):
            torch.testing.assert_close(p1.grad, p2.grad, rtol=1e-7, atol=1e-9, msg=name)


def _graph_functions(tensor) -> list:
    """Every node of ``tensor``'s backward graph."""
    seen, nodes, todo = set(), [], [tensor.grad_fn]
    while todo:
        node = todo.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        nodes.append(node)
        todo.extend(next_node for next_node, _ in node.next_functions)
    return nodes


def _graph_nodes(tensor) -> list[str]:
    """The names of every node of ``tensor``'s backward graph."""
    return [type(node).__name__ for node in _graph_functions(tensor)]


@pytest.mark.parametrize("mode, hidden", [("step", lmu.Hidden("rnn", 5)), ("raw", lmu.Hidden("rnn", 5, "sigmoid")),
                                          ("step", lmu.Hidden("lstm", 5, recurrent_activation="tanh"))],
                         ids=["step-input-with-grad", "unfused-rnn", "step-unfused-lstm"])
def test_step_loops_take_steps_without_indexing(mode, hidden):
    """Loops over time read their steps by one ``unbind``: an indexing ``x[:, t]`` per step has a backward that
    builds a zero-filled gradient of the whole sequence each time (quadratic in T: 19 s instead of 0.9 s per
    training step at T 784, batch 100, 212 units), and with an input that requires grad (a stacked LMU) stepping
    did that too."""
    steps = 40
    spec = _spec(hidden=hidden)
    model = lmu.build(spec, backend="torch", mode=mode, weights=kit.case_weights(spec))
    x = torch.randn(2, steps, spec.input_d, dtype=torch.float64, requires_grad=True)
    names = _graph_nodes(model(x))
    assert names.count("UnbindBackward0") >= 1
    assert names.count("SelectBackward0") < 4, names.count("SelectBackward0")


@pytest.mark.parametrize("return_sequences", [False, True])
def test_stepping_keeps_only_the_outputs_it_returns(return_sequences):
    """With only the last step returned (and no lengths), stepping stacks that one output, not all T (whose
    stack and zero-filled gradient were 268 MB each at P2a's sizes); the numbers are mode raw's."""
    steps = 30
    spec = _spec(hidden=None, input_to_hidden=False, return_sequences=return_sequences)
    fast, slow = _pair(spec, "raw")[0], _pair(spec, "step")[1]
    x = torch.randn(2, steps, spec.input_d, dtype=torch.float64, requires_grad=True)
    out = slow(x)
    stacks = [n for n in _graph_functions(out) if type(n).__name__ == "StackBackward0"]
    assert [len(n.next_functions) for n in stacks] == [steps if return_sequences else 1]
    torch.testing.assert_close(out, fast(x), rtol=1e-9, atol=1e-9)


def test_stepping_runs_under_vmap():
    """``torch.func.vmap`` over sequences gives the batch's numbers (an in-place update of the memory product
    would be refused there: the product is unbatched at the first step, the input is batched)."""
    spec = _spec(hidden=lmu.Hidden("rnn", 5), return_sequences=False)
    model = lmu.build(spec, backend="torch", mode="step", weights=kit.case_weights(spec))
    x = torch.randn(3, 9, spec.input_d, dtype=torch.float64)
    mapped = torch.func.vmap(lambda seq: model(seq.unsqueeze(0))[0])(x)
    torch.testing.assert_close(mapped, model(x), rtol=1e-12, atol=1e-12)
