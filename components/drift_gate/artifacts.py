"""The DriftGate's output: a folder with drift_result.json, the TFDV anomalies and the HTML report."""
from tfx.types.artifact import Artifact


class DriftResult(Artifact):
    """Outcome of the drift and skew checks of one span (custom properties summarise it)."""

    TYPE_NAME = "ETRMDriftResult"
