"""Status and metadata responses as TF Serving's protos, shared by REST and gRPC."""
from typing import List

from google.protobuf import any_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2

from ml.serving.model_manager import VersionStatus
from ml.serving.servable import Servable

SIGNATURE_DEF_FIELD = "signature_def"


def model_status_response(statuses: List[VersionStatus]
                          ) -> get_model_status_pb2.GetModelStatusResponse:
    response = get_model_status_pb2.GetModelStatusResponse()
    states = get_model_status_pb2.ModelVersionStatus.State
    for status in statuses:
        entry = response.model_version_status.add(version=status.version,
                                                  state=states.Value(status.state))
        entry.status.error_code = status.error_code.value[0]
        entry.status.error_message = status.error_message
    return response


def model_metadata_response(servable: Servable
                            ) -> get_model_metadata_pb2.GetModelMetadataResponse:
    """Metadata with the `signature_def` field (the only one TF Serving offers)."""
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = servable.model_name
    response.model_spec.version.value = servable.version
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    for name, signature in servable.meta_graph.signature_def.items():
        if not name.startswith("__"):
            signature_map.signature_def[name].CopyFrom(signature)
    packed = any_pb2.Any()
    packed.Pack(signature_map)
    response.metadata[SIGNATURE_DEF_FIELD].CopyFrom(packed)
    return response
