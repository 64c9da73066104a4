"""The spec's TF Serving client API; the implementation is ml/serving_client/client.py.

    from ml.tensorflow_serving_client import ETRMModelClient, TensorFlowServingClient
"""
from ml.core.example_codec import encode_example
from ml.serving_client.client import (DEFAULT_GRPC_PORT, DEFAULT_HOST, DEFAULT_REST_PORT,
                                      FEATURE_DEFAULTS_SIGNATURE, MODEL_VERSION_HEADER,
                                      REPORT_LM_NAME, RISK_MODEL_NAME, ABSplit, ETRMModelClient,
                                      FeatureInfo, InferenceResult, Prediction,
                                      TensorFlowServingClient, TensorFlowServingError)

__all__ = [
    "ABSplit", "DEFAULT_GRPC_PORT", "DEFAULT_HOST", "DEFAULT_REST_PORT", "ETRMModelClient",
    "FEATURE_DEFAULTS_SIGNATURE", "FeatureInfo", "InferenceResult", "MODEL_VERSION_HEADER",
    "Prediction", "REPORT_LM_NAME", "RISK_MODEL_NAME", "TensorFlowServingClient",
    "TensorFlowServingError", "encode_example"]
