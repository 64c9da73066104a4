"""ValidationGate: a small glue step between ExampleValidator and Transform."""

from absl import logging
from tfx.dsl.component.experimental.annotations import InputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils, standard_artifacts

from components.validation_gate import anomalies


@component
def ValidationGate(example_anomalies: InputArtifact[standard_artifacts.ExampleAnomalies],
                   examples: InputArtifact[standard_artifacts.Examples],
                   fail_on_anomalies: Parameter[int] = 1) -> None:
    """Fails the run, naming each feature and anomaly, so training never sees bad data."""
    splits = artifact_utils.decode_split_names(example_anomalies.split_names)
    by_split = anomalies.load_split_anomalies(example_anomalies, splits)
    span = examples.get_int_custom_property("span")
    problems = anomalies.check_anomalies(by_split, span, bool(fail_on_anomalies))
    for problem in problems:
        logging.warning("Anomaly (downgraded to a warning): %s", problem)
