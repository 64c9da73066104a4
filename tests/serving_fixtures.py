"""Tiny SavedModels following the serving contract, and helpers to push and serve them.

Models are built once per test process (lru_cache) and copied into each test's ETRM home,
exactly where the Pusher puts them: <home>/serving_models/<model>/<version>/ with a manifest.
"""
import functools
import json
import os
import pathlib
import shutil
import tempfile
from typing import Dict, Optional

import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

from ml.serving.manifest import write_manifest  # noqa: E402
from ml.serving.model_config import register_pushed_version  # noqa: E402
from ml.serving.signatures import (CLASSIFY_METHOD_NAME, REGRESS_METHOD_NAME,  # noqa: E402
                                   set_signature_methods)

RISK_MODEL = "etrm_risk_model"
REPORT_LM = "etrm_report_lm"
# Same format as models/risk/signatures.py writes: {"feature": {"type": ..., "default": ...}}.
FEATURE_DEFAULTS = {
    "volume": {"type": "float", "default": 0.0},
    "price": {"type": "float", "default": 0.0},
    "volatility": {"type": "float", "default": 0.2},
    "tenor_days": {"type": "int", "default": 30},
    "commodity": {"type": "string", "default": "power"},
    "region": {"type": "string", "default": "EU"},
    "instrument": {"type": "string", "default": "forward"},
}
_TF_DTYPES = {"float": tf.float32, "int": tf.int64, "string": tf.string}
RISK_CLASSES = ("NOT_HIGH", "HIGH")


def _feature_spec():
    spec = {}
    for name, entry in FEATURE_DEFAULTS.items():
        default = entry["default"]
        if entry["type"] == "string":
            default = default.encode()
        spec[name] = tf.io.FixedLenFeature([], _TF_DTYPES[entry["type"]], default_value=default)
    return spec


class RiskModel(tf.Module):
    """Risk score from raw trade features. `depth` adds self-attention blocks over feature
    tokens (FT-Transformer style) so a call costs what a real model's call costs."""

    def __init__(self, defaults_path: str, depth: int = 0, width: int = 32):
        super().__init__()
        self.feature_defaults_asset = tf.saved_model.Asset(defaults_path)
        self.weights = tf.Variable([0.9, 2.5, 0.8, 0.4, 0.2], name="weights")
        self.bias = tf.Variable(-2.0, name="bias")
        self.width = width

        def init(shape, seed):
            return tf.Variable(tf.random.stateless_normal(shape, seed=[seed, 7]) * 0.05)
        self.embedding = init([5, width], 0)
        self.blocks = [{name: init([width, width], 10 * index + offset)
                        for offset, name in enumerate(("query", "key", "value", "mix", "up", "down"))}
                       for index in range(depth)]
        self.readout = tf.Variable(tf.zeros([width]), name="readout")
        self._spec = _feature_spec()

    def _features(self, serialized):
        return tf.io.parse_example(serialized, self._spec)

    @staticmethod
    def _normalize(tokens):
        mean, variance = tf.nn.moments(tokens, axes=[-1], keepdims=True)
        return (tokens - mean) * tf.math.rsqrt(variance + 1e-6)

    def _score(self, features):
        notional = tf.math.log1p(tf.abs(features["volume"] * features["price"])) / 10.0
        columns = tf.stack([
            notional, features["volatility"] * 4.0,
            tf.cast(features["tenor_days"], tf.float32) / 365.0,
            tf.cast(tf.equal(features["commodity"], b"power"), tf.float32),
            tf.cast(tf.equal(features["instrument"], b"option"), tf.float32)], axis=1)
        tokens = columns[:, :, None] * self.embedding[None]
        for block in self.blocks:
            query = tf.einsum("bfd,de->bfe", tokens, block["query"])
            key = tf.einsum("bfd,de->bfe", tokens, block["key"])
            value = tf.einsum("bfd,de->bfe", tokens, block["value"])
            attention = tf.nn.softmax(tf.einsum("bfe,bge->bfg", query, key)
                                      / float(self.width) ** 0.5)
            mixed = tf.einsum("bfg,bge->bfe", attention, value)
            tokens = self._normalize(tokens + tf.einsum("bfe,ed->bfd", mixed, block["mix"]))
            hidden = tf.nn.relu(tf.einsum("bfd,de->bfe", tokens, block["up"]))
            tokens = self._normalize(tokens + tf.einsum("bfe,ed->bfd", hidden, block["down"]))
        extra = tf.reduce_sum(tf.reduce_mean(tokens, axis=1) * self.readout, axis=1)
        return tf.sigmoid(tf.reduce_sum(columns * self.weights, axis=1) + self.bias + extra)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve(self, examples):
        score = self._score(self._features(examples))
        level = tf.where(score < 0.33, "LOW", tf.where(score < 0.66, "MEDIUM", "HIGH"))
        return {"risk_score": score, "risk_level": level}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def classify(self, inputs):
        score = self._score(self._features(inputs))
        classes = tf.tile(tf.constant([list(RISK_CLASSES)]), [tf.shape(inputs)[0], 1])
        return {"classes": classes, "scores": tf.stack([1.0 - score, score], axis=1)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def regress(self, inputs):
        return {"outputs": self._score(self._features(inputs))}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def feature_defaults(self, examples):
        return self._features(examples)


class ReportLM(tf.Module):
    """A trivial stand-in for the report language model, with its two signatures."""

    def __init__(self):
        super().__init__()
        self.token_log_prob = tf.Variable(-0.5, name="token_log_prob")

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="prompt"),
                                  tf.TensorSpec([], tf.int32, name="max_new_tokens"),
                                  tf.TensorSpec([], tf.float32, name="temperature"),
                                  tf.TensorSpec([], tf.int32, name="top_k")])
    def generate(self, prompt, max_new_tokens, temperature, top_k):
        suffix = tf.strings.join([" -- risk summary (", tf.strings.as_string(max_new_tokens),
                                  " tokens, T=", tf.strings.as_string(temperature, precision=2),
                                  ", k=", tf.strings.as_string(top_k), ")"])
        return {"text": tf.strings.join([prompt, suffix])}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def score(self, text):
        tokens = tf.cast(tf.strings.split(text).row_lengths(), tf.int32)
        return {"log_likelihood": tf.cast(tokens, tf.float32) * self.token_log_prob,
                "num_tokens": tokens}


def trade_example(**features) -> tf.train.Example:
    example = tf.train.Example()
    for name, value in features.items():
        feature = example.features.feature[name]
        if isinstance(value, (bytes, str)):
            feature.bytes_list.value.append(value.encode() if isinstance(value, str) else value)
        elif isinstance(value, int):
            feature.int64_list.value.append(value)
        else:
            feature.float_list.value.append(value)
    return example


def serialized_trade(**features) -> bytes:
    return trade_example(**features).SerializeToString()


def _write_warmup_file(export_dir: pathlib.Path) -> None:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = RISK_MODEL
    request.model_spec.signature_name = "serving_default"
    request.inputs["examples"].CopyFrom(tf.make_tensor_proto(
        [serialized_trade(volume=10.0, price=50.0)], dtype=tf.string))
    record = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
    target = export_dir / "assets.extra" / "tf_serving_warmup_requests"
    target.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(target)) as writer:
        writer.write(record.SerializeToString())


def build_risk_model(export_dir, depth: int = 0, warmup_file: bool = False) -> pathlib.Path:
    """Exports the risk model contract: four signatures, feature_defaults asset, manifest."""
    export_dir = pathlib.Path(export_dir)
    with tempfile.TemporaryDirectory() as scratch:
        defaults_path = pathlib.Path(scratch) / "feature_defaults.json"
        defaults_path.write_text(json.dumps(FEATURE_DEFAULTS, indent=2))
        module = RiskModel(str(defaults_path), depth=depth)
        tf.saved_model.save(module, str(export_dir), signatures={
            "serving_default": module.serve, "classification": module.classify,
            "regression": module.regress, "feature_defaults": module.feature_defaults})
    set_signature_methods(export_dir, {"classification": CLASSIFY_METHOD_NAME,
                                       "regression": REGRESS_METHOD_NAME})
    if warmup_file:
        _write_warmup_file(export_dir)
    write_manifest(export_dir)
    return export_dir


def build_report_lm(export_dir) -> pathlib.Path:
    export_dir = pathlib.Path(export_dir)
    module = ReportLM()
    tf.saved_model.save(module, str(export_dir),
                        signatures={"generate": module.generate, "score": module.score})
    write_manifest(export_dir)
    return export_dir


@functools.lru_cache(maxsize=None)
def pristine_models() -> Dict[str, pathlib.Path]:
    """Built once per process: the risk model (with a warmup file) and the report LM."""
    root = pathlib.Path(tempfile.mkdtemp(prefix="etrm-serving-models-"))
    return {RISK_MODEL: build_risk_model(root / "risk", warmup_file=True),
            REPORT_LM: build_report_lm(root / "lm")}


def push_version(home, model_name: str, version: int, source: Optional[pathlib.Path] = None,
                 register: bool = True, num_versions: int = 2) -> pathlib.Path:
    """Copies a built model to <home>/serving_models/<model>/<version> the way a Pusher should:
    into a hidden temp folder first, then one rename, then the config update."""
    home = pathlib.Path(home)
    base = home / "serving_models" / model_name
    base.mkdir(parents=True, exist_ok=True)
    staging = base / f".staging-{version}"
    shutil.copytree(source or pristine_models()[model_name], staging)
    target = base / str(version)
    os.rename(staging, target)
    if register:
        register_pushed_version(home / "serving_config" / "models.config", model_name, base,
                                version, num_versions=num_versions)
    return target


SERVING_CONFIG_DIR = pathlib.Path(__file__).resolve().parents[1] / "serving_config"


def start_server(home, **overrides):
    """An in-process model server on free ports (real sockets, real protocols)."""
    from ml.serving.server import ModelServer, ServerOptions

    options = dict(home=str(home), port=0, rest_api_port=0, file_system_poll_wait_seconds=0.2,
                   monitoring_config_file=str(SERVING_CONFIG_DIR / "monitoring.config"),
                   request_log_sampling_rate=0.0, model_load_wait_seconds=120.0)
    options.update(overrides)
    return ModelServer(ServerOptions(**options)).start()


def raw_exchange(port: int, data: bytes, timeout: float = 20.0) -> bytes:
    """Sends raw bytes to 127.0.0.1:port and reads until the server closes the connection
    (for requests no HTTP client library would send)."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw:
        raw.sendall(data)
        chunks = []
        while True:
            chunk = raw.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def raw_http_request(method: str, path: str, body: bytes = b"", headers: str = "") -> bytes:
    """An HTTP/1.1 request as raw bytes (Connection: close; Content-Length for a body or POST)."""
    length = f"Content-Length: {len(body)}\r\n" if body or method == "POST" else ""
    return (f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}{length}\r\n"
            .encode() + body)


def split_http_responses(reply: bytes):
    """[(status, head text, body bytes)] of every response in a raw reply, by Content-Length;
    ValueError when the reply holds bytes that are not an HTTP response."""
    found = []
    while reply:
        head, _, rest = reply.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        if not lines[0].startswith("HTTP/"):
            raise ValueError(f"not an HTTP response: {lines[0][:80]!r}")
        length = next((int(line.split(":", 1)[1]) for line in lines[1:]
                       if line.lower().startswith("content-length:")), 0)
        found.append((int(lines[0].split()[1]), head.decode("latin-1"), rest[:length]))
        reply = rest[length:]
    return found


def fake_version_dir(root: pathlib.Path, name: str = "3") -> pathlib.Path:
    """A version folder with the files of a SavedModel (not a loadable one): for manifest and
    signature checks that only read bytes."""
    version = root / name
    (version / "variables").mkdir(parents=True)
    (version / "saved_model.pb").write_bytes(b"graph")
    (version / "variables" / "variables.index").write_bytes(b"index")
    (version / "assets").mkdir()
    (version / "assets" / "feature_defaults.json").write_text("{}")
    return version


def wait_for(predicate, timeout: float = 60.0, interval: float = 0.1):
    """Polls predicate until it returns a truthy value; fails the test on timeout."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")
