"""Kubeflow Pipelines V2: both models' pipelines and the continuous-learning training run
compile into PipelineSpecs the KFP client loads, every TFX node a task (none dropped), each
component task running its executor in the project's image, the resolvers as their queries."""
import json

import pytest

from pipeline.config import DataSettings, ModelSettings
from ml.core.home import Home

pytestmark = pytest.mark.slow

# Nodes KFP V2 cannot compile, by pipeline: none. A node that stops compiling fails the test.
DROPPED = {"risk": set(), "lm": set(), "window": set()}
# Resolver nodes compiled as two tasks (the first-phase query, then the node's own).
SPLIT = {"latest_blessed_model_resolver": ["latest_blessed_model_resolver-model-blessing-resolver",
                                           "latest_blessed_model_resolver-model-resolver"],
         "stable_model_resolver": ["stable_model_resolver-pushed-model-resolver",
                                   "stable_model_resolver"]}
EXECUTOR = "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """{name: (the TFX pipeline's nodes, the PipelineSpec dict)} for both models and the window."""
    from pipeline import orchestrators
    from pipeline.create import create_window_pipeline

    out = tmp_path_factory.mktemp("kfp")
    home = Home(out / "home")
    result = {}
    for name, dataset in (("risk", "trades"), ("lm", "reports")):
        data = DataSettings(dataset=dataset, span=3, records_per_span=100)
        path = orchestrators.compile_kubeflow(out / f"{name}.json", data, ModelSettings(),
                                              pipeline_root="gs://bucket/etrm", home=home)
        nodes = orchestrators._pipeline(home, data, ModelSettings(), 1, metadata=False).components
        result[name] = (nodes, json.loads(path.read_text()))
    path = orchestrators.compile_kubeflow_window(out / "window.json", "trades", 1, 3, 2, ModelSettings(),
                                                 pipeline_root="gs://bucket/etrm", home=home)
    nodes = create_window_pipeline("/tmp/root", "trades", 1, 3, ModelSettings(),
                                   orchestrators.serving_settings(home), 2).components
    result["window"] = (nodes, json.loads(path.read_text()))
    return result


@pytest.mark.parametrize("name", ["risk", "lm", "window"])
def test_kubeflow_spec_loads_and_compiles_every_node(compiled, name):
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    nodes, spec = compiled[name]
    parsed = json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec())
    assert parsed.default_pipeline_root == "gs://bucket/etrm"
    tasks = parsed.root.dag.tasks
    missing = {node.id for node in nodes
               if not all(task in tasks for task in SPLIT.get(node.id, [node.id]))}
    assert missing == DROPPED[name]
    expanded = {task for node in nodes for task in SPLIT.get(node.id, [node.id])}
    assert set(tasks) == expanded


@pytest.mark.parametrize("name", ["risk", "lm", "window"])
def test_every_component_task_runs_its_executor_in_the_image(compiled, name):
    from tfx.dsl.components.common import resolver
    from tfx.utils import name_utils
    from pipeline.orchestrators import DEFAULT_IMAGE

    from tests.test_dockerfile import values

    nodes, spec = compiled[name]
    executors = spec["deploymentSpec"]["executors"]
    [entrypoint] = values("ENTRYPOINT")
    for node in nodes:
        if isinstance(node, resolver.Resolver):
            continue
        container = executors[f"{node.id}_executor"]["container"]
        assert container["image"] == DEFAULT_IMAGE
        assert container["command"] == ["python", "-m", EXECUTOR] == json.loads(entrypoint)
        args = container["args"]
        assert args[:4] == ["--executor_class_path",
                            name_utils.get_full_name(node.executor_spec.executor_class),
                            "--json_serialized_invocation_args", "{{$}}"], node.id


def test_risk_spec_orders_the_gates_before_training(compiled):
    tasks = compiled["risk"][1]["root"]["dag"]["tasks"]
    assert "DriftGate" in tasks["Transform"]["dependentTasks"]
    assert "ValidationGate" in tasks["DriftGate"]["dependentTasks"]
    assert "Transform" in tasks["Trainer"]["dependentTasks"]
    assert "previous_span_resolver" in tasks["DriftCheck"]["dependentTasks"]
    previous = tasks["DriftCheck"]["inputs"]["artifacts"]["previous_examples"]["taskOutputArtifact"]
    assert previous["producerTask"] == "previous_span_resolver"


def test_resolvers_compile_as_the_strategies_queries(compiled):
    risk = compiled["risk"][1]["deploymentSpec"]["executors"]
    queries = risk["previous_span_resolver_executor"]["resolver"]["outputArtifactQueries"]
    assert queries["examples"]["filter"].endswith(
        'metadata.span.number_value<3 AND metadata.etrm_dataset.string_value="trades"')
    assert "tfx.ExampleStatistics" in queries["statistics"]["filter"]
    window = compiled["window"][1]
    executors = window["deploymentSpec"]["executors"]
    span_query = executors["training_window_resolver_executor"]["resolver"]["outputArtifactQueries"]["examples"]
    assert span_query["limit"] == 3 and "metadata.span.number_value>=1" in span_query["filter"]
    pushed = executors["stable_model_resolver-pushed-model-resolver_executor"]["resolver"]
    assert 'metadata.pushed_version.string_value="2"' in pushed["outputArtifactQueries"]["pushed_model"]["filter"]
    tasks = window["root"]["dag"]["tasks"]
    assert tasks["stable_model_resolver"]["dependentTasks"] == ["stable_model_resolver-pushed-model-resolver"]
    assert tasks["Trainer"]["inputs"]["artifacts"]["base_model"]["taskOutputArtifact"]["producerTask"] == \
        "stable_model_resolver"
    assert tasks["stable_model_resolver"]["inputs"]["parameters"]["resolver_class"]["runtimeValue"] == \
        {"constantValue": {"stringValue": "ServingVersionModelStrategy"}}


def test_spec_paths_are_the_images(compiled):
    from pipeline.kubeflow import IMAGE_PROJECT_DIR, REPO_ROOT

    text = json.dumps(compiled["risk"][1])
    assert f"{IMAGE_PROJECT_DIR}/data/schema/trades/schema.pbtxt" in text
    assert str(REPO_ROOT) not in text or str(REPO_ROOT) == IMAGE_PROJECT_DIR


def test_drift_result_keeps_its_metadata_type_name_after_compiling(compiled):
    from components.drift_gate.artifacts import DriftResult
    from pipeline.kubeflow_types import KFP_TITLES
    import components

    assert DriftResult.TYPE_NAME == "ETRMDriftResult"
    spec = compiled["risk"][1]
    schema = spec["components"]["DriftCheck"]["outputDefinitions"]["artifacts"]["drift_result"]
    assert f"title: {KFP_TITLES['DriftResult']}" in schema["artifactType"]["instanceSchema"]
    assert getattr(components, KFP_TITLES["DriftResult"].split(".")[1]) is DriftResult
