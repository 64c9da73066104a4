"""Which features drifted (or are skewed), by how much and against which threshold; the gate's
decision and its message.

A feature is flagged when TFDV's comparator exceeds its threshold, or when PSI exceeds its
threshold and the KS / chi-square test is significant after Holm correction (compare_tables'
`drifted`). The two views complement each other: TFDV's L-infinity distance is sharp on
category shares, PSI with KS on numeric shape.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, Iterable, List, Mapping, Optional

import pandas as pd

ACTIONS = ("block", "warn")


class DriftGateError(RuntimeError):
    """Raised when a blocking check flags features; the message names each one and why."""


@dataclasses.dataclass(frozen=True)
class GateThresholds:
    """Limits of the drift (span to span) or skew (training to serving) check."""

    psi: float = 1.0
    ks_p_value: float = 0.05
    js_divergence: float = 0.4
    linf_distance: float = 0.1

    def __post_init__(self):
        for name in ("psi", "js_divergence", "linf_distance"):
            if not getattr(self, name) > 0.0:
                raise ValueError(f"{name} threshold must be > 0, got {getattr(self, name)}")
        if not 0.0 < self.ks_p_value < 1.0:
            raise ValueError(f"ks_p_value threshold must be in (0, 1), got {self.ks_p_value}")

    def feature_thresholds(self) -> Dict[str, float]:
        """The thresholds in compare_tables' vocabulary."""
        return {"psi": self.psi, "ks_p_value": self.ks_p_value}


def check_action(name: str, action: str) -> str:
    if action not in ACTIONS:
        raise ValueError(f"{name} must be one of {list(ACTIONS)}, got {action!r}")
    return action


def flagged_features(tfdv_rows: Iterable[Mapping], psi_ks: Optional[pd.DataFrame],
                     thresholds: GateThresholds) -> Dict[str, List[str]]:
    """feature -> the reasons it is flagged, e.g. 'PSI 1.58 > 1 (KS adjusted p 2e-30 < 0.05)'."""
    reasons: Dict[str, List[str]] = {}
    if psi_ks is not None:
        for row in psi_ks[psi_ks["drifted"]].itertuples():
            reasons.setdefault(row.feature, []).append(
                f"PSI {row.psi:.3f} > {thresholds.psi:g} ({row.test.upper()} adjusted p "
                f"{row.adjusted_p_value:.2g} < {thresholds.ks_p_value:g})")
    for row in tfdv_rows:
        if row["exceeded"]:
            reasons.setdefault(row["feature"], []).append(
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
