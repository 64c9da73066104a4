"""The gate's findings as messages: which features drifted (or are skewed), why, and the
blocked run's explanation.

The rule itself (one Holm family over every test of a check, significance and materiality) is
ml.monitoring.drift_rule's (DriftThresholds, judge), shared with the monitoring service.
TFDV's comparators (Jensen-Shannon, L-infinity) are reported beside each
feature, but their fixed thresholds do not account for window size and never block alone.
"""
from __future__ import annotations

from typing import Dict, Iterable, List, Mapping, Optional

import pandas as pd

from ml.monitoring.drift_rule import DriftThresholds, distribution_reasons

ACTIONS = ("block", "warn")


class DriftGateError(RuntimeError):
    """Raised when a blocking check flags features; the message names each one and why."""


def check_action(name: str, action: str) -> str:
    if action not in ACTIONS:
        raise ValueError(f"{name} must be one of {list(ACTIONS)}, got {action!r}")
    return action


def flagged_features(tfdv_rows: Iterable[Mapping], distribution: pd.DataFrame,
                     relations: Optional[pd.DataFrame], thresholds: DriftThresholds,
                     label: str = "") -> Dict[str, List[str]]:
    """feature -> the reasons it is flagged, from judge()'s tables; TFDV comparators that
    exceeded their threshold are added to a flagged feature's reasons, never flag one alone."""
    reasons: Dict[str, List[str]] = {}
    for row in distribution[distribution["drifted"]].itertuples():
        reasons.setdefault(row.feature, []).extend(distribution_reasons(row, thresholds))
    if relations is not None:
        for row in relations[relations["drifted"]].itertuples():
            reasons.setdefault(row.feature, []).append(
                f"correlation of {row.term} with label {label or 'the label'} moved "
                f"{row.reference_correlation:.2f} -> {row.current_correlation:.2f} (change "
                f"{row.change:.2f} > {row.threshold:g}, adjusted p {row.adjusted_p_value:.2g} "
                f"< {thresholds.p_value:g})")
    for row in tfdv_rows:
        if row["exceeded"] and row["feature"] in reasons:
            reasons[row["feature"]].append(
                f"TFDV {row['measure']} {row['value']:.3f} > {row['threshold']:g}")
    return dict(sorted(reasons.items()))


def describe(flagged: Mapping[str, List[str]]) -> List[str]:
    """One line per flagged feature."""
    return [f"feature '{feature}': " + "; ".join(reasons) for feature, reasons in flagged.items()]


def gate_message(check: str, span: int, against: str, flagged: Mapping[str, List[str]],
                 report_path: str = "") -> str:
    """The blocked run's explanation: what was compared, every flagged feature, the report."""
    lines = describe(flagged)
    message = (f"{check} check failed for span {span} against {against}; training will not "
               f"start. {len(lines)} feature{'s' if len(lines) != 1 else ''} flagged:\n  "
               + "\n  ".join(lines))
    if report_path:
        message += f"\nReport: {report_path}"
    return message
