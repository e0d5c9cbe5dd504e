"""The command line: every command, its exit status and what it prints."""

import json
import subprocess
import sys

import pytest

from lmu import demo
from lmu.cli import main


def test_backends_table_and_json(capsys):
    assert main(["backends"]) == 0
    out = capsys.readouterr().out
    assert "numpy" in out and "available" in out and "(core)" in out
    assert main(["backends", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    numpy_row = next(r for r in rows if r["name"] == "numpy")
    assert numpy_row["available"] is True and numpy_row["provider"].startswith("lmu ")


def test_check_numpy_quick_passes(capsys):
    assert main(["check", "--backend", "numpy", "--quick"]) == 0
    captured = capsys.readouterr()
    assert "PASS" in captured.out and "numpy" in captured.out
    assert max(len(line) for line in captured.out.splitlines()) <= 100  # the table fits 100 columns
    assert "checking numpy" in captured.err and "54/54" in captured.err  # progress, on stderr


def test_check_json_is_for_scripts(capsys):
    assert main(["check", "--backend", "numpy", "--quick", "--json"]) == 0
    captured = capsys.readouterr()
    (record,) = json.loads(captured.out)  # stdout holds only the JSON
    assert record["backend"] == "numpy" and record["passed"] is True and record["failures"] == []
    assert record["cases"] > 0 and record["max_error"]["float64"] < 1e-9
    assert "checking" not in captured.err  # no bars in --json mode


def test_check_exits_1_on_a_failing_backend(capsys):
    import lmu
    from lmu.reference import NumpyBackend, ReferenceLMU

    class Late(ReferenceLMU):
        def run(self, x, state=None, return_state=False):  # every output off by 1%
            if return_state:
                out, new = super().run(x, state, True)
                return out * 1.01, new
            return super().run(x, state) * 1.01

    class Broken(NumpyBackend):
        name = "broken-theta"

        def build(self, spec, weights, **options):
            return Late(spec, weights, backend=self.name)

        def owns(self, obj):
            return isinstance(obj, Late)

    lmu.register(Broken)
    try:
        assert main(["check", "--backend", "broken-theta", "--quick"]) == 1
        assert "FAILED" in capsys.readouterr().out
    finally:
        lmu.registry.unregister("broken-theta")


def test_check_unknown_backend_is_a_clear_error(capsys):
    assert main(["check", "--backend", "nosuch"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lmu: error:") and "unknown backend 'nosuch'" in err and "numpy" in err


def test_demo_prints_the_nrmse_tables(capsys):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "order 12" in out and "r=0.5" in out and "cycles per θ" in out


def test_demo_figures_meet_the_issue_bound():
    result = demo.delay_nrmse(12, band=1.0, delays=(0.0, 0.5, 1.0))
    assert max(result.nrmse) <= 0.03
    curves = demo.bandwidth_table(orders=(12,), bands=(1.0, 3.0))
    (_, at1), (_, at3) = curves[12]
    assert at1 < at3  # faster signals are harder to hold


def test_plots_write_images(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    basis = tmp_path / "basis.png"
    assert main(["plot", "basis", "--order", "6", "-o", str(basis)]) == 0
    assert basis.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    figure = tmp_path / "demo.png"
    assert main(["demo", "--plot", str(figure)]) == 0
    assert figure.stat().st_size > 10_000


def test_spec_command(tmp_path, capsys):
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"memory_d": 1, "order": 8, "theta": 20, "input_d": 1,
                                "hidden": {"kind": "rnn", "units": 4}}))
    assert main(["spec", str(good)]) == 0
    captured = capsys.readouterr()
    normalized = json.loads(captured.out)
    assert normalized["schema"] == 1 and normalized["hidden"]["activation"] == "tanh"
    assert "valid" in captured.err
    bad = tmp_path / "bad.json"
    bad.write_text('{"memory_d": 1, "order": 0, "theta": 20, "input_d": 1}')
    assert main(["spec", str(bad)]) == 2
    assert "LMUSpec.order" in capsys.readouterr().err
    assert main(["spec", str(tmp_path / "missing.json")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_python_dash_m_and_version():
    out = subprocess.run([sys.executable, "-m", "lmu", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip().startswith("lmu 0.5.0")
    out = subprocess.run([sys.executable, "-m", "lmu"], capture_output=True, text=True)
    assert out.returncode == 2 and "COMMAND" in out.stderr


def test_spec_help_and_schema_come_from_the_field_table(capsys):
    from lmu.spec import HIDDEN_FIELDS, SPEC_FIELDS, json_schema

    with pytest.raises(SystemExit) as info:
        main(["spec", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for field in SPEC_FIELDS + HIDDEN_FIELDS:
        assert f"  {field.name} = " in out and field.expected() in out
    assert main(["spec", "--schema"]) == 0
    assert json.loads(capsys.readouterr().out) == json_schema()
    assert main(["spec"]) == 2
    assert "--schema" in capsys.readouterr().err
