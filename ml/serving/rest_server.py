"""TF Serving's REST API (port 8501) over http.server, plus Prometheus metrics."""
import http.server
import json
import logging
import re
import socket
import threading
from typing import Any, Dict, Optional, Tuple

from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2

from ml.serving import rest_codec
from ml.serving.errors import ServingError, invalid_argument, not_found
from ml.serving.examples import input_to_serialized_examples, json_to_input
from ml.serving.inference import InferenceService, ModelAddress
from ml.serving.responses import model_metadata_response, model_status_response

LOGGER = logging.getLogger(__name__)
MODEL_VERSION_HEADER = "X-Model-Version"
MAX_HEADER_LINE_BYTES = 65536
MAX_HEADER_COUNT = 100
_MODEL_PATH = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)"
    r"(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>[^/:]+))?"
    r"(?:(?P<metadata>/metadata)|:(?P<verb>[A-Za-z]+))?$")


def _json_dict(message) -> Dict[str, Any]:
    return json_format.MessageToDict(message, including_default_value_fields=True,
                                     preserving_proto_field_name=True)


class RestApi:
    """Routes REST requests to the inference service; returns (status, body, headers)."""

    def __init__(self, service: InferenceService, metrics_path: Optional[str]):
        self.service = service
        self.metrics_path = metrics_path

    def handle(self, method: str, path: str, body: Optional[bytes]) -> Tuple[int, bytes, Dict[str, str]]:
        path = path.split("?", 1)[0]
        try:
            if method == "GET" and self.metrics_path and path == self.metrics_path:
                return 200, self.service.metrics.render().encode(), {
                    "Content-Type": "text/plain; version=0.0.4; charset=utf-8"}
            if method == "GET" and path.rstrip("/") == "/v1/models":
                return self._json(200, self._list_models())
            match = _MODEL_PATH.match(path)
            if match is None:
                raise not_found(f"Malformed request: {method} {path}")
            address = self._address(match)
            if method == "GET" and match["verb"] is None:
                if match["metadata"]:
                    return self._metadata(address)
                return self._json(200, _json_dict(model_status_response(
                    self.service.manager.status(address.name, address.version, address.label))))
            if method == "POST" and match["verb"] and not match["metadata"]:
                return self._infer(address, match["verb"], body)
            raise not_found(f"Malformed request: {method} {path}")
        except ServingError as error:
            return self._json(error.http_status, {"error": error.message})

    @staticmethod
    def _json(status: int, payload: Any, headers: Optional[Dict[str, str]] = None):
        all_headers = {"Content-Type": "application/json"}
        all_headers.update(headers or {})
        return status, json.dumps(payload).encode("utf-8"), all_headers

    @staticmethod
    def _address(match) -> ModelAddress:
        version = match["version"]
        if version is not None:
            if not version.isdigit():
                raise invalid_argument(f"Failed to convert version: {version} to numeric.")
            version = int(version)
        return ModelAddress(name=match["name"], version=version, label=match["label"])

    def _list_models(self) -> Dict[str, Any]:
        """Every configured model and its version states (a convenience of this server)."""
        manager = self.service.manager
        return {"models": [dict(name=name, **_json_dict(model_status_response(manager.status(name))))
                           for name in manager.model_names()]}

    def _metadata(self, address: ModelAddress):
        with self.service.observe(address, "metadata", "REST") as observation:
            servable = self.service.manager.resolve(address.name, address.version, address.label)
            observation.version = servable.version
            response = model_metadata_response(servable)
            signature_map = get_model_metadata_pb2.SignatureDefMap()
            response.metadata["signature_def"].Unpack(signature_map)
            payload = {"model_spec": {"name": servable.model_name, "signature_name": "",
                                      "version": str(servable.version)},
                       "metadata": {"signature_def": _json_dict(signature_map)}}
        return self._json(200, payload, {MODEL_VERSION_HEADER: str(servable.version)})

    def _infer(self, address: ModelAddress, verb: str, body: Optional[bytes]):
        if verb not in ("predict", "classify", "regress"):
            raise not_found(f"Malformed request: unknown method :{verb}")
        with self.service.observe(address, verb, "REST") as observation:
            request = self._parse_body(body)
            signature_name = request.get("signature_name", "")
            if not isinstance(signature_name, str):
                raise invalid_argument("'signature_name' must be a string")
            servable = self.service.manager.resolve(address.name, address.version, address.label)
            observation.version = servable.version
            if verb == "predict":
                payload = self._predict(servable, signature_name, request)
            else:
                serialized = input_to_serialized_examples(json_to_input(request))
                if verb == "classify":
                    payload = self._classify(servable, signature_name, serialized)
                else:
                    values = self.service.regress(servable, signature_name, serialized)
                    payload = {"results": values.tolist()}
        return self._json(200, payload, {MODEL_VERSION_HEADER: str(servable.version)})

    @staticmethod
    def _parse_body(body: Optional[bytes]) -> Dict[str, Any]:
        if not body:
            raise invalid_argument("JSON Parse error: the request body is empty")
        try:
            request = json.loads(body)
        except (UnicodeDecodeError, ValueError) as error:
            raise invalid_argument(f"JSON Parse error: {error}") from error
        if not isinstance(request, dict):
            raise invalid_argument("JSON Parse error: the request body must be a JSON object")
        return request

    def _predict(self, servable, signature_name: str, request: Dict[str, Any]) -> Dict[str, Any]:
        has_instances, has_inputs = "instances" in request, "inputs" in request
        if has_instances == has_inputs:
            raise invalid_argument("Missing 'inputs' or 'instances' key" if not has_instances else
                                   "Not formatted correctly: use either 'instances' or 'inputs'")
        spec = servable.signature(signature_name or "serving_default")
        if has_instances:
            inputs = rest_codec.decode_instances(request["instances"], spec)
            outputs = self.service.predict(servable, spec.name, inputs)
            return {"predictions": rest_codec.encode_predictions(outputs)}
        inputs = rest_codec.decode_inputs(request["inputs"], spec)
        outputs = self.service.predict(servable, spec.name, inputs)
        return {"outputs": rest_codec.encode_outputs(outputs)}

    def _classify(self, servable, signature_name: str, serialized) -> Dict[str, Any]:
        classes, scores = self.service.classify(servable, signature_name, serialized)
        results = []
        for row in range(len(serialized)):
            width = (classes if classes is not None else scores).shape[1]
            results.append([[classes[row, column].decode("utf-8", "replace")
                             if classes is not None else "",
                             float(scores[row, column]) if scores is not None else 0.0]
                            for column in range(width)])
        return {"results": results}


class RequestHeaders(dict):
    """Request header fields by lower-cased name (the first of repeated fields, as email's
    Message.get returns)."""

    def get(self, name: str, default: Optional[str] = None) -> Optional[str]:
        return super().get(name.lower(), default)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ETRMModelServer"

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def parse_request(self) -> bool:
        """The request line and plain `Name: value` header lines, HTTP/1.0 and 1.1.

        Replaces http.server's parser, which builds an email.message.Message per request:
        about 70 us, a visible share of a one-trade predict. Keep-alive and
        `Expect: 100-continue` behave as in http.server; errors are JSON like every other."""
        self.command = None
        self.request_version = self.default_request_version
        self.close_connection = True
        self.requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = self.requestline.split()
        if len(words) != 3:
            return self._refuse(400, f"Bad request syntax ({self.requestline!r:.200})")
        command, path, version = words
        number = version[5:] if version.startswith("HTTP/") else ""
        if number not in ("1.0", "1.1"):
            if number[:1].isdigit() and number[:1] >= "2":
                return self._refuse(505, f"Invalid HTTP version ({number:.20})")
            return self._refuse(400, f"Bad request version ({version!r:.40})")
        self.command, self.path, self.request_version = command, path, version
        headers = self._read_headers()
        if headers is None:
            return False
        self.headers = headers
        connection = headers.get("connection", "").lower()
        self.close_connection = connection == "close" or (
            version == "HTTP/1.0" and connection != "keep-alive")
        if headers.get("expect", "").lower() == "100-continue" and version == "HTTP/1.1":
            return self.handle_expect_100()
        return True

    def _read_headers(self) -> Optional[RequestHeaders]:
        headers = RequestHeaders()
        for _ in range(MAX_HEADER_COUNT + 1):
            line = self.rfile.readline(MAX_HEADER_LINE_BYTES + 1)
            if len(line) > MAX_HEADER_LINE_BYTES:
                self._refuse(431, f"a header line is longer than {MAX_HEADER_LINE_BYTES} bytes")
                return None
            if line in (b"\r\n", b"\n", b""):
                return headers
            name, colon, value = line.decode("iso-8859-1").partition(":")
            if not colon or not name or name != name.strip():
                self._refuse(400, f"malformed header line {line[:80]!r}")
                return None
            headers.setdefault(name.lower(), value.strip())
        self._refuse(431, f"more than {MAX_HEADER_COUNT} header lines")
        return None

    def _refuse(self, status: int, message: str) -> bool:
        """Answers a request that cannot be parsed and closes the connection; False, the
        failed-parse result of parse_request."""
        self._reply(status, json.dumps({"error": message}).encode(),
                    {"Content-Type": "application/json"}, close=True)
        return False

    def do_GET(self):  # noqa: N802 - http.server naming
        self._serve(None)

    def do_POST(self):  # noqa: N802 - http.server naming
        length_header = self.headers.get("Content-Length")
        if length_header is None or not length_header.isdigit():
            self._reply(411 if length_header is None else 400,
                        json.dumps({"error": "a Content-Length header is required"}).encode(),
                        {"Content-Type": "application/json"}, close=True)
            return
        length = int(length_header)
        if length > self.server.max_body_bytes:
            self._reply(413, json.dumps({"error": f"request body of {length} bytes exceeds the "
                                                  f"limit of {self.server.max_body_bytes} bytes"}).encode(),
                        {"Content-Type": "application/json"}, close=True)
            return
        self._serve(self.rfile.read(length))

    def _serve(self, body: Optional[bytes]):
        if not self.server.tracker.enter():
            self._reply(503, json.dumps({"error": "the server is shutting down"}).encode(),
                        {"Content-Type": "application/json"}, close=True)
            return
        try:
            status, payload, headers = self.server.api.handle(self.command, self.path, body)
            self._reply(status, payload, headers)
        finally:
            self.server.tracker.leave()

    def _reply(self, status: int, payload: bytes, headers: Dict[str, str], close: bool = False):
        lines = [f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0]}",
                 f"Content-Length: {len(payload)}"]
        lines += [f"{key}: {value}" for key, value in headers.items()]
        if close:
            lines.append("Connection: close")
            self.close_connection = True
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload)

    def log_message(self, format, *args):  # noqa: A002 - http.server signature
        LOGGER.debug("%s - %s", self.address_string(), format % args)


class InFlightTracker:
    """Counts requests being served so shutdown can wait for them to finish."""

    def __init__(self):
        self._condition = threading.Condition()
        self._active = 0
        self._accepting = True

    def enter(self) -> bool:
        with self._condition:
            if not self._accepting:
                return False
            self._active += 1
            return True

    def leave(self) -> None:
        with self._condition:
            self._active -= 1
            self._condition.notify_all()

    def drain(self, timeout: float) -> bool:
        with self._condition:
            self._accepting = False
            return self._condition.wait_for(lambda: self._active == 0, timeout=timeout)


class RestServer(http.server.ThreadingHTTPServer):
    """A thread per connection; HTTP/1.1 keep-alive so clients reuse connections."""
    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True

    def __init__(self, address: Tuple[str, int], api: RestApi, max_body_bytes: int):
        super().__init__(address, _Handler)
        self.api = api
        self.max_body_bytes = max_body_bytes
        self.tracker = InFlightTracker()
        self._thread: Optional[threading.Thread] = None

    @property
    def port(self) -> int:
        return self.server_address[1]

    def start(self) -> None:
        self._thread = threading.Thread(target=self.serve_forever, name="rest-server", daemon=True)
        self._thread.start()

    def stop(self, grace_seconds: float) -> None:
        """Stops accepting, lets in-flight requests finish (bounded), then closes."""
        self.shutdown()
        self.tracker.drain(grace_seconds)
        self.server_close()


