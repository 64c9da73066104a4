"""The printed run summary: compact (progress lines gave each component's time) and names the log."""
import io
import pathlib

from pipeline.run_summary.printing import print_summary


def test_summary_names_the_log_file_and_lists_only_components_that_went_wrong():
    summary = {"pipeline": "etrm-risk-pipeline", "status": "failed", "wall_seconds": 9.0,
               "runner": "local", "beam_workers": 1, "log": "/h/logs/run-20260101-000000.log",
               "components": [{"component": "StatisticsGen", "state": "COMPLETE", "duration_s": 2.0},
                              {"component": "Transform", "state": "COMPLETE", "duration_s": 4.0},
                              {"component": "Trainer", "state": "FAILED", "duration_s": 3.0}]}
    out = io.StringIO()
    print_summary(summary, pathlib.Path("/h/runs/latest.json"), stream=out)
    assert out.getvalue().splitlines()[1:] == [
        "etrm-risk-pipeline: failed in 9.0s (local runner, 1 Beam workers)",
        "  components: 2 COMPLETE, 1 FAILED; slowest Transform 4.0s, Trainer 3.0s, StatisticsGen 2.0s",
        "    Trainer: FAILED after 3.0s",
        "  summary: /h/runs/latest.json; warnings and logs: /h/logs/run-20260101-000000.log",
    ]
