"""The printed run summary: compact (progress lines gave each component's time), names the log,
and its drift line reads as a sentence whatever the checks had to compare."""
import io
import pathlib

from pipeline.run_summary.printing import drift_line, print_summary


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


def test_first_span_says_there_was_nothing_to_compare_and_names_no_empty_report():
    first = {"drift_status": "no previous span", "against": "no previous span",
             "skew_status": "no serving logs", "drift_report": "", "skew_report": ""}
    assert drift_line(first) == "drift: no previous span, skew: no serving logs"


def test_later_span_names_the_span_it_was_compared_with_and_each_report():
    later = {"drift_status": "passed", "against": "span 3", "skew_status": "drifted",
             "drift_report": "/h/drift_report.html", "skew_report": "/h/skew_report.html"}
    assert drift_line(later) == ("drift: passed against span 3, skew: drifted; "
                                 "drift report: /h/drift_report.html; skew report: /h/skew_report.html")
