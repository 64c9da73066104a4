"""The model registry: one entry per model, which every layer reads.

An entry ties together what must agree: the name the model is served and pushed under, the
spec's short name (`risk_model`), the CLI key (`--model risk`), the dataset its pipeline
ingests, the pipeline's name, the function that builds its training nodes, its serving
signatures and the metric that blesses it. Settings never carry a model name of their own, so
a reports run pushing under the risk model's name cannot be expressed.
"""
from __future__ import annotations

import dataclasses
import importlib
from typing import Callable, Dict, Tuple


@dataclasses.dataclass(frozen=True)
class RegisteredModel:
    """Everything that identifies one model across pipeline, serving and monitoring."""

    key: str                      # CLI key: run_local.py --model <key>
    serving_name: str             # TF Serving model name, pushed folder, models.config entry
    spec_alias: str               # the spec's short name (RetrainingConfig.model_name)
    dataset: str                  # ETRMExampleGen dataset the pipeline ingests
    pipeline_name: str            # TFX pipeline name (ML Metadata pipeline context)
    node_builder: str             # "module:function" building Transform .. Pusher
    signatures: Tuple[str, ...]   # serving signatures, the first is the default
    blessing_metric: str          # the evaluator metric that decides the blessing
    higher_is_better: bool
    evaluator_node: str           # the node id of the evaluator that writes the ModelBlessing
    description: str

    @property
    def names(self) -> Tuple[str, ...]:
        """Every name this model answers to."""
        return (self.key, self.serving_name, self.spec_alias, self.pipeline_name)

    def build_nodes(self) -> Callable:
        """The node builder (imported on demand: it needs TFX and the model code)."""
        module, function = self.node_builder.split(":")
        return getattr(importlib.import_module(module), function)


RISK_MODEL = RegisteredModel(
    key="risk", serving_name="etrm_risk_model", spec_alias="risk_model", dataset="trades",
    pipeline_name="etrm-risk-pipeline", node_builder="pipeline.risk_nodes:risk_model_nodes",
    signatures=("serving_default", "classification"), blessing_metric="auc",
    higher_is_better=True, evaluator_node="Evaluator",
    description="FT-Transformer: trade features -> high-risk probability and risk level")

REPORT_LM = RegisteredModel(
    key="lm", serving_name="etrm_report_lm", spec_alias="report_model", dataset="reports",
    pipeline_name="etrm-report-lm-pipeline", node_builder="pipeline.lm_nodes:lm_model_nodes",
    signatures=("generate", "score"), blessing_metric="perplexity", higher_is_better=False,
    evaluator_node="LMEvaluator",
    description="decoder-only transformer language model for ETRM report text")

MODELS: Tuple[RegisteredModel, ...] = (RISK_MODEL, REPORT_LM)
DATASETS: Tuple[str, ...] = tuple(model.dataset for model in MODELS)
KEYS: Tuple[str, ...] = tuple(model.key for model in MODELS)

_BY_NAME: Dict[str, RegisteredModel] = {name: model for model in MODELS for name in model.names}


def get_model(name: str) -> RegisteredModel:
    """The model any of its names refers to; a ValueError naming the accepted names otherwise."""
    try:
        return _BY_NAME[name]
    except (KeyError, TypeError):
        accepted = ", ".join(sorted({m.key for m in MODELS} | {m.serving_name for m in MODELS}
                                    | {m.spec_alias for m in MODELS}))
        raise ValueError(f"unknown model {name!r}; known models: {accepted}") from None


def for_dataset(dataset: str) -> RegisteredModel:
    """The model trained on a dataset (one model per dataset)."""
    for model in MODELS:
        if model.dataset == dataset:
            return model
    raise ValueError(f"no model is trained on dataset {dataset!r}; datasets: {', '.join(DATASETS)}")
