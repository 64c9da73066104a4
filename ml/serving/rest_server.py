"""TF Serving's REST API (port 8501) on aiohttp, on the server's one event loop.

aiohttp brings the hardened HTTP/1.1 parser (llhttp), keep-alive and pipelining; this module
adds what a model server exposed to hostile clients needs on top: every failure, down to an
unparseable request line, answered in TF Serving's JSON error format `{"error": "..."}`; a
deadline for a request's headers (the idle/keep-alive timeout) and for its body; a cap on open
connections; the request-size limit. Handlers never block the loop on a model: predict goes
through InferenceService.predict_async (batched requests wait on the loop, others run on the
thread pool), and every other synchronous call runs on the thread pool.
"""
import asyncio
import concurrent.futures
import functools
import json
import logging
import re
import ssl
from http import HTTPStatus
from typing import Any, Callable, Dict, Optional, Tuple

import async_timeout
from aiohttp import hdrs, http_exceptions, web, web_protocol, web_request, web_server
from aiohttp.http import HttpVersion11
from aiohttp.web_exceptions import HTTPRequestEntityTooLarge
from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2

from ml.serving import rest_codec
from ml.serving.errors import ServingError, invalid_argument, not_found
from ml.serving.examples import input_to_serialized_examples, json_to_input
from ml.serving.inference import InferenceService, ModelAddress
from ml.serving.responses import model_metadata_response, model_status_response
from ml.serving.signatures import DEFAULT_SIGNATURE

LOGGER = logging.getLogger(__name__)
MODEL_VERSION_HEADER = "X-Model-Version"
JSON_TYPE = "application/json"
ALLOWED_METHODS = ("GET", "POST")
MAX_VERSION = 2 ** 63 - 1
# Bodies up to this size are parsed on the event loop (cheaper than a thread hand-off);
# larger ones on the thread pool so one big request never stalls the others.
INLINE_BODY_BYTES = 64 * 1024
MAX_ECHOED_CHARS = 64
_MODEL_PATH = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)"
    r"(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>[^/:]+))?"
    r"(?:(?P<metadata>/metadata)|:(?P<verb>[A-Za-z]+))?$")
_VERSION = re.compile(r"[0-9]{1,19}")


def _json_dict(message) -> Dict[str, Any]:
    return json_format.MessageToDict(message, including_default_value_fields=True,
                                     preserving_proto_field_name=True)


def _echo(text: str) -> str:
    """A client-supplied string as quoted in an error: bounded, so a 5,000-character version
    or path never makes a 5,000-character message."""
    return text if len(text) <= MAX_ECHOED_CHARS else text[:MAX_ECHOED_CHARS] + "..."


def json_error(message: str) -> bytes:
    return json.dumps({"error": message}).encode("utf-8")


Reply = Tuple[int, bytes, Dict[str, str]]


class RestApi:
    """Routes REST requests to the inference service; handle() returns (status, body, headers)."""

    def __init__(self, service: InferenceService, metrics_path: Optional[str],
                 executor: concurrent.futures.Executor,
                 render_metrics: Optional[Callable[[], bytes]] = None):
        self.service = service
        self.metrics_path = metrics_path
        self._executor = executor
        self._render_metrics = render_metrics or (lambda: service.metrics.render().encode())

    async def _offload(self, function, *args):
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, functools.partial(function, *args))

    async def handle(self, method: str, path: str, body: Optional[bytes]) -> Reply:
        try:
            return await self._route(method, path, body)
        except ServingError as error:
            return self._json(error.http_status, {"error": error.message})

    async def _route(self, method: str, path: str, body: Optional[bytes]) -> Reply:
        if method not in ALLOWED_METHODS:
            return self._json(HTTPStatus.METHOD_NOT_ALLOWED, {
                "error": f"Method {_echo(method)} is not supported: use GET or POST"},
                {"Allow": ", ".join(ALLOWED_METHODS)})
        if method == "GET" and self.metrics_path and path == self.metrics_path:
            return 200, await self._offload(self._render_metrics), {
                "Content-Type": "text/plain; version=0.0.4; charset=utf-8"}
        if method == "GET" and path.rstrip("/") == "/v1/models":
            return self._json(200, await self._offload(self._list_models))
        match = _MODEL_PATH.match(path)
        if match is None:
            raise not_found(f"Malformed request: {method} {_echo(path)}")
        address = self._address(match)
        if method == "GET" and match["verb"] is None:
            if match["metadata"]:
                return await self._offload(self._metadata, address)
            statuses = await self._offload(self.service.manager.status, address.name,
                                           address.version, address.label)
            return self._json(200, _json_dict(model_status_response(statuses)))
        if method == "POST" and match["verb"] and not match["metadata"]:
            return await self._infer(address, match["verb"], body)
        raise not_found(f"Malformed request: {method} {_echo(path)}")

    @staticmethod
    def _json(status: int, payload: Any, headers: Optional[Dict[str, str]] = None) -> Reply:
        all_headers = {"Content-Type": JSON_TYPE}
        all_headers.update(headers or {})
        return int(status), json.dumps(payload).encode("utf-8"), all_headers

    @staticmethod
    def _address(match) -> ModelAddress:
        version = match["version"]
        if version is not None:
            if not _VERSION.fullmatch(version) or int(version) > MAX_VERSION:
                raise invalid_argument(f"Failed to convert version: {_echo(version)} to numeric.")
            version = int(version)
        return ModelAddress(name=match["name"], version=version, label=match["label"])

    def _list_models(self) -> Dict[str, Any]:
        """Every configured model and its version states (a convenience of this server)."""
        manager = self.service.manager
        return {"models": [dict(name=name, **_json_dict(model_status_response(manager.status(name))))
                           for name in manager.model_names()]}

    def _metadata(self, address: ModelAddress) -> Reply:
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

    async def _infer(self, address: ModelAddress, verb: str, body: Optional[bytes]) -> Reply:
        if verb not in ("predict", "classify", "regress"):
            raise not_found(f"Malformed request: unknown method :{_echo(verb)}")
        if verb != "predict":
            return await self._offload(self._examples_call, address, verb, body)
        with self.service.observe(address, verb, "REST") as observation:
            if body is not None and len(body) > INLINE_BODY_BYTES:
                servable, spec, inputs, rows = await self._offload(
                    self._decode_predict, address, body)
            else:
                servable, spec, inputs, rows = self._decode_predict(address, body)
            observation.version = servable.version
            outputs = await self.service.predict_async(servable, spec.name, inputs, (),
                                                       self._executor)
            payload = ({"predictions": rest_codec.encode_predictions(outputs)} if rows
                       else {"outputs": rest_codec.encode_outputs(outputs)})
        return self._json(200, payload, {MODEL_VERSION_HEADER: str(servable.version)})

    def _decode_predict(self, address: ModelAddress, body: Optional[bytes]):
        """(servable, signature, inputs, row format?) of a :predict body."""
        request = self._parse_body(body)
        signature_name = self._signature_name(request)
        servable = self.service.manager.resolve(address.name, address.version, address.label)
        has_instances, has_inputs = "instances" in request, "inputs" in request
        if has_instances == has_inputs:
            raise invalid_argument("Missing 'inputs' or 'instances' key" if not has_instances else
                                   "Not formatted correctly: use either 'instances' or 'inputs'")
        spec = servable.signature(signature_name or DEFAULT_SIGNATURE)
        with _decoding():
            if has_instances:
                return servable, spec, rest_codec.decode_instances(request["instances"], spec), True
            return servable, spec, rest_codec.decode_inputs(request["inputs"], spec), False

    def _examples_call(self, address: ModelAddress, verb: str, body: Optional[bytes]) -> Reply:
        with self.service.observe(address, verb, "REST") as observation:
            request = self._parse_body(body)
            signature_name = self._signature_name(request)
            servable = self.service.manager.resolve(address.name, address.version, address.label)
            observation.version = servable.version
            with _decoding():
                serialized = input_to_serialized_examples(json_to_input(request))
            if verb == "classify":
                payload = self._classify(servable, signature_name, serialized)
            else:
                values = self.service.regress(servable, signature_name, serialized)
                payload = {"results": values.tolist()}
        return self._json(200, payload, {MODEL_VERSION_HEADER: str(servable.version)})

    @staticmethod
    def _signature_name(request: Dict[str, Any]) -> str:
        signature_name = request.get("signature_name", "")
        if not isinstance(signature_name, str):
            raise invalid_argument("'signature_name' must be a string")
        return signature_name

    @staticmethod
    def _parse_body(body: Optional[bytes]) -> Dict[str, Any]:
        if not body:
            raise invalid_argument("JSON Parse error: the request body is empty")
        try:
            request = json.loads(body)
        except RecursionError as error:
            raise invalid_argument("JSON Parse error: the request body is nested too deeply"
                                   ) from error
        except (UnicodeDecodeError, ValueError) as error:
            raise invalid_argument(f"JSON Parse error: {error}") from error
        if not isinstance(request, dict):
            raise invalid_argument("JSON Parse error: the request body must be a JSON object")
        return request

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


class _decoding:
    """Turns what a JSON value can make the decoders raise (a value out of a type's range, a
    list nested past Python's recursion limit) into INVALID_ARGUMENT, naming the problem."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, traceback):
        if exc is None or isinstance(exc, ServingError):
            return False
        if isinstance(exc, RecursionError):
            raise invalid_argument("the request is nested too deeply") from exc
        if isinstance(exc, (ValueError, TypeError, OverflowError)):
            raise invalid_argument(f"the request has an invalid value: {_echo(str(exc))}") from exc
        return False


def _reply(status: int, body: bytes, headers: Dict[str, str], close: bool = False
           ) -> web.Response:
    response = web.Response(status=status, body=body, headers=headers)
    if close:
        response.force_close()
    return response


def _error_reply(status: int, message: str, close: bool = False) -> web.Response:
    return _reply(status, json_error(message), {"Content-Type": JSON_TYPE}, close)


class _Connection(web_protocol.RequestHandler):
    """aiohttp's connection handler, answering what it cannot parse in TF Serving's JSON."""

    def handle_error(self, request, status: int = 500, exc: Optional[BaseException] = None,
                     message: Optional[str] = None) -> web.StreamResponse:
        if request.writer.output_size > 0:
            raise ConnectionError("the response was already started")
        if status >= 500:
            LOGGER.error("REST request from %s failed", request.remote, exc_info=exc)
            text = "Internal error while handling the request"
        else:
            if isinstance(exc, http_exceptions.LineTooLong) or "Too many headers" in str(exc):
                status = HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE
            LOGGER.debug("malformed HTTP request from %s: %s", request.remote, message)
            detail = (message or getattr(exc, "message", "") or str(exc or "")).strip()
            text = f"Malformed HTTP request: {detail.splitlines()[0] if detail else 'unparseable'}"
        return _error_reply(status, text[:400], close=True)


_SENT_VERSION = "etrm_http_version"
_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
         b"Connection: close\r\nContent-Length: %d\r\n\r\n%s")


class _HttpServer(web_server.Server):
    """aiohttp's low-level server with a cap on open connections: one over the cap is told
    so (503, JSON) and closed instead of taking memory and a slot."""

    def __init__(self, handler, max_connections: int, **kwargs):
        super().__init__(handler, **kwargs)
        self.max_connections = max_connections

    def __call__(self) -> web_protocol.RequestHandler:
        return _Connection(self, loop=self._loop, **self._kwargs)

    def connection_made(self, handler, transport) -> None:
        super().connection_made(handler, transport)
        if len(self._connections) > self.max_connections:
            body = json_error(f"too many connections (limit {self.max_connections})")
            transport.write(_BUSY % (len(body), body))
            handler.force_close()


class RestServer:
    """The REST front end: an aiohttp server bound on the given loop."""

    def __init__(self, api: RestApi, max_body_bytes: int, idle_timeout_seconds: float,
                 body_timeout_seconds: float, max_connections: int):
        self.api = api
        self.max_body_bytes = max_body_bytes
        self.idle_timeout_seconds = idle_timeout_seconds
        self.body_timeout_seconds = body_timeout_seconds
        self.max_connections = max_connections
        self._http: Optional[_HttpServer] = None
        self._listener: Optional[asyncio.AbstractServer] = None
        self.port: Optional[int] = None

    def _make_request(self, message, payload, protocol, writer, task) -> web_request.BaseRequest:
        """aiohttp's request, with the body limit; a request line naming an HTTP version other
        than 1.0 or 1.1 (which llhttp lets through) is answered as HTTP/1.1 with a 505."""
        version = message.version
        if version[0] != 1 or version[1] not in (0, 1):
            message = message._replace(version=HttpVersion11, should_close=True)
        request = web_request.BaseRequest(message, payload, protocol, writer, task,
                                          protocol._loop, client_max_size=self.max_body_bytes)
        request[_SENT_VERSION] = version
        return request

    async def start(self, host: str, port: int, ssl_context: Optional[ssl.SSLContext] = None
                    ) -> int:
        """Binds and starts serving; returns the bound port (port 0 picks a free one)."""
        self._http = _HttpServer(self._handle, self.max_connections,
                                 request_factory=self._make_request,
                                 keepalive_timeout=self.idle_timeout_seconds,
                                 access_log=None, max_line_size=16384, max_field_size=16384,
                                 max_headers=100, lingering_time=1.0)
        self._listener = await asyncio.get_running_loop().create_server(
            self._http, host, port, ssl=ssl_context, reuse_address=True, backlog=256,
            ssl_handshake_timeout=self.idle_timeout_seconds if ssl_context else None)
        self.port = self._listener.sockets[0].getsockname()[1]
        return self.port

    async def _handle(self, request: web_request.BaseRequest) -> web.StreamResponse:
        method = request.method
        version = request.get(_SENT_VERSION, request.version)
        if version[0] != 1 or version[1] not in (0, 1):
            return _error_reply(505, f"HTTP version {version[0]}.{version[1]} is not supported: "
                                     f"use HTTP/1.1", close=True)
        if (method == "POST" and request.content_length is None
                and hdrs.TRANSFER_ENCODING not in request.headers):
            return _error_reply(411, "a Content-Length header is required", close=True)
        length = request.content_length
        if length is not None and length > self.max_body_bytes:
            return _error_reply(413, f"request body of {length} bytes exceeds the limit of "
                                     f"{self.max_body_bytes} bytes", close=True)
        body = None
        if request.body_exists:
            if (request.version == HttpVersion11
                    and request.headers.get(hdrs.EXPECT, "").lower() == "100-continue"):
                await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            try:
                # A timeout scope, not asyncio.wait_for: that starts a task per request, one
                # more event-loop turn on every request's path.
                async with async_timeout.timeout(self.body_timeout_seconds):
                    body = await request.read()
            except asyncio.TimeoutError:
                # The rest of the body is not wanted: without this aiohttp would linger
                # reading it for lingering_time before closing.
                request.content.feed_eof()
                return _error_reply(408, f"the request body did not arrive within "
                                         f"{self.body_timeout_seconds:g} s", close=True)
            except HTTPRequestEntityTooLarge:
                return _error_reply(413, f"request body exceeds the limit of "
                                         f"{self.max_body_bytes} bytes", close=True)
        try:
            status, payload, headers = await self.api.handle(method, request.path, body)
        except Exception:  # noqa: BLE001 - answer every failure in JSON, never drop it
            LOGGER.exception("REST %s %s failed", method, _echo(request.path))
            return _error_reply(500, "Internal error while handling the request")
        return _reply(status, payload, headers)

    async def stop(self, grace_seconds: float) -> None:
        """Stops accepting, lets in-flight requests finish (bounded), then closes."""
        if self._listener is not None:
            self._listener.close()
        if self._http is not None:
            await self._http.shutdown(grace_seconds)
        if self._listener is not None:
            await self._listener.wait_closed()
