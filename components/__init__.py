"""components package: legacy Keras is configured before anything here can import TensorFlow."""
from ml.core.process import configure

configure()


def __getattr__(name):
    """`components.DriftResult`: the drift result's Kubeflow schema title is an import path of
    the form <module>.<Class> (pipeline/kubeflow_types.py), resolved lazily (it imports TFX)."""
    if name == "DriftResult":
        from components.drift_gate.artifacts import DriftResult

        return DriftResult
    raise AttributeError(f"module 'components' has no attribute {name!r}")
