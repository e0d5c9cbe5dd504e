"""The example third-party backend in examples/lmu-echo-backend: pip-installed, discovered, and conformant."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "lmu-echo-backend"

SCRIPT = """
import lmu, lmu.testing as kit
row = next(b for b in lmu.backends() if b.name == "echo")
print("provider", row.provider, "available", row.available)
report = kit.check_backend("echo")
refused = {r.case for r in report.results if r.refused}
print("passed", report.passed, "refused", len(refused), "of", len(kit.cases()), "max", report.max_error)
assert report.passed and 0 < len(refused) < len(kit.cases())
"""


def test_example_plugin_installs_is_discovered_and_conforms(tmp_path):
    target = tmp_path / "site"
    try:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
                        str(EXAMPLE)], check=True, capture_output=True, text=True, timeout=600)
    except subprocess.CalledProcessError as err:  # e.g. no index to fetch setuptools from
        pytest.fail(f"pip could not install the example plugin: {err.stderr[-2000:]}")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "provider lmu-echo-backend 0.1.0 available True" in done.stdout
    assert "passed True" in done.stdout
