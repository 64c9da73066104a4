"""TF Serving's REST JSON tensor format: `instances` rows or `inputs` columns, {"b64": ...}."""
import base64
import binascii
from typing import Any, Dict, List, Mapping, Tuple

import numpy as np

from ml.serving.errors import invalid_argument
from ml.serving.servable import numpy_dtype
from ml.serving.signatures import SignatureSpec


def _leaf(value: Any, kind: str, alias: str) -> Any:
    if kind == "O":
        if isinstance(value, str):
            return value.encode("utf-8")
        if isinstance(value, dict) and set(value) == {"b64"} and isinstance(value["b64"], str):
            try:
                return base64.b64decode(value["b64"], validate=True)
            except (binascii.Error, ValueError) as error:
                raise invalid_argument(f"Input '{alias}': invalid base64 value: {error}") from error
        raise invalid_argument(f"Input '{alias}' expects strings (or {{\"b64\": ...}} for binary) "
                               f"but got {type(value).__name__} {value!r:.60}")
    if kind == "b":
        if isinstance(value, bool):
            return value
        raise invalid_argument(f"Input '{alias}' expects booleans but got {value!r:.60}")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise invalid_argument(f"Input '{alias}' expects numbers but got "
                               f"{type(value).__name__} {value!r:.60}")
    if kind in "iu" and isinstance(value, float):
        raise invalid_argument(f"Input '{alias}' expects integers but got {value!r}")
    return value


def _collect(value: Any, kind: str, alias: str, leaves: List[Any], depth: int) -> Tuple[int, ...]:
    if isinstance(value, list):
        if depth > 32:
            raise invalid_argument(f"Input '{alias}' is nested too deeply")
        shapes = [_collect(item, kind, alias, leaves, depth + 1) for item in value]
        if any(shape != shapes[0] for shape in shapes):
            raise invalid_argument(f"Input '{alias}' is a ragged list: all elements of a tensor "
                                   f"must have the same shape")
        return (len(value),) + (shapes[0] if shapes else ())
    leaves.append(_leaf(value, kind, alias))
    return ()


def json_to_array(value: Any, dtype_enum: int, alias: str) -> np.ndarray:
    """A JSON (nested) value as a numpy array of the signature input's dtype."""
    dtype = numpy_dtype(dtype_enum)
    leaves: List[Any] = []
    shape = _collect(value, dtype.kind, alias, leaves, 0)
    if dtype == object:
        array = np.empty(len(leaves), dtype=object)
        array[:] = leaves
        return array.reshape(shape)
    if dtype.kind in "iu":
        bounds = np.iinfo(dtype)
        for leaf in leaves:
            if not bounds.min <= leaf <= bounds.max:
                raise invalid_argument(f"Input '{alias}': value {leaf} is out of range for {dtype}")
    return np.array(leaves, dtype=dtype).reshape(shape)


def decode_instances(instances: Any, spec: SignatureSpec) -> Dict[str, np.ndarray]:
    """Row format: one list element per example; objects name inputs, bare values fit one input."""
    if not isinstance(instances, list) or not instances:
        raise invalid_argument("'instances' must be a non-empty JSON list")
    aliases = list(spec.inputs)
    named = all(isinstance(row, dict) and not set(row) == {"b64"} for row in instances)
    if not named:
        if len(aliases) != 1:
            raise invalid_argument(f"signature {spec.name} has inputs {sorted(aliases)}: each "
                                   f"instance must be a JSON object naming them")
        if any(isinstance(row, dict) and set(row) != {"b64"} for row in instances):
            raise invalid_argument("instances mix JSON objects and bare values")
        return {aliases[0]: json_to_array(instances, spec.inputs[aliases[0]].dtype, aliases[0])}
    keys = set(instances[0])
    if any(set(row) != keys for row in instances):
        raise invalid_argument("every instance must name the same inputs")
    unknown = sorted(keys - set(aliases))
    if unknown:
        raise invalid_argument(f"instances name unknown input '{unknown[0]}'; signature "
                               f"{spec.name} has inputs {sorted(aliases)}")
    return {alias: json_to_array([row[alias] for row in instances], spec.inputs[alias].dtype, alias)
            for alias in keys}


def decode_inputs(inputs: Any, spec: SignatureSpec) -> Dict[str, np.ndarray]:
    """Columnar format: {"alias": tensor, ...}, or a bare tensor for a one-input signature."""
    aliases = list(spec.inputs)
    if isinstance(inputs, dict) and set(inputs) != {"b64"}:
        unknown = sorted(set(inputs) - set(aliases))
        if unknown:
            raise invalid_argument(f"'inputs' names unknown input '{unknown[0]}'; signature "
                                   f"{spec.name} has inputs {sorted(aliases)}")
        return {alias: json_to_array(value, spec.inputs[alias].dtype, alias)
                for alias, value in inputs.items()}
    if len(aliases) != 1:
        raise invalid_argument(f"signature {spec.name} has inputs {sorted(aliases)}: 'inputs' "
                               f"must be a JSON object naming them")
    return {aliases[0]: json_to_array(inputs, spec.inputs[aliases[0]].dtype, aliases[0])}


def _json_values(value: Any, as_b64: bool) -> Any:
    if isinstance(value, list):
        return [_json_values(item, as_b64) for item in value]
    if isinstance(value, bytes):
        if not as_b64:
            try:
                return value.decode("utf-8")
            except UnicodeDecodeError:
                pass
        return {"b64": base64.b64encode(value).decode("ascii")}
    return value


def array_to_json(alias: str, value: np.ndarray) -> Any:
    """A numpy output as JSON; string outputs whose alias ends in `_bytes` are base64 objects."""
    return _json_values(value.tolist(), alias.endswith("_bytes"))


def encode_predictions(outputs: Mapping[str, np.ndarray]) -> List[Any]:
    """Row format response: per row a value (one output) or an object of outputs."""
    sizes = {value.shape[0] if value.ndim else None for value in outputs.values()}
    if len(sizes) != 1 or None in sizes:
        raise invalid_argument("outputs do not share a batch dimension; use the columnar "
                               "'inputs' request format to get them")
    if len(outputs) == 1:
        alias, value = next(iter(outputs.items()))
        return array_to_json(alias, value)
    rows = sizes.pop()
    columns = {alias: array_to_json(alias, value) for alias, value in outputs.items()}
    return [{alias: column[row] for alias, column in columns.items()} for row in range(rows)]


def encode_outputs(outputs: Mapping[str, np.ndarray]) -> Any:
    """Columnar response: the tensor (one output) or an object of tensors."""
    if len(outputs) == 1:
        alias, value = next(iter(outputs.items()))
        return array_to_json(alias, value)
    return {alias: array_to_json(alias, value) for alias, value in outputs.items()}
