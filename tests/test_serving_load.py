"""Under load: a push and a `stable` label move lose no request; a tampered version is refused."""
import base64
import logging
import shutil
import threading
import time

import grpc
import pytest
import requests
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from ml.serving.errors import ServingError
from ml.serving.model_config import promote
from tests.serving_fixtures import (RISK_MODEL, SERVING_CONFIG_DIR, pristine_models, push_version,
                                    serialized_trade, start_server, wait_for)

pytestmark = pytest.mark.network

TRADE = serialized_trade(volume=500.0, price=80.0, volatility=0.3)


class _Traffic:
    """Client threads calling the model over REST and gRPC until stopped; records every result."""

    def __init__(self, server, threads_per_protocol=3):
        self.server = server
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.failures = []
        self.versions_by_thread = {}
        self.count = 0
        self.threads = []
        for index in range(threads_per_protocol):
            for worker, label in ((self._rest, "stable"), (self._grpc, None)):
                self.threads.append(threading.Thread(target=worker, args=(label if index % 2 == 0
                                                                          else None,)))

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc_info):
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)

    def versions(self, protocol, label):
        """Each client thread's served versions in request order (order across threads is undefined)."""
        return [versions for (proto, lab, _), versions in self.versions_by_thread.items()
                if (proto, lab) == (protocol, label)]

    def _record(self, target, version=None, failure=None):
        with self.lock:
            self.count += 1
            if failure is not None:
                self.failures.append(failure)
            else:
                key = (*target, threading.get_ident())
                self.versions_by_thread.setdefault(key, []).append(version)

    def _rest(self, label):
        path = f"/v1/models/{RISK_MODEL}" + (f"/labels/{label}" if label else "") + ":predict"
        url = f"http://127.0.0.1:{self.server.rest_api_port}{path}"
        body = {"instances": [{"b64": base64.b64encode(TRADE).decode()}]}
        with requests.Session() as session:
            while not self.stop.is_set():
                try:
                    response = session.post(url, json=body, timeout=30)
                except requests.RequestException as error:
                    self._record(("rest", label), failure=repr(error))
                    continue
                if response.status_code == 200:
                    self._record(("rest", label), int(response.headers["X-Model-Version"]))
                else:
                    self._record(("rest", label), failure=f"{response.status_code} {response.text}")
                time.sleep(0.002)

    def _grpc(self, label):
        channel = grpc.insecure_channel(f"127.0.0.1:{self.server.grpc_port}")
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = RISK_MODEL
        if label:
            request.model_spec.version_label = label
        request.inputs["examples"].CopyFrom(tf.make_tensor_proto([TRADE], dtype=tf.string))
        while not self.stop.is_set():
            try:
                response = stub.Predict(request, timeout=30)
                self._record(("grpc", label), response.model_spec.version.value)
            except grpc.RpcError as error:
                self._record(("grpc", label), failure=f"{error.code()} {error.details()}")
            time.sleep(0.002)
        channel.close()


def _tampered_copy(tmp_path):
    copy = tmp_path / "tampered"
    shutil.copytree(pristine_models()[RISK_MODEL], copy)
    data = next((copy / "variables").glob("variables.data-*"))
    payload = bytearray(data.read_bytes())
    payload[-1] ^= 0xFF
    data.write_bytes(bytes(payload))
    return copy


def _label_version(server, label):
    try:
        return server.manager.status(RISK_MODEL, label=label)[0].version
    except ServingError:
        return None  # the label is not applied yet


def test_push_and_label_move_under_load_lose_no_request(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="ml.serving.model_manager")
    home = tmp_path / "home"
    push_version(home, RISK_MODEL, 1)
    server = start_server(home, enable_batching=True,
                          batching_parameters_file=str(SERVING_CONFIG_DIR / "batching.config"),
                          model_config_file_poll_wait_seconds=0.3)
    try:
        with _Traffic(server) as traffic:
            wait_for(lambda: traffic.count > 50)
            push_version(home, RISK_MODEL, 2)  # Pusher: canary -> 2, stable stays on 1
            wait_for(lambda: _label_version(server, "canary") == 2)
            assert _label_version(server, "stable") == 1
            before_move = traffic.count
            wait_for(lambda: traffic.count > before_move + 50)
            promote(home / "serving_config" / "models.config", RISK_MODEL, "stable", 2)
            wait_for(lambda: _label_version(server, "stable") == 2)
            after_move = traffic.count
            wait_for(lambda: traffic.count > after_move + 50)

            push_version(home, RISK_MODEL, 3, source=_tampered_copy(tmp_path))
            refused = wait_for(lambda: [s for s in server.manager.status(RISK_MODEL)
                                        if s.version == 3 and s.state == "END"])
            after_refusal = traffic.count
            wait_for(lambda: traffic.count > after_refusal + 50)
        assert traffic.failures == []
        assert traffic.count > 200
        stable_threads = traffic.versions("rest", "stable")
        assert {version for versions in stable_threads for version in versions} == {1, 2}
        for versions in stable_threads:
            if 2 in versions:
                after_promotion = versions[versions.index(2):]
                assert set(after_promotion) == {2}, "stable moved back after the promotion"
        assert {version for versions in traffic.versions("grpc", None)
                for version in versions} <= {1, 2}
        assert refused[0].error_code == grpc.StatusCode.DATA_LOSS
        assert "integrity manifest check failed" in refused[0].error_message
        assert "digest mismatch for variables/variables.data" in refused[0].error_message
        status = requests.get(f"http://127.0.0.1:{server.rest_api_port}/v1/models/{RISK_MODEL}"
                              f"/versions/3", timeout=30).json()["model_version_status"][0]
        assert status["state"] == "END" and status["status"]["error_code"] == "DATA_LOSS"
        assert _label_version(server, "canary") == 2, "canary must not point at a refused version"
        assert any(record.levelno == logging.ERROR and "Refused version 3" in record.getMessage()
                   for record in caplog.records)
    finally:
        server.stop()
