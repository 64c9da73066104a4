"""The one drift rule: which features of a per-feature table (and which label relations) drifted.

Both the monitoring service (feature_drift.compare_to_profile) and the pipeline's drift gate
(components/drift_gate) call judge(); they differ only in their DriftThresholds.

Significance: every test of a check goes into one correction (Holm by default): per feature the
distribution test (KS for numeric, chi-square for categorical), for numeric features also a
location test (Mann-Whitney) and a scale test (Brown-Forsythe), and the label's correlation
with each feature or category. KS alone is weak on pure location and scale changes; the two
targeted tests recover that power while the family-wise false-alarm rate stays at p_value.

Materiality, per finding:
- distribution (KS/chi-square): PSI less what sampling alone adds at these window sizes
  (statistics.psi_sampling_allowance) above the feature's PSI floor;
- location/scale: the effect in units of the reference's spread (normal-equivalent shift
  sqrt(2) * Phi^-1(AUC), and |log| of the ratio of mean absolute deviations) above the
  shift floor. A PSI floor would defeat these tests: a 0.4 SD shift has PSI about 0.16, below
  the usual 0.25 floor at any window size, although it is a change worth reporting. The
  effect is estimated without PSI's binning noise, so the floor means the same at every
  window size. The default 0.3 SD is also what keeps false alarms rare at small windows:
  at 200 rows the location effect's sampling error is about 0.08 SD, so a lower floor (0.25)
  lets the service (p 0.05) exceed 1% false alarms on five features, while 0.3 still finds
  about nine in ten 0.4 SD shifts there. Features with their own PSI floor (feature_psi: market features whose ordinary
  week-to-week movement is exactly a location/scale change) are judged on PSI alone, so their
  calibrated floor is not bypassed.
A label relation drifts when its one-sided test of 'change <= floor' is significant.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, List, Mapping, Optional, Union

import numpy as np
import pandas as pd

from ml.monitoring.multiple_testing import adjust_p_values, normalise_correction
from ml.monitoring.statistics import psi_sampling_allowance

# The targeted tests beside the distribution test: (p-value column, effect column, name).
EXTRA_TESTS = (("location_p_value", "location_effect", "location"),
               ("scale_p_value", "scale_effect", "scale"))
RELATION_COLUMNS = ["feature", "term", "change", "threshold", "p_value"]


@dataclasses.dataclass(frozen=True)
class DriftThresholds:
    """Limits of one check.

    p_value: family-wise false-alarm rate of the whole check. psi: floor on PSI beyond its
    sampling allowance; feature_psi overrides it per feature (and leaves that feature to PSI
    alone). shift: floor on location/scale effects in reference standard deviations.
    label_change: floor on the change of a feature's correlation with the label.
    js_divergence and linf_distance: TFDV comparator thresholds, reported only.
    """

    psi: float = 0.25
    p_value: float = 0.01
    js_divergence: float = 0.4
    linf_distance: float = 0.1
    label_change: float = 0.2
    feature_psi: Mapping[str, float] = dataclasses.field(default_factory=dict)
    shift: float = 0.3

    def __post_init__(self):
        for name in ("js_divergence", "linf_distance", "label_change"):
            if not getattr(self, name) > 0.0:
                raise ValueError(f"{name} threshold must be > 0, got {getattr(self, name)}")
        for name in ("psi", "shift"):
            if not getattr(self, name) >= 0.0:
                raise ValueError(f"{name} threshold must be >= 0, got {getattr(self, name)}")
        if not 0.0 < self.p_value < 1.0:
            raise ValueError(f"p_value threshold must be in (0, 1), got {self.p_value}")
        for feature, floor in self.feature_psi.items():
            if not floor > 0.0:
                raise ValueError(f"feature_psi[{feature!r}] must be > 0, got {floor}")

    def psi_floor(self, feature: str) -> float:
        return float(self.feature_psi.get(feature, self.psi))

    def shift_floor(self, feature: str) -> float:
        """inf for features with their own PSI floor: their location/scale is never material."""
        return float("inf") if feature in self.feature_psi else float(self.shift)

    @classmethod
    def from_properties(cls, psi_threshold: float, p_value: float, js_threshold: float,
                        linf_threshold: float, label_change_threshold: float,
                        feature_psi_thresholds: Union[str, Mapping[str, float], tuple] = "",
                        ) -> "DriftThresholds":
        """The one mapping from the drift gate's settings (DriftSettings fields or the DriftCheck
        component's parameters, where feature floors are 'price=0.5,volatility=0.4')."""
        floors = (parse_feature_floors(feature_psi_thresholds)
                  if isinstance(feature_psi_thresholds, str) else dict(feature_psi_thresholds))
        return cls(psi=psi_threshold, p_value=p_value, js_divergence=js_threshold,
                   linf_distance=linf_threshold, label_change=label_change_threshold,
                   feature_psi=floors)

    @classmethod
    def from_limits(cls, limits: Mapping[str, float]) -> "DriftThresholds":
        """From the service's per-feature limits ({'psi': 0.25, 'ks_p_value': 0.05, ...})."""
        return cls(psi=limits["psi"], p_value=limits["ks_p_value"],
                   shift=limits.get("shift", cls.shift))


def parse_feature_floors(text: str) -> Dict[str, float]:
    """'price=0.5,volatility=0.4' -> {'price': 0.5, 'volatility': 0.4} (a TFX parameter is a
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


def judge(distribution: pd.DataFrame, relations: Optional[pd.DataFrame],
          thresholds: DriftThresholds, reference_rows: int, current_rows: int,
          correction: str = "holm"):
    """The per-feature table and the label-relation table with the verdict added: adjusted
    p-values from one correction over every test of both, each finding's materiality and
    drifted (any finding both significant and material). Tables without location/scale
    columns are judged on their distribution test alone."""
    relations = relations if relations is not None else pd.DataFrame(columns=RELATION_COLUMNS)
    distribution = distribution.copy()
    columns = ["p_value"] + [c for c, _, _ in EXTRA_TESTS if c in distribution.columns]
    family = np.concatenate([distribution[c].to_numpy(float) for c in columns]
                            + [relations["p_value"].to_numpy(float)])
    tested = ~np.isnan(family)
    adjusted = np.full(family.size, np.nan)
    adjusted[tested] = adjust_p_values(family[tested], normalise_correction(correction))
    rows = len(distribution)
    limit = thresholds.p_value
    distribution["adjusted_p_value"] = adjusted[:rows]
    distribution["psi_floor"] = [thresholds.psi_floor(f) for f in distribution["feature"]]
    distribution["sampling_allowance"] = psi_sampling_allowance(
        distribution["bins"].to_numpy(float), reference_rows, current_rows)
    significant = distribution["adjusted_p_value"] < limit
    material = distribution["psi"] - distribution["sampling_allowance"] > distribution["psi_floor"]
    drifted = significant & material
    shift_floor = np.array([thresholds.shift_floor(f) for f in distribution["feature"]])
    for index, (p_column, effect_column, name) in enumerate(
            (t for t in EXTRA_TESTS if t[0] in distribution.columns), start=1):
        adjusted_column = f"adjusted_{p_column}"
        distribution[adjusted_column] = adjusted[index * rows:(index + 1) * rows]
        found = distribution[adjusted_column] < limit
        large = distribution[effect_column].abs().to_numpy(float) > shift_floor
        distribution[f"{name}_drifted"] = found & large
        significant |= found
        material |= large
        drifted |= found & large
    if any(t[0] in distribution.columns for t in EXTRA_TESTS):
        distribution["shift_floor"] = shift_floor
    distribution["significant"] = significant
    distribution["material"] = material
    distribution["drifted"] = drifted
    relations = relations.copy()
    relations["adjusted_p_value"] = adjusted[len(columns) * rows:]
    relations["drifted"] = relations["adjusted_p_value"] < limit
    return distribution, relations


def distribution_reasons(row, thresholds: DriftThresholds) -> List[str]:
    """Why a judged per-feature row drifted, one text per finding (empty if it did not)."""
    reasons = []
    limit = thresholds.p_value
    if row.adjusted_p_value < limit and row.psi - row.sampling_allowance > row.psi_floor:
        reasons.append(f"PSI {row.psi:.3f} > {row.psi_floor:g} + {row.sampling_allowance:.3f} "
                       f"sampling allowance ({row.test.upper()} adjusted p "
                       f"{row.adjusted_p_value:.2g} < {limit:g})")
    for _, effect_column, name in EXTRA_TESTS:
        if getattr(row, f"{name}_drifted", False):
            effect = getattr(row, effect_column)
            what = ("location moved" if name == "location" else "spread changed (log ratio)")
            reasons.append(f"{what} {effect:+.2f} SD, beyond {row.shift_floor:g} "
                           f"({'Mann-Whitney' if name == 'location' else 'Brown-Forsythe'} "
                           f"adjusted p {getattr(row, f'adjusted_{name}_p_value'):.2g} < {limit:g})")
    return reasons
