"""Beam options pass through to the pipeline (`--beam-arg`): DirectRunner defaults plus the
user's options, only the user's for another runner, a malformed option refused by name."""
import pytest

from ml.core.beam import SETUP_FILE, beam_args, beam_runner, check_beam_options


def test_direct_runner_defaults_come_first_then_the_users_options():
    setup = f"--setup_file={SETUP_FILE}"
    assert beam_args(1) == ["--direct_running_mode=in_memory", "--direct_num_workers=1", setup]
    assert beam_args(2, ["--direct_running_mode=multi_threading"]) == [
        "--direct_running_mode=multi_processing", "--direct_num_workers=2", setup,
        "--direct_running_mode=multi_threading"]


def test_the_direct_runner_skips_tfxs_throwaway_package_build():
    from tfx.utils import dependency_utils

    assert dependency_utils.make_beam_dependency_flags(beam_args(1)) == beam_args(1)
    flink = ["--runner=FlinkRunner"]
    assert beam_args(2, flink) == flink  # TFX adds its package for a remote runner


def test_another_runner_gets_exactly_the_options_given():
    options = ["--runner=FlinkRunner", "--flink_master=jobmanager:8081", "--parallelism=4"]
    assert beam_args(2, options) == options
    assert beam_runner(options) == "FlinkRunner"
    assert beam_runner(["--runner=DataflowRunner", "--runner=DirectRunner"]) == "DirectRunner"


@pytest.mark.parametrize("option", ["runner=FlinkRunner", "-runner=x", "--", "--9lives=1",
                                    "--runner FlinkRunner", ""])
def test_a_malformed_option_is_refused_naming_it(option):
    with pytest.raises(ValueError, match="is not a Beam pipeline option"):
        check_beam_options([option])


def test_the_run_command_refuses_it_before_anything_runs(tmp_path, capsys, caplog):
    from ml.cli.run import main

    assert main(["--no-train", "--home", str(tmp_path / "h"), "--beam-arg=flink"]) == 2
    out, err = capsys.readouterr()
    assert "--beam-arg 'flink' is not a Beam pipeline option" in caplog.text
    assert "Traceback" not in out + err + caplog.text
    assert not (tmp_path / "h" / "metadata.sqlite").exists()
