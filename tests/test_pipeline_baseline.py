"""A pipeline run is judged against, and warm-starts from, the version labelled `stable`.

TFX's LatestBlessedModelStrategy would hand it the highest-id blessed Model: the canary, once a
candidate is pushed and waits for promotion. Orchestrators that compile once keep that strategy.
"""
import pytest

from ml.core.home import Home
from ml.serving.model_config import promote, register_pushed_version
from pipeline.config import DataSettings, ModelSettings, ServingSettings
from pipeline.create import create_pipeline
from pipeline.local_runner import stable_version
from pipeline.resolvers import LATEST_BLESSED_MODEL_RESOLVER_ID, STABLE_MODEL_RESOLVER_ID
from pipeline.strategies import ServingVersionModelStrategy

SERVING = ServingSettings("/tmp/etrm-serving", "/tmp/etrm-serving/models.config")
MODEL = "etrm_risk_model"


def _nodes(**kwargs):
    pipeline = create_pipeline("/tmp/etrm-root", DataSettings(dataset="trades", records_per_span=300),
                               model=ModelSettings(train=True), serving=SERVING, **kwargs)
    return {component.id: component for component in pipeline.components}


@pytest.mark.parametrize("version", [3, -1])
def test_the_trainer_and_evaluator_get_the_stable_versions_model(version):
    nodes = _nodes(baseline_version=version)
    assert LATEST_BLESSED_MODEL_RESOLVER_ID not in nodes
    resolver = nodes[STABLE_MODEL_RESOLVER_ID]
    assert resolver.exec_properties["resolver_class"] is ServingVersionModelStrategy
    assert resolver.exec_properties["source_uri"] == {"model_name": MODEL, "version": version}
    model_channel = resolver.outputs["model"]
    assert nodes["Trainer"].inputs["base_model"] is model_channel
    assert nodes["Evaluator"].inputs["baseline_model"] is model_channel


def test_without_a_version_the_pipeline_keeps_tfxs_latest_blessed_strategy():
    nodes = _nodes()
    assert STABLE_MODEL_RESOLVER_ID not in nodes
    assert nodes["Trainer"].inputs["base_model"] is \
        nodes[LATEST_BLESSED_MODEL_RESOLVER_ID].outputs["model"]


def test_the_local_run_reads_stable_not_the_newest_push(tmp_path):
    home = Home(tmp_path)
    assert stable_version(home, MODEL) == -1
    base = home.serving_base(MODEL)
    for version in (1, 2):
        (base / str(version)).mkdir(parents=True)
        register_pushed_version(home.models_config_path, MODEL, base, version)
    assert stable_version(home, MODEL) == 1, "a pushed candidate is canary, not the baseline"
    promote(home.models_config_path, MODEL, "stable", 2)
    assert stable_version(home, MODEL) == 2
