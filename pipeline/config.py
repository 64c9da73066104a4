"""Typed settings of a pipeline run; the runners fill them from flags, never from import time."""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, Optional, Tuple

from ml.synthetic.spans import SpanRequest


@dataclasses.dataclass(frozen=True)
class DataSettings(SpanRequest):
    """Which span of which dataset to ingest (a SpanRequest, validated there), and how to split it."""

    dataset: str = "trades"
    span: int = 0
    records_per_span: int = 20000
    split_ratios: Tuple[Tuple[str, int], ...] = (("train", 4), ("eval", 1))


@dataclasses.dataclass(frozen=True)
class ValidationSettings:
    """Whether anomalies stop the run (default) or are only logged."""

    fail_on_anomalies: bool = True


@dataclasses.dataclass(frozen=True)
class DriftSettings:
    """The DriftGate's checks (components/drift_gate): each blocks training or only warns.

    p_value is the family-wise false-alarm rate of a check; psi_threshold the materiality
    floor (PSI beyond its sampling allowance) of every feature but those in
    feature_psi_thresholds: prices and volatility follow the generator's markets, which move
    them between unchanged consecutive weeks (spans 0-8 at 20,000 trades: price PSI up to
    0.06, forward_price 0.11, volatility 0.28), so they get floors above that and below what
    the drift scenarios do in their first week (price_shift 0.5: PSI 1.1; volatility_shock
    1.0: volatility PSI 0.5). label_change is the floor on a feature's change of correlation
    with the label.
    """

    enabled: bool = True
    drift_action: str = "block"
    skew_action: str = "warn"
    psi_threshold: float = 0.25
    feature_psi_thresholds: Tuple[Tuple[str, float], ...] = (
        ("price", 0.5), ("forward_price", 0.5), ("volatility", 0.4))
    p_value: float = 0.01
    label_change: float = 0.2
    js_threshold: float = 0.4
    linf_threshold: float = 0.1
    skew_js_threshold: float = 0.4
    skew_linf_threshold: float = 0.1
    sample_rows: int = 20000
    serving_log_dir: str = ""

    def __post_init__(self):
        for name in ("drift_action", "skew_action"):
            if getattr(self, name) not in ("block", "warn"):
                raise ValueError(f"{name} must be 'block' or 'warn', got {getattr(self, name)!r}")
        for name in ("psi_threshold", "label_change", "js_threshold", "linf_threshold",
                     "skew_js_threshold", "skew_linf_threshold"):
            if not getattr(self, name) > 0.0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for feature, floor in self.feature_psi_thresholds:
            if not floor > 0.0:
                raise ValueError(f"feature_psi_thresholds[{feature!r}] must be > 0, got {floor}")
        if not 0.0 < self.p_value < 1.0:
            raise ValueError(f"p_value must be in (0, 1), got {self.p_value}")
        if self.sample_rows <= 0:
            raise ValueError(f"sample_rows must be > 0, got {self.sample_rows}")

    def gate_thresholds(self, skew: bool = False):
        """The drift (or, with skew, the skew) check's DriftThresholds, through the mapping the
        DriftCheck component uses on its parameters."""
        from ml.monitoring.drift_rule import DriftThresholds

        return DriftThresholds.from_properties(
            self.psi_threshold, self.p_value,
            self.skew_js_threshold if skew else self.js_threshold,
            self.skew_linf_threshold if skew else self.linf_threshold, self.label_change,
            self.feature_psi_thresholds)

@dataclasses.dataclass(frozen=True)
class LanguageModelSettings:
    """Blessing and warm start of the report language model (see components/lm_evaluator)."""

    ngram_order: int = 3
    max_ngram_perplexity_ratio: float = 1.0
    perplexity_tolerance: float = 0.05
    warm_start: bool = True

    def __post_init__(self):
        if not 1 <= self.ngram_order <= 4:
            raise ValueError(f"ngram_order must be in 1..4, got {self.ngram_order}")
        if not self.max_ngram_perplexity_ratio > 0.0:
            raise ValueError(f"max_ngram_perplexity_ratio must be > 0, got {self.max_ngram_perplexity_ratio}")
        if not self.perplexity_tolerance >= 0.0:
            raise ValueError(f"perplexity_tolerance must be >= 0, got {self.perplexity_tolerance}")


@dataclasses.dataclass(frozen=True)
class ModelSettings:
    """Training, blessing and pushing of the dataset's model; train=False stops after validation.

    The model itself (its name, nodes and blessing metric) is the registry entry of the run's
    dataset (ml.core.registry), so settings cannot pair one model's data with another's name."""

    train: bool = True
    min_auc: float = 0.70
    auc_tolerance: float = 0.01
    train_steps: Optional[int] = None
    hyperparameters: Dict[str, Any] = dataclasses.field(default_factory=dict)
    seed: int = 42
    num_serving_versions: int = 2
    canary_requests: int = 50
    canary_latency_budget_ms: float = 250.0
    lm: LanguageModelSettings = LanguageModelSettings()

    def __post_init__(self):
        if not 0.0 < self.min_auc < 1.0:
            raise ValueError(f"min_auc must be in (0, 1), got {self.min_auc}")
        if not 0.0 <= self.auc_tolerance < 1.0:
            raise ValueError(f"auc_tolerance must be in [0, 1), got {self.auc_tolerance}")
        if self.canary_requests <= 0 or self.canary_latency_budget_ms <= 0:
            raise ValueError("canary_requests and canary_latency_budget_ms must be > 0")
        if self.train_steps is not None and self.train_steps <= 0:
            raise ValueError(f"train_steps must be > 0, got {self.train_steps}")


@dataclasses.dataclass(frozen=True)
class ServingSettings:
    """Where pushed models and the TF Serving model config live.

    push_key, when set, makes the push idempotent: a version already published under the same
    key is reported instead of pushing again (a continuous-learning job retried after a crash)."""

    serving_base_dir: str
    models_config_path: str
    signing_key_path: Optional[str] = None
    push_key: str = ""
