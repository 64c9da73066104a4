"""`etrm generate-report`: the pushed LM writes a report, in-process or through a server."""
import argparse

import pytest

from components.serving_pusher import versions
from ml.cli.generate_report import MODEL_NAME, add_arguments, run
from ml.reports.generation import EXPLORATION_NOTE
from ml.serving.model_config import register_pushed_version
from tests import lm_fixtures

PROMPT = "Daily risk summary for PROP_TRADING on 2024-01-03."


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A home where the tiny LM was pushed twice, as the ServingPusher does."""
    home = tmp_path_factory.mktemp("report-home")
    export_dir = lm_fixtures.trained_model().export_dir
    base = home / "serving_models" / MODEL_NAME
    for version in (1, 2):
        versions.publish_version(export_dir, base, version)
        register_pushed_version(home / "serving_config" / "models.config", MODEL_NAME, base, version)
    return home


def _run(*argv):
    parser = add_arguments(argparse.ArgumentParser())
    return run(parser.parse_args(list(argv)))


def test_prints_a_greedy_report_from_the_newest_version_marked_as_exploration(home, capsys):
    assert _run("--prompt", PROMPT, "--home", str(home), "--temperature", "0",
                "--max-new-tokens", "30") == 0
    first = capsys.readouterr()
    marker, text = first.out.split("\n", 1)
    assert marker == f"[{EXPLORATION_NOTE}]"
    assert text.startswith(PROMPT) and len(text.strip()) > len(PROMPT)
    assert f"{MODEL_NAME} version 2" in first.err and "not conditioned" in first.err
    assert _run("--prompt", PROMPT, "--home", str(home), "--temperature", "0",
                "--max-new-tokens", "30", "--version", "1") == 0
    again = capsys.readouterr()
    assert again.out == first.out and "version 1" in again.err


def test_explains_what_is_missing(tmp_path, home, capsys):
    assert _run("--prompt", PROMPT, "--home", str(tmp_path)) == 2
    assert "run_local.py --model lm" in capsys.readouterr().err
    assert _run("--prompt", PROMPT, "--home", str(home), "--version", "7") == 2
    assert "not served" in capsys.readouterr().err
    assert _run("--prompt", "  ", "--home", str(home)) == 2
    assert _run("--prompt", PROMPT, "--server", "no-port") == 2
    capsys.readouterr()


@pytest.mark.parametrize("argv, message", [
    (["--book", "FLOW_TRADING"], "give --book BOOK and --date YYYY-MM-DD"),
    (["--date", "2024-01-03"], "give --book BOOK and --date YYYY-MM-DD"),
    (["--prompt", PROMPT, "--book", "FLOW_TRADING", "--date", "2024-01-03"], "not both"),
    (["--book", "FLOW_TRADING", "--date", "3 Jan 2024"], "date must be YYYY-MM-DD, got '3 Jan 2024'"),
    (["--book", "FLOW_TRADING", "--date", "2024-01-03"], "has no ML Metadata"),
    ([], "give --book BOOK and --date YYYY-MM-DD (or --prompt TEXT to explore)"),
    (["--prompt", PROMPT, "--unchecked"], "--unchecked is for --book/--date summaries"),
])
def test_a_summary_request_it_cannot_answer_gets_one_line_naming_why(home, capsys, argv, message):
    assert _run(*argv, "--home", str(home)) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.network
def test_a_running_server_writes_the_same_greedy_report(home, capsys):
    from tests.serving_fixtures import start_server

    server = start_server(home)
    try:
        assert _run("--prompt", PROMPT, "--server", f"127.0.0.1:{server.rest_api_port}",
                    "--temperature", "0", "--max-new-tokens", "30") == 0
        served = capsys.readouterr().out
    finally:
        server.stop()
    assert _run("--prompt", PROMPT, "--home", str(home), "--temperature", "0",
                "--max-new-tokens", "30") == 0
    assert capsys.readouterr().out == served
