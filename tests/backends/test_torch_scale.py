"""The torch backend at scale: DistributedDataParallel (CPU, gloo), torch.compile, torch.autocast and CUDA.

Every check compares against an independent answer (a single-process run, the eager model, the float32 model,
the NumPy reference through the conformance kit, or the CPU model), so each can fail. The CUDA parametrizations
are skipped on a machine without a GPU and say so.
"""

import importlib.util
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import lmu  # noqa: E402
import lmu.testing as kit  # noqa: E402

HAS_CUDA = torch.cuda.is_available()
CUDA_SKIP = "CUDA is not available here (torch.cuda.is_available() is False); this check runs on a GPU machine"
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not HAS_CUDA, reason=CUDA_SKIP))]


def _rel(a, b):
    a = a.detach().double().cpu()
    b = b.detach().double().cpu()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))


# ------------------------------------------------------------------------------------ DistributedDataParallel
# The worker runs as its own script (``python worker.py SPEC_JSON MODE OUT``) so that nothing depends on the
# tests folder being importable in the child; the parent imports the same file to run the single-process
# reference with exactly the same data and training loop.
_WORKER = textwrap.dedent(
    '''
    """One DDP rank: train a torch LMU for a few SGD steps on its half of a fixed batch, save its weights."""
    import os
    import sys

    import numpy as np
    import torch
    import torch.nn.functional as F

    import lmu

    GLOBAL_BATCH, STEPS, LR, TRAIN_STEPS = 8, 50, 0.1, 3


    def data(spec):
        """The fixed global batch and its fixed targets, in the spec's dtype."""
        rng = np.random.default_rng(1234)
        x = rng.normal(size=(GLOBAL_BATCH, STEPS, spec.input_d))
        y = rng.normal(size=(GLOBAL_BATCH, spec.output_size))
        dtype = getattr(torch, spec.dtype)
        return torch.as_tensor(x, dtype=dtype), torch.as_tensor(y, dtype=dtype)


    def train(model, params, x, y):
        """TRAIN_STEPS of plain SGD on the mean squared error over (x, y); ``model`` may be a DDP wrapper."""
        opt = torch.optim.SGD(params.parameters(), lr=LR)
        for _ in range(TRAIN_STEPS):
            opt.zero_grad()
            loss = F.mse_loss(model(x), y)
            loss.backward()
            opt.step()
        return float(loss.detach())


    def main(spec_path, mode, out_path):
        torch.set_num_threads(1)
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
        try:
            with open(spec_path) as fh:
                spec = lmu.LMUSpec.from_json(fh.read())
            model = lmu.build(spec, backend="torch", weights=lmu.init_weights(spec, seed=0), mode=mode)
            ddp = torch.nn.parallel.DistributedDataParallel(model)
            x, y = data(spec)
            half = GLOBAL_BATCH // world
            part = slice(rank * half, (rank + 1) * half)
            train(ddp, ddp, x[part], y[part])
            lmu.save_weights(out_path, spec, ddp.module.get_weights())
        finally:
            torch.distributed.destroy_process_group()


    if __name__ == "__main__":
        main(*sys.argv[1:4])
    '''
)

DDP_TIMEOUT_S = 240


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _load_worker(path):
    spec = importlib.util.spec_from_file_location(f"_lmu_ddp_worker_{os.getpid()}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_ranks(script, spec_path, mode, outs, logs):
    env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()), WORLD_SIZE=str(len(outs)),
               OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    procs = []
    try:
        for rank, (out, log) in enumerate(zip(outs, logs)):
            with open(log, "w") as fh:
                procs.append(subprocess.Popen([sys.executable, str(script), str(spec_path), mode, str(out)],
                                              env=dict(env, RANK=str(rank), LOCAL_RANK=str(rank)),
                                              stdout=fh, stderr=subprocess.STDOUT))
        for rank, proc in enumerate(procs):
            try:
                proc.wait(timeout=DDP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                pytest.fail(f"DDP rank {rank} did not finish within {DDP_TIMEOUT_S} s (a hung rendezvous or "
                            f"collective?); its log:\n{open(logs[rank]).read()[-4000:]}")
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for rank, proc in enumerate(procs):
        log = open(logs[rank]).read()[-4000:]
        assert proc.returncode == 0, f"DDP rank {rank} exited with {proc.returncode}; its log:\n{log}"


DDP_SPEC = dict(memory_d=1, order=16, theta=20.0, input_d=2, hidden=lmu.Hidden("rnn", 8), trainable_theta=True,
                use_bias=True)


@pytest.mark.parametrize("mode,dtype", [("auto", "float64"), ("step", "float64"), ("auto", "float32")])
def test_ddp_two_ranks_equal_single_process_training(tmp_path, mode, dtype):
    spec = lmu.LMUSpec(**DDP_SPEC, dtype=dtype)
    script = tmp_path / "lmu_ddp_worker.py"
    script.write_text(_WORKER)
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(spec.to_json())
    outs = [tmp_path / f"rank{r}.npz" for r in range(2)]
    _run_ranks(script, spec_path, mode, outs, [tmp_path / f"rank{r}.log" for r in range(2)])
    ranks = [lmu.load_weights(p) for p in outs]
    assert all(s == spec for s, _ in ranks)

    # the same three steps in this process, on the whole batch, without DDP
    worker = _load_worker(script)
    model = lmu.build(spec, backend="torch", weights=lmu.init_weights(spec, seed=0), mode=mode)
    if mode == "auto":
        assert model.pick_mode(worker.STEPS) == "raw"  # the parallel path, with θ trainable and a fused nn.RNN
    x, y = worker.data(spec)
    assert x.shape[0] == worker.GLOBAL_BATCH == 8
    worker.train(model, model, x, y)
    single = model.get_weights()

    initial = lmu.init_weights(spec, seed=0)
    names = sorted(initial)
    assert {"theta", "kernel", "bias", "hidden/kernel", "hidden/recurrent_kernel", "hidden/bias"} <= set(names)
    rtol, atol = (1e-10, 1e-12) if dtype == "float64" else (1e-5, 1e-6)
    for name in names:
        w0, w1 = ranks[0][1][name], ranks[1][1][name]
        # (a) training moved every weight, θ included
        assert not np.array_equal(w0, np.asarray(initial[name], dtype=w0.dtype)), f"{name} did not move"
        # (b) the ranks agree exactly: DDP hands both the same all-reduced gradient
        np.testing.assert_array_equal(w0, w1, err_msg=f"ranks disagree on {name}")
        # (c) averaging the two half-batch gradients equals the gradient of the mean loss over all 8
        np.testing.assert_allclose(w0, single[name], rtol=rtol, atol=atol,
                                   err_msg=f"DDP and single-process training disagree on {name}")
    assert abs(float(ranks[0][1]["theta"]) - spec.theta) > 1e-6


# ------------------------------------------------------------------------------------------------ torch.compile
COMPILE_CASES = {
    # fixed θ, dense: FFT memory + dense hidden, one graph once the Ā/B̄/H caches are filled by an eager call
    "dense-fft-fullgraph": (dict(hidden=lmu.Hidden("dense", 5, "tanh"), return_sequences=True), "auto", True),
    # trainable θ: the impulse response's custom autograd.Function traced and differentiated inside the graph
    "dense-theta-fullgraph": (dict(hidden=lmu.Hidden("dense", 5, "tanh"), trainable_theta=True,
                                   return_sequences=True), "auto", True),
    # fused nn.RNN: dynamo graph-breaks around torch's RNN modules (a torch limitation), so not fullgraph
    "rnn-theta": (dict(hidden=lmu.Hidden("rnn", 6), trainable_theta=True, input_to_hidden=True), "auto", False),
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", list(COMPILE_CASES))
def test_torch_compile_matches_eager(case, device):
    kw, mode, fullgraph = COMPILE_CASES[case]
    spec = lmu.LMUSpec(memory_d=1, order=8, theta=16.0, input_d=2, dtype="float32", **kw)
    assert spec.is_lti
    weights = kit.case_weights(spec)
    model = lmu.build(spec, backend="torch", weights=weights, mode=mode, device=device)
    gen = torch.Generator().manual_seed(0)
    xs = [torch.randn(3, 24, 2, generator=gen).to(device) for _ in range(2)]

    def loss_and_grads(fn, x):
        model.zero_grad()
        y = fn(x)
        y.square().mean().backward()
        return y.detach(), {n: p.grad.detach().clone() for n, p in model.named_parameters()}

    eager = [loss_and_grads(model, x) for x in xs]  # also fills the fixed-θ caches (NumPy/SciPy, not traceable)
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=fullgraph)
    for x, (y_ref, g_ref) in zip(xs, eager):
        y, grads = loss_and_grads(compiled, x)
        assert y.shape == y_ref.shape and y.dtype == y_ref.dtype
        torch.testing.assert_close(y, y_ref, atol=1e-5, rtol=1e-5)
        assert sorted(grads) == sorted(g_ref)
        for name in grads:
            assert torch.isfinite(grads[name]).all(), name
            assert _rel(grads[name], g_ref[name]) < 1e-4, f"gradient of {name} differs under torch.compile"
    if spec.trainable_theta:
        assert float(eager[0][1]["theta"].abs()) > 0  # θ's gradient is really checked, not 0 == 0


# ------------------------------------------------------------------------------------------------ torch.autocast
AUTOCAST_CASES = [(kind, mode, dict(hidden=lmu.Hidden(kind, 8), return_sequences=True))
                  for kind in ("dense", "rnn", "lstm") for mode in ("auto", "step")]
AUTOCAST_CASES += [("lstm-hidden-to-memory", "auto", dict(hidden=lmu.Hidden("lstm", 8), hidden_to_memory=True,
                                                          return_sequences=True)),
                   ("rnn-theta", "auto", dict(hidden=lmu.Hidden("rnn", 8), trainable_theta=True))]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name,mode,kw", AUTOCAST_CASES, ids=[f"{n}-{m}" for n, m, _ in AUTOCAST_CASES])
def test_autocast_bfloat16(name, mode, kw, device):
    spec = lmu.LMUSpec(memory_d=1, order=16, theta=30.0, input_d=2, dtype="float32", **kw)
    model = lmu.build(spec, backend="torch", weights=kit.case_weights(spec), mode=mode, device=device)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(3, 50, 2, generator=gen).to(device)

    model.zero_grad()
    y32 = model(x)
    y32.square().mean().backward()
    g32 = {n: p.grad.clone() for n, p in model.named_parameters()}

    for x_in in (x, x.to(torch.bfloat16)):  # float32 input, and bfloat16 input (accepted under autocast)
        model.zero_grad()
        with torch.autocast(device, dtype=torch.bfloat16):
            y, state = model(x_in, return_state=True)
            loss = y.float().square().mean()
        assert y.dtype in (torch.bfloat16, torch.float32)
        assert y.shape == y32.shape
        assert torch.isfinite(y).all()
        tol = 5e-2 if x_in.dtype == torch.float32 else 1e-1  # bf16 input is itself rounded to 3 digits
        assert _rel(y, y32) < tol, f"autocast output is {_rel(y, y32):.3g} away from float32"
        # the memory is computed in the model's dtype whatever autocast does to the hidden cell
        assert state["memory"].dtype == torch.float32
        loss.backward()
        for n, p in model.named_parameters():
            assert p.grad is not None and p.grad.dtype == p.dtype, n
            assert torch.isfinite(p.grad).all(), n
            assert _rel(p.grad, g32[n]) < 0.25, f"gradient of {n} under autocast is far from float32's"
        assert all(p.dtype == torch.float32 for p in model.parameters())


# ------------------------------------------------------------------------------------------------ CUDA
_CUDA_CASE_IDS = ("memory-only-seq-float32", "rnn-tanh-seq-float32", "lstm-seq-float32", "trainable-theta-float32",
                  "everything-float32", "memory-to-memory-float64", "dense-relu-float64", "T-1-float32")
_CUDA_CASES = [c for c in kit.cases(quick=True) if c.id in _CUDA_CASE_IDS]


def _cuda_modes(spec):
    modes = ["auto", "step"]
    if spec.is_lti:
        modes += ["fft", "raw"]
        if not spec.return_sequences and (spec.hidden is None or spec.hidden.kind == "dense"):
            modes.append("last")
    return modes


CUDA_CONFORMANCE = [(c, m) for c in _CUDA_CASES for m in _cuda_modes(c.spec)]


def test_cuda_case_list_is_what_it_says():
    assert sorted(c.id for c in _CUDA_CASES) == sorted(_CUDA_CASE_IDS)


@pytest.mark.skipif(not HAS_CUDA, reason=CUDA_SKIP)
@pytest.mark.parametrize("case,mode", CUDA_CONFORMANCE, ids=[f"{c.id}-{m}" for c, m in CUDA_CONFORMANCE])
def test_cuda_conforms(case, mode, monkeypatch):
    # torch's defaults, pinned: cuDNN may use TF32 for float32 (convolutions and RNNs), cuBLAS matmuls may not.
    # The kit's float32 tolerance (2e-5) holds only if the backend keeps float32 in full precision anyway.
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", True)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    model = lmu.build(case.spec, backend="torch", mode=mode, device="cuda")
    assert model._probe.device.type == "cuda"
    assert all(p.device.type == "cuda" for p in model.parameters())
    kit.assert_conforms("torch", case, mode=mode, device="cuda")


@pytest.mark.skipif(not HAS_CUDA, reason=CUDA_SKIP)
@pytest.mark.parametrize("mode", ["auto", "step"])
@pytest.mark.parametrize("hidden", [lmu.Hidden("rnn", 6), lmu.Hidden("lstm", 4), lmu.Hidden("dense", 5, "tanh")],
                         ids=lambda h: h.kind)
def test_cuda_trainable_theta_backward_equals_cpu(hidden, mode):
    spec = lmu.LMUSpec(memory_d=2, order=12, theta=25.0, input_d=3, hidden=hidden, trainable_theta=True,
                       use_bias=True, return_sequences=True, dtype="float64")
    weights = kit.case_weights(spec)
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(4, 60, 3, dtype=torch.float64, generator=gen)
    target = torch.randn(4, 60, spec.output_size, dtype=torch.float64, generator=gen)
    results = {}
    for device in ("cpu", "cuda"):
        model = lmu.build(spec, backend="torch", weights=weights, mode=mode, device=device)
        loss = ((model(x.to(device)) - target.to(device)) ** 2).mean()
        loss.backward()
        results[device] = (loss.item(), {n: p.grad.detach().cpu() for n, p in model.named_parameters()})
    assert results["cuda"][0] == pytest.approx(results["cpu"][0], rel=1e-10)
    grads_cpu, grads_cuda = results["cpu"][1], results["cuda"][1]
    assert float(grads_cpu["theta"].abs()) > 0
    for name in grads_cpu:
        assert _rel(grads_cuda[name], grads_cpu[name]) < 1e-8, f"cuda gradient of {name} differs from cpu"


LENGTHS_CASES = [("rnn", dict(hidden=lmu.Hidden("rnn", 6)), "auto"), ("rnn", dict(hidden=lmu.Hidden("rnn", 6)), "step"),
                 ("lstm-seq", dict(hidden=lmu.Hidden("lstm", 4), return_sequences=True), "auto"),
                 ("dense", dict(hidden=lmu.Hidden("dense", 5, "tanh")), "auto"),
                 ("dense", dict(hidden=lmu.Hidden("dense", 5, "tanh")), "step")]


@pytest.mark.skipif(not HAS_CUDA, reason=CUDA_SKIP)
@pytest.mark.parametrize("name,kw,mode", LENGTHS_CASES, ids=[f"{n}-{m}" for n, _, m in LENGTHS_CASES])
def test_cuda_lengths_and_state_equal_cpu(name, kw, mode):
    spec = lmu.LMUSpec(memory_d=1, order=8, theta=16.0, input_d=2, dtype="float64", **kw)
    weights = kit.case_weights(spec)
    x = torch.randn(4, 30, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    lengths = torch.tensor([30, 7, 1, 18])
    gen = torch.Generator().manual_seed(4)
    start = {k: 0.3 * torch.randn(shape, dtype=torch.float64, generator=gen)
             for k, shape in spec.state_shapes(4).items()}
    for initial in (None, start):  # a given state takes the free-response path in the parallel modes
        got = {}
        for device in ("cpu", "cuda"):
            model = lmu.build(spec, backend="torch", weights=weights, mode=mode, device=device)
            st = None if initial is None else {k: v.to(device) for k, v in initial.items()}
            y, state = model(x.to(device), st, return_state=True, lengths=lengths)
            got[device] = (y.cpu(), {k: v.cpu() for k, v in state.items()})
        torch.testing.assert_close(got["cuda"][0], got["cpu"][0], rtol=1e-9, atol=1e-12)
        assert sorted(got["cuda"][1]) == sorted(got["cpu"][1])
        for key in got["cpu"][1]:
            torch.testing.assert_close(got["cuda"][1][key], got["cpu"][1][key], rtol=1e-9, atol=1e-12)
