"""Resolver nodes shared by the risk and report-LM pipelines."""
from __future__ import annotations

from tfx import v1 as tfx
from tfx.types import standard_artifacts

LATEST_BLESSED_MODEL_RESOLVER_ID = "latest_blessed_model_resolver"
STABLE_MODEL_RESOLVER_ID = "stable_model_resolver"


def latest_blessed_model_resolver() -> tfx.dsl.Resolver:
    """The newest Model with a positive ModelBlessing, from ML Metadata: the warm-start source
    and the Evaluator's baseline (none on a first run)."""
    return tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=standard_artifacts.ModelBlessing),
    ).with_id(LATEST_BLESSED_MODEL_RESOLVER_ID)


def stable_model_resolver(model_name: str, version: int) -> tfx.dsl.Resolver:
    """The Model pushed as serving `version` of model_name (the one labelled `stable` when the
    pipeline was built; -1: nothing serves, no baseline). LatestBlessedModelStrategy would give
    the highest-id blessed Model instead, which is the canary once a candidate has been pushed."""
    from pipeline.strategies import ServingVersionModelStrategy

    return tfx.dsl.Resolver(
        strategy_class=ServingVersionModelStrategy,
        config={"model_name": model_name, "version": int(version)},
        model=tfx.dsl.Channel(type=standard_artifacts.Model),
    ).with_id(STABLE_MODEL_RESOLVER_ID)
