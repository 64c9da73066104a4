"""The model registry as people ask about it: every pushed version of a model with when it was
pushed, the labels on it, the evaluator's key figures, the version it was judged against and
the spans it learned from. ML Metadata answers (each version's lineage), models.config adds
the labels."""
from __future__ import annotations

from typing import Dict, List

from ml.core import lineage, metadata
from ml.core.registry import RegisteredModel

KEY_METRICS = {  # beside the model's blessing metric, in this order
    "auc": ("auc", "auc_precision_recall", "binary_accuracy", "binary_crossentropy"),
    "perplexity": ("perplexity", "token_accuracy", "cross_entropy"),
}


def key_metrics(model: RegisteredModel, metrics: Dict[str, float]) -> Dict[str, float]:
    names = KEY_METRICS.get(model.blessing_metric, (model.blessing_metric,))
    return {name: metrics[name] for name in names if name in metrics}


def version_rows(store, model: RegisteredModel, labels: Dict[str, int]) -> List[Dict]:
    """One row per pushed version, oldest first."""
    return [version_row(model, lineage.describe_push(store, model.serving_name, version), labels)
            for version in pushed_versions(store, model)]


def pushed_versions(store, model: RegisteredModel) -> List[int]:
    """The model's pushed versions in push order."""
    return [int(pushed.custom_properties["pushed_version"].string_value)
            for pushed in metadata.pushed_models(store, model.serving_name)]


def version_row(model: RegisteredModel, described: Dict, labels: Dict[str, int]) -> Dict:
    """A version's registry row from its lineage (ml.core.lineage.describe_push)."""
    version = int(described["version"])
    evaluation = described.get("evaluation") or {}
    trainer = described.get("trainer") or {}
    baseline = evaluation.get("baseline")
    parent = trainer.get("warm_start_parent")
    return {
        "version": version,
        "pushed_at": described["push"]["pushed_at"],
        "push_key": described["push"]["push_key"],
        "labels": sorted(label for label, target in labels.items() if target == version),
        "blessed": evaluation.get("blessed"),
        "metrics": key_metrics(model, evaluation.get("metrics", {})),
        "baseline_version": baseline["serving_version"] if baseline else None,
        "warm_start_version": parent["serving_version"] if parent else None,
        "spans": described["spans"],
        "model_artifact_id": (described.get("model_artifact") or {}).get("artifact_id"),
    }
