"""The printed run summary's drift line reads as a sentence whatever the checks had to compare."""
from pipeline.run_summary.printing import drift_line


def test_first_span_says_there_was_nothing_to_compare_and_names_no_empty_report():
    first = {"drift_status": "no previous span", "against": "no previous span",
             "skew_status": "no serving logs", "drift_report": "", "skew_report": ""}
    assert drift_line(first) == "drift: no previous span, skew: no serving logs"


def test_later_span_names_the_span_it_was_compared_with_and_each_report():
    later = {"drift_status": "passed", "against": "span 3", "skew_status": "drifted",
             "drift_report": "/h/drift_report.html", "skew_report": "/h/skew_report.html"}
    assert drift_line(later) == ("drift: passed against span 3, skew: drifted; "
                                 "drift report: /h/drift_report.html; skew report: /h/skew_report.html")
