"""What ``lmu backends`` says about nengo_dl in an environment whose TensorFlow is too new (no import needed)."""

import lmu_nengo_dl.backend as dl


def test_too_new_tensorflow_is_explained_with_the_fix(monkeypatch):
    versions = {"tensorflow": "2.21.0", "nengo-dl": None}
    monkeypatch.setattr(dl, "_version", lambda name: versions.get(name))
    reason = dl.NengoDLBackend().unavailable()
    assert reason.startswith("nengo-dl 3.6 needs TensorFlow <= 2.12")
    assert "TensorFlow 2.21.0" in reason and 'dl/bin/pip install "nengo>=3.2" "nengo-dl>=3.6"' in reason
    assert "lmu[" not in reason  # never the package index's unrelated "lmu"
    versions["nengo-dl"] = "3.6.0"
    assert dl.NengoDLBackend().unavailable().startswith("nengo-dl is installed but cannot import")


def test_tensorflow_212_is_not_a_conflict(monkeypatch):
    monkeypatch.setattr(dl, "_version", lambda name: {"tensorflow": "2.12.1"}.get(name))
    reason = dl.NengoDLBackend().unavailable()
    assert reason is None or "TensorFlow" not in reason
