"""scripts/compile_kubeflow.py refuses bad input with one line naming it (before importing TFX)."""
import importlib.util
import pathlib

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "scripts" / "compile_kubeflow.py"


def script():
    spec = importlib.util.spec_from_file_location("compile_kubeflow", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("argv, message", [
    (["--model", "bogus"], "error: --model: unknown model 'bogus'"),
    (["--window", "3", "1"], "error: spans must be >= 0 and --window FIRST <= LAST"),
    (["--span", "-1"], "error: spans must be >= 0"),
    (["--records-per-span", "0"], "error: records_per_span must be > 0, got 0"),
])
def test_bad_input_is_one_line(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        script().main(argv + ["--pipeline-root", "gs://bucket/etrm"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1
