"""Signature contracts read from saved_model.pb, independent of how the model was built."""
import dataclasses
import functools
import pathlib
from typing import Dict, Optional, Tuple

from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

PREDICT_METHOD_NAME = "tensorflow/serving/predict"
CLASSIFY_METHOD_NAME = "tensorflow/serving/classify"
REGRESS_METHOD_NAME = "tensorflow/serving/regress"
DEFAULT_SIGNATURE = "serving_default"
SERVE_TAG = "serve"


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    """One signature input or output: its alias, DataType enum and shape (-1 = any size)."""
    alias: str
    dtype: int
    shape: Optional[Tuple[int, ...]]  # None when the rank is unknown

    @functools.cached_property  # asked on every request
    def batch_major(self) -> bool:
        return self.shape is not None and len(self.shape) >= 1 and self.shape[0] == -1


@dataclasses.dataclass(frozen=True)
class SignatureSpec:
    """A signature's method and tensors; `batchable` when every tensor has a free batch dim."""
    name: str
    method_name: str
    inputs: Dict[str, TensorSpec]
    outputs: Dict[str, TensorSpec]

    @functools.cached_property  # asked on every request
    def batchable(self) -> bool:
        tensors = list(self.inputs.values()) + list(self.outputs.values())
        return bool(self.inputs) and all(spec.batch_major for spec in tensors)


def _tensor_spec(alias: str, info: meta_graph_pb2.TensorInfo) -> TensorSpec:
    if info.tensor_shape.unknown_rank:
        shape = None
    else:
        shape = tuple(int(dim.size) for dim in info.tensor_shape.dim)
    return TensorSpec(alias=alias, dtype=int(info.dtype), shape=shape)


def read_serving_meta_graph(saved_model_dir) -> meta_graph_pb2.MetaGraphDef:
    """The MetaGraphDef tagged `serve` (the one TF Serving loads)."""
    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString((pathlib.Path(saved_model_dir) / "saved_model.pb").read_bytes())
    for meta_graph in saved_model.meta_graphs:
        if SERVE_TAG in meta_graph.meta_info_def.tags:
            return meta_graph
    raise ValueError(f"{saved_model_dir} has no MetaGraphDef tagged {SERVE_TAG!r}")


def signature_specs(meta_graph: meta_graph_pb2.MetaGraphDef) -> Dict[str, SignatureSpec]:
    """Every serving signature except TF's internal `__saved_model_init_op`."""
    specs = {}
    for name, signature in meta_graph.signature_def.items():
        if name.startswith("__"):
            continue
        specs[name] = SignatureSpec(
            name=name, method_name=signature.method_name,
            inputs={alias: _tensor_spec(alias, info) for alias, info in signature.inputs.items()},
            outputs={alias: _tensor_spec(alias, info) for alias, info in signature.outputs.items()})
    return specs


def set_signature_methods(saved_model_dir, methods: Dict[str, str]) -> None:
    """Rewrites signature method names in saved_model.pb, e.g. {"classification": CLASSIFY}.

    tf.saved_model.save marks every signature as predict; TF Serving's Classify and Regress
    only accept signatures marked classify or regress, so exporters call this before the
    integrity manifest is written.
    """
    path = pathlib.Path(saved_model_dir) / "saved_model.pb"
    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString(path.read_bytes())
    for meta_graph in saved_model.meta_graphs:
        for name, method_name in methods.items():
            if name not in meta_graph.signature_def:
                raise KeyError(f"signature {name!r} not found in {saved_model_dir}")
            meta_graph.signature_def[name].method_name = method_name
    temp_path = path.with_suffix(".pb.tmp")
    temp_path.write_bytes(saved_model.SerializeToString())
    temp_path.replace(path)
