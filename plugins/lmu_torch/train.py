"""``lmu train`` in PyTorch: the psMNIST classifiers and the protocol's loop (what :func:`lmu.train.train` calls).

Design rule: plain PyTorch that a PyTorch user would write (``nn.Sequential``, Adam, ``clip_grad_norm_``), on
the GPU when there is one; everything returned is NumPy, the best checkpoint as canonical LMU weights plus the
head's arrays.
"""

from __future__ import annotations

import platform
import time

import numpy as np
import torch
from torch import nn

import lmu
import lmu.train
from lmu.progress import bar

__all__ = ["fit", "build_classifier"]


class _LastLSTM(nn.Module):
    def __init__(self, units):
        super().__init__()
        self.lstm = nn.LSTM(1, units, batch_first=True)

    def forward(self, x):
        return self.lstm(x)[0][:, -1]


def build_classifier(model, seed: int = 0) -> nn.Sequential:
    """The model as ``nn.Sequential(body, Dropout, Linear)``: body an :class:`lmu_torch.LMU` or an LSTM."""
    torch.manual_seed(seed)
    if model.spec is not None:
        body = lmu.build(model.spec, backend="torch", weights=lmu.init_weights(model.spec, seed))
        features = model.spec.output_size
    else:
        body, features = _LastLSTM(model.lstm_units), model.lstm_units
    return nn.Sequential(body, nn.Dropout(model.head_dropout), nn.Linear(features, model.classes))


def _evaluate(net, x, y, batch):
    net.eval()
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    total, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(y), batch):
            logits = net(x[i:i + batch])
            total += float(loss_fn(logits, y[i:i + batch]))
            correct += int((logits.argmax(-1) == y[i:i + batch]).sum())
    return total / len(y), correct / len(y)


def _state_arrays(net, opt, best_state) -> dict:
    """What a checkpoint holds: the parameters now, the best epoch's parameters, Adam's moments and steps."""
    arrays = {f"model/{k}": v.detach().cpu().numpy() for k, v in net.state_dict().items()}
    arrays.update({f"best/{k}": v.cpu().numpy() for k, v in best_state.items()})
    for index, state in opt.state_dict()["state"].items():
        arrays.update({f"optim/{index}/{k}": torch.as_tensor(v).detach().cpu().numpy() for k, v in state.items()})
    return arrays


def _restore(net, opt, arrays, device) -> dict:
    """Load a checkpoint's arrays into ``net`` and ``opt``; returns the best epoch's parameters."""
    def part(prefix):
        return {k[len(prefix):]: torch.as_tensor(v) for k, v in arrays.items() if k.startswith(prefix)}

    net.load_state_dict(part("model/"))
    saved = opt.state_dict()
    state: dict = {}
    for key, value in part("optim/").items():
        index, name = key.split("/", 1)
        state.setdefault(int(index), {})[name] = value if name == "step" else value.to(device)
    saved["state"] = state
    opt.load_state_dict(saved)
    return {k: v.to(device) for k, v in part("best/").items()}


def fit(model, data, options, checkpoint=None):
    """Train ``model`` on ``data`` with ``options`` (see :func:`lmu.train.train`); with ``checkpoint`` (an
    :class:`lmu.checkpoints.Checkpoint`) save the parameters, Adam's state and the history after every epoch,
    and resume from it when it exists. Each epoch's batch order and dropout masks come from ``(seed, epoch)``, so
    a resumed run takes the same steps as one that was never stopped."""
    device = torch.device(options.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    net = build_classifier(model, options.seed).to(device)
    splits = {name: (torch.as_tensor(s.x, device=device), torch.as_tensor(s.y, device=device))
              for name, s in data.items()}
    x_train, y_train = splits["train"]
    # Keras' Adam (the keras backend's trainer) with its epsilon 1e-7: Keras adds it to √v, torch to √v̂ =
    # √v / √(1 − β₂ᵗ), so the two agree exactly once β₂ᵗ ≈ 0 (after a few thousand steps) and differ by at most
    # that factor in epsilon before
    opt = torch.optim.Adam(net.parameters(), lr=options.lr, eps=1e-7)
    loss_fn = nn.CrossEntropyLoss()
    n, batch = len(y_train), options.batch_size
    steps = -(-n // batch)
    history, best, best_state, best_epoch = [], -1.0, None, 0
    if checkpoint is not None and checkpoint.exists():
        arrays, record = checkpoint.load()
        lmu.train.check_resumable(record, model, "torch", options)
        best_state = _restore(net, opt, arrays, device)
        history, best, best_epoch = record["history"], record["best_accuracy"], record["best_epoch"]
    eval_batch = max(batch, 500)
    for epoch in range(len(history) + 1, options.epochs + 1):
        net.train()
        torch.manual_seed(options.seed * 1_000_003 + epoch)  # this epoch's dropout masks
        order = torch.as_tensor(np.random.default_rng([options.seed, epoch]).permutation(n), device=device)
        progress = bar(steps, f"epoch {epoch}/{options.epochs}", options.progress)
        started = time.perf_counter()
        total, correct = 0.0, 0
        for step in range(steps):
            idx = order[step * batch:(step + 1) * batch]
            xb, yb = x_train[idx], y_train[idx]
            opt.zero_grad(set_to_none=True)
            logits = net(xb)
            loss = loss_fn(logits, yb)
            loss.backward()
            for param in net.parameters():  # per variable, as Keras' clipnorm
                nn.utils.clip_grad_norm_([param], options.clip_norm)
            opt.step()
            total += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(-1) == yb).sum())
            seen = min((step + 1) * batch, n)
            progress.update()
            progress.set_postfix(loss=total / seen, accuracy=correct / seen)
        progress.close()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - started
        val_loss, val_acc = _evaluate(net, *splits["validation"], eval_batch)
        history.append(dict(epoch=epoch, train_loss=total / n, train_accuracy=correct / n, val_loss=val_loss,
                            val_accuracy=val_acc, seconds=seconds))
        if val_acc > best:
            best, best_epoch = val_acc, epoch
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        if checkpoint is not None:
            checkpoint.save(_state_arrays(net, opt, best_state),
                            lmu.train.checkpoint_record(model, "torch", options, history, best_epoch, best))
    net.load_state_dict(best_state)
    test_loss, test_acc = _evaluate(net, *splits["test"], eval_batch)
    body, head = net[0], net[2]
    arrays = {"head/kernel": head.weight.detach().cpu().numpy().T, "head/bias": head.bias.detach().cpu().numpy()}
    weights = None
    if model.spec is not None:
        weights = lmu.get_weights(body)
    else:
        arrays.update({f"lstm/{k}": v.detach().cpu().numpy() for k, v in body.lstm.state_dict().items()})
    hardware = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    return dict(params=sum(p.numel() for p in net.parameters()), history=history, best_epoch=best_epoch,
                test_loss=test_loss, test_accuracy=test_acc, hardware=hardware, framework=f"torch {torch.__version__}",
                weights=weights, arrays=arrays)
