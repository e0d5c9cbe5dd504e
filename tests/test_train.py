"""``lmu train psmnist``: the models' sizes, a short run per backend on small IDX files, the checkpoint's reuse."""

import json

import numpy as np
import pytest

import lmu
from lmu import datasets
from lmu.cli import main
from lmu.train import psmnist_model
from lmu.weights import weight_shapes


def _params(model):
    body = sum(int(np.prod(s)) for s in weight_shapes(model.spec).values())
    return body + (model.spec.output_size + 1) * model.classes


def test_model_sizes_match_the_published_ones():
    assert _params(psmnist_model("lmu")) == 101_771  # keras-lmu's psMNIST example
    assert 165_000 < _params(psmnist_model("lmu-parallel")) < 167_000  # Chilkuri & Eliasmith 2021: ~165k
    assert psmnist_model("lstm").lstm_units == 160
    with pytest.raises(ValueError, match="psmnist model must be one of lmu, lmu-parallel, lstm"):
        psmnist_model("gru")


def _digits_dir(tmp_path, n_train=260, n_test=60):
    """8×8 'digits' whose class is a bright row (10 classes: rows 0–7 and two columns), with noise."""
    rng = np.random.default_rng(0)
    tmp_path.mkdir(parents=True, exist_ok=True)

    def make(n):
        y = rng.integers(0, 10, n).astype(np.uint8)
        x = rng.integers(0, 60, (n, 8, 8)).astype(np.uint8)
        for i, c in enumerate(y):
            if c < 8:
                x[i, c, :] = 250
            else:
                x[i, :, c - 6] = 250
        return x, y

    for split, n in (("train", n_train), ("t10k", n_test)):
        x, y = make(n)
        datasets.write_idx(tmp_path / f"{split}-images-idx3-ubyte.gz", x, compress=True)
        datasets.write_idx(tmp_path / f"{split}-labels-idx1-ubyte", y)
    return tmp_path


def _numpy_accuracy(out, data_dir, limit):
    spec, weights = lmu.load_weights(out / "lmu_weights.npz")
    with np.load(out / "head.npz", allow_pickle=False) as head:
        kernel, bias = head["head/kernel"], head["head/bias"]
    test = datasets.load_psmnist(data_dir, validation=60, limit=limit)["test"]
    logits = lmu.run(lmu.build(spec, weights=weights), test.x) @ kernel + bias
    return float(np.mean(logits.argmax(-1) == test.y))


@pytest.mark.parametrize("backend", ["torch", "keras"])
def test_short_run_writes_curves_and_a_reusable_checkpoint(tmp_path, backend, capsys):
    pytest.importorskip({"torch": "torch", "keras": "keras_lmu"}[backend])
    data_dir = _digits_dir(tmp_path / "data")
    out = tmp_path / "run"
    code = main(["train", "psmnist", "--backend", backend, "--data", str(data_dir), "--epochs", "3", "--limit",
                 "200", "--validation", "60", "--lr", "3e-3", "--out", str(out), "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "test accuracy" in printed and "101,771" in printed  # keras and torch alike (one RNN bias)
    result = json.loads((out / "result.json").read_text())
    assert [h["epoch"] for h in result["history"]] == [1, 2, 3]
    assert result["examples"] == {"train": 200, "validation": 60, "test": 60}
    assert (out / "history.csv").read_text().splitlines()[0].startswith("epoch,train_loss,train_accuracy")
    assert (out / "curves.png").stat().st_size > 1000
    assert result["test_accuracy"] > 0.5  # chance is 0.1: it learned
    # the best checkpoint is canonical LMU weights: numpy gives the same test accuracy
    assert abs(_numpy_accuracy(out, data_dir, 200) - result["test_accuracy"]) <= 1 / 60 + 1e-9
    # what reproduces the run
    record = result["provenance"]
    assert record["command"][:3] == ["lmu", "train", "psmnist"] and "--lr" in record["command"]
    assert record["permutation_seed"] == 0 and record["framework"] and record["lmu"] == lmu.__version__
    assert set(record["data"]["sha256"]) == {p.name for p in data_dir.iterdir()}
    assert all(len(h) == 64 for h in record["data"]["sha256"].values())
    # lmu eval: the saved run, evaluated again with the NumPy reference, gives the recorded accuracy
    assert main(["eval", str(out)]) == 0
    said = capsys.readouterr().out
    assert f"test accuracy {_numpy_accuracy(out, data_dir, 200):.4f} on 60 sequences" in said
    assert f"recorded at training: {result['test_accuracy']:.4f}" in said


def test_lstm_baseline_runs(tmp_path):
    pytest.importorskip("torch")
    data_dir = _digits_dir(tmp_path / "data")
    out = tmp_path / "run"
    assert main(["train", "psmnist", "--model", "lstm", "--data", str(data_dir), "--epochs", "1", "--limit", "100",
                 "--validation", "60", "--out", str(out), "--no-progress"]) == 0
    with np.load(out / "lstm.npz", allow_pickle=False) as f:
        assert f["lstm/weight_hh_l0"].shape == (640, 160)
    assert json.loads((out / "result.json").read_text())["params"] == 4 * 160 * (1 + 160 + 2) + 1610


def test_bad_data_dir_is_one_clear_error(tmp_path, capsys):
    assert main(["train", "psmnist", "--data", str(tmp_path / "missing"), "--epochs", "1"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_a_run_never_overwrites_another(tmp_path):
    from lmu.train import run_directory

    first = tmp_path / "run"
    assert run_directory(first) == first  # not there yet
    first.mkdir()
    assert run_directory(first) == first  # empty
    (first / "result.json").write_text("{}")
    assert run_directory(first) == tmp_path / "run-2"
    (tmp_path / "run-2").mkdir()
    (tmp_path / "run-2" / "history.csv").write_text("")
    assert run_directory(first) == tmp_path / "run-3"
    assert (first / "result.json").read_text() == "{}"


def _run(data_dir, out, backend="torch", epochs=2, *extra):
    return main(["train", "psmnist", "--backend", backend, "--data", str(data_dir), "--epochs", str(epochs),
                 "--limit", "120", "--validation", "60", "--lr", "3e-3", "--out", str(out), "--no-progress", *extra])


@pytest.mark.parametrize("backend", ["torch", "keras"])
def test_an_interrupted_run_resumes_where_it_stopped(tmp_path, backend, monkeypatch, capsys):
    pytest.importorskip({"torch": "torch", "keras": "keras_lmu"}[backend])
    from lmu.checkpoints import Checkpoint

    data_dir = _digits_dir(tmp_path / "data")
    assert _run(data_dir, tmp_path / "whole", backend) == 0
    # the second run is stopped (Ctrl-C) while it saves epoch 2's checkpoint: epoch 1's is what it leaves
    save, calls = Checkpoint.save, []

    def interrupted(self, arrays, record):
        calls.append(record["epoch"])
        if record["epoch"] == 2:
            raise KeyboardInterrupt
        save(self, arrays, record)

    monkeypatch.setattr(Checkpoint, "save", interrupted)
    assert _run(data_dir, tmp_path / "stopped", backend) == 130
    monkeypatch.setattr(Checkpoint, "save", save)
    assert calls == [1, 2] and not (tmp_path / "stopped" / "result.json").exists()
    assert Checkpoint(tmp_path / "stopped" / "checkpoint.npz").load()[1]["epoch"] == 1
    # resumed with nothing but its directory: the same steps as the run that was never stopped
    assert main(["train", "psmnist", "--resume", str(tmp_path / "stopped"), "--no-progress"]) == 0
    whole, resumed = (json.loads((tmp_path / name / "result.json").read_text()) for name in ("whole", "stopped"))
    assert [h["epoch"] for h in resumed["history"]] == [1, 2]
    for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose([h[key] for h in resumed["history"]], [h[key] for h in whole["history"]],
                                   rtol=1e-5, err_msg=key)
    assert resumed["test_accuracy"] == whole["test_accuracy"]
    _, w_whole = lmu.load_weights(tmp_path / "whole" / "lmu_weights.npz")
    _, w_resumed = lmu.load_weights(tmp_path / "stopped" / "lmu_weights.npz")
    for name in w_whole:
        np.testing.assert_allclose(w_resumed[name], w_whole[name], rtol=1e-5, atol=1e-6, err_msg=name)
    assert resumed["provenance"]["resumed"] == [["lmu", "train", "psmnist", "--resume", str(tmp_path / "stopped"),
                                                 "--no-progress"]]
    # and it can go on: --epochs is the total to reach; the optimizer's state came along (its step count)
    assert main(["train", "psmnist", "--resume", str(tmp_path / "stopped"), "--epochs", "3", "--no-progress"]) == 0
    arrays, record = Checkpoint(tmp_path / "stopped" / "checkpoint.npz").load()
    assert record["epoch"] == 3 and [h["epoch"] for h in record["history"]] == [1, 2, 3]
    if backend == "torch":
        assert all(np.all(v == 3 * 2) for k, v in arrays.items() if k.endswith("/step"))  # 2 batches an epoch
    assert any(k.startswith("optim/") for k in arrays)


def test_resume_refuses_other_settings_and_missing_runs(tmp_path, capsys):
    pytest.importorskip("torch")
    data_dir = _digits_dir(tmp_path / "data")
    assert _run(data_dir, tmp_path / "run", "torch", 1) == 0
    capsys.readouterr()
    assert main(["train", "psmnist", "--resume", str(tmp_path / "run"), "--lr", "0.1"]) == 2
    assert "--lr 0.1 differs from the run's 0.003" in capsys.readouterr().err
    assert main(["train", "psmnist", "--resume", str(tmp_path / "nothing")]) == 2
    assert "run.json" in capsys.readouterr().err
    (tmp_path / "fresh").mkdir()
    (tmp_path / "fresh" / "run.json").write_text((tmp_path / "run" / "run.json").read_text())
    assert main(["train", "psmnist", "--resume", str(tmp_path / "fresh")]) == 2
    assert "no checkpoint.npz" in capsys.readouterr().err
    assert main(["train", "psmnist", "--epochs", "1"]) == 2
    assert "needs --data DIR (or --resume RUN_DIR" in capsys.readouterr().err
    (tmp_path / "run" / "checkpoint.npz").write_bytes(b"PK\x03\x04 not a zip")  # a damaged checkpoint
    assert main(["train", "psmnist", "--resume", str(tmp_path / "run")]) == 2
    assert "checkpoint.npz' is corrupt or truncated" in capsys.readouterr().err


def test_train_help_gives_every_default_and_an_example(capsys):
    with pytest.raises(SystemExit):
        main(["train", "psmnist", "--help"])
    said = capsys.readouterr().out
    for text in ("(default: 10;", "(default: 100)", "(default: 0.001)", "(default: torch)", "--resume RUN_DIR",
                 "examples:", "lmu train psmnist --resume runs/lmu"):
        assert text in said, text
