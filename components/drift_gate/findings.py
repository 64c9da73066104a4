"""Which features drifted (or are skewed), by how much and against which threshold; the gate's
decision and its message.

The rule is calibrated: every test of a check (KS or chi-square per feature, and the label's
correlation with each feature or category) goes into one Holm correction, so the chance that
an unchanged span raises any flag is at most p_value. A significant distribution change must
also be material: its PSI, less what sampling alone adds at these window sizes, above the
feature's floor. TFDV's comparators (Jensen-Shannon, L-infinity) are reported beside each
feature, but their fixed thresholds do not account for window size and never block alone.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, Iterable, List, Mapping, Optional

import numpy as np
import pandas as pd

from ml.monitoring.multiple_testing import adjust_p_values
from ml.monitoring.statistics import psi_sampling_allowance

ACTIONS = ("block", "warn")


class DriftGateError(RuntimeError):
    """Raised when a blocking check flags features; the message names each one and why."""


@dataclasses.dataclass(frozen=True)
class GateThresholds:
    """Limits of the drift (span to span) or skew (training to serving) check.

    p_value: family-wise false-alarm rate of the whole check. psi: materiality floor on PSI
    beyond its sampling allowance; feature_psi overrides it per feature. label_change: floor on
    the change of a feature's correlation with the label. js_divergence and linf_distance:
    TFDV comparator thresholds, reported only.
    """

    psi: float = 0.25
    p_value: float = 0.01
    js_divergence: float = 0.4
    linf_distance: float = 0.1
    label_change: float = 0.2
    feature_psi: Mapping[str, float] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        for name in ("psi", "js_divergence", "linf_distance", "label_change"):
            if not getattr(self, name) > 0.0:
                raise ValueError(f"{name} threshold must be > 0, got {getattr(self, name)}")
        if not 0.0 < self.p_value < 1.0:
            raise ValueError(f"p_value threshold must be in (0, 1), got {self.p_value}")
        for feature, floor in self.feature_psi.items():
            if not floor > 0.0:
                raise ValueError(f"feature_psi[{feature!r}] must be > 0, got {floor}")

    def psi_floor(self, feature: str) -> float:
        return float(self.feature_psi.get(feature, self.psi))


def parse_feature_floors(text: str) -> Dict[str, float]:
    """'price=1.0,volatility=1.0' -> {'price': 1.0, 'volatility': 1.0} (a TFX parameter is a
    string); a malformed item raises ValueError naming it."""
    floors = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, _, value = item.partition("=")
        try:
            floors[name.strip()] = float(value)
        except ValueError:
            raise ValueError(f"feature floor {item!r} is not NAME=NUMBER") from None
        if not name.strip():
            raise ValueError(f"feature floor {item!r} has no feature name")
    return floors


def format_feature_floors(floors: Mapping[str, float]) -> str:
    return ",".join(f"{name}={value:g}" for name, value in sorted(floors.items()))


def check_action(name: str, action: str) -> str:
    if action not in ACTIONS:
        raise ValueError(f"{name} must be one of {list(ACTIONS)}, got {action!r}")
    return action


def judge(distribution: pd.DataFrame, relations: Optional[pd.DataFrame],
          thresholds: GateThresholds, reference_rows: int, current_rows: int):
    """The per-feature table (compare_tables) and the label-relation table with the gate's
    verdict: one Holm correction over both tables' p-values (adjusted_p_value, significant),
    the PSI floor and sampling allowance (material) and drifted = significant and material."""
    relations = relations if relations is not None else pd.DataFrame(
        columns=["feature", "term", "change", "threshold", "p_value"])
    adjusted = adjust_p_values(np.concatenate([distribution["p_value"].to_numpy(float),
                                               relations["p_value"].to_numpy(float)]), "holm")
    distribution = distribution.copy()
    distribution["adjusted_p_value"] = adjusted[:len(distribution)]
    distribution["significant"] = distribution["adjusted_p_value"] < thresholds.p_value
    distribution["psi_floor"] = [thresholds.psi_floor(f) for f in distribution["feature"]]
    distribution["sampling_allowance"] = psi_sampling_allowance(
        distribution["bins"].to_numpy(float), reference_rows, current_rows)
    distribution["material"] = (distribution["psi"] - distribution["sampling_allowance"]
                                > distribution["psi_floor"])
    distribution["drifted"] = distribution["significant"] & distribution["material"]
    relations = relations.copy()
    relations["adjusted_p_value"] = adjusted[len(distribution):]
    relations["drifted"] = relations["adjusted_p_value"] < thresholds.p_value
    return distribution, relations


def flagged_features(tfdv_rows: Iterable[Mapping], distribution: pd.DataFrame,
                     relations: Optional[pd.DataFrame], thresholds: GateThresholds,
                     label: str = "") -> Dict[str, List[str]]:
    """feature -> the reasons it is flagged, from judge()'s tables; TFDV comparators that
    exceeded their threshold are added to a flagged feature's reasons, never flag one alone."""
    reasons: Dict[str, List[str]] = {}
    for row in distribution[distribution["drifted"]].itertuples():
        reasons.setdefault(row.feature, []).append(
            f"PSI {row.psi:.3f} > {row.psi_floor:g} + {row.sampling_allowance:.3f} sampling "
            f"allowance ({row.test.upper()} adjusted p {row.adjusted_p_value:.2g} < "
            f"{thresholds.p_value:g})")
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
