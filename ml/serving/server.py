"""The local model server: model manager, batching, metrics, request log, REST and gRPC.

gRPC (grpc.aio), REST (aiohttp) and batch delivery share one event loop on one thread; model
calls and other blocking work run on one thread pool."""
import asyncio
import concurrent.futures
import logging
import threading
from typing import Callable, List, Optional

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from ml.core.atomic_files import remove_stale_temporaries
from ml.core.home import Home
from ml.core.tls import grpc_server_credentials, read_ssl_config, server_ssl_context
from ml.serving.batching import BatchingOptions, BatchScheduler
from ml.serving.config_protos import (BatchingParameters, DEFAULT_PROMETHEUS_PATH,
                                      read_batching_parameters, read_monitoring_config)
from ml.serving.errors import ServingError
from ml.serving.event_loop import EventLoopThread
from ml.serving.grpc_server import GrpcServer
from ml.serving.inference import InferenceService
from ml.serving.manifest import load_public_keys
from ml.serving.metrics import ServingMetrics
from ml.serving.model_config import parse_model_server_config
from ml.serving.model_manager import ModelManager
from ml.serving.request_log import RequestLogger
from ml.serving.options import ServerOptions
from ml.serving.rest_server import RestApi, RestServer

LOGGER = logging.getLogger(__name__)
# A writer's temporary older than this belongs to a process that died before its rename.
STALE_TEMPORARY_SECONDS = 600.0


class ModelServer:
    """Starts, reloads and gracefully stops every part of the local model server."""

    def __init__(self, options: ServerOptions):
        self.options = options
        self.home = options.resolved_home()
        self.metrics = ServingMetrics()
        self.batcher = self._build_batcher()
        key_path = options.signing_public_key_path()
        if key_path is not None:
            LOGGER.info("model versions must be signed by a key in %s", key_path)
        self.manager = ModelManager(
            self.home, on_unload=self._forget_batches,
            public_keys=load_public_keys(key_path) if key_path is not None else None)
        self.request_logger = None
        if options.request_log_sampling_rate > 0:
            self.request_logger = RequestLogger(
                Home(self.home).serving_logs_dir, options.request_log_sampling_rate,
                options.request_log_max_records_per_file,
                options.request_log_max_file_age_seconds, metrics=self.metrics)
        self.service = InferenceService(self.manager, self.metrics, self.batcher,
                                        self.request_logger)
        self._config_text: Optional[str] = None
        self._config_lock = threading.Lock()
        self._stopping = threading.Event()
        self._pollers: List[threading.Thread] = []
        self._loop: Optional[EventLoopThread] = None
        self._executor: Optional[concurrent.futures.ThreadPoolExecutor] = None
        self._grpc: Optional[GrpcServer] = None
        self._rest: Optional[RestServer] = None
        self.grpc_port = None
        self.rest_api_port = None

    def _build_batcher(self) -> Optional[BatchScheduler]:
        if not self.options.enable_batching:
            return None
        params = (read_batching_parameters(self.options.batching_parameters_file)
                  if self.options.batching_parameters_file else BatchingParameters())
        options = BatchingOptions.from_proto(params)
        LOGGER.info("batching enabled: %s", options)

        def on_batch(key, rows: int, padded: int) -> None:
            model_name, version = key[0], key[1]
            self.metrics.record_batch(model_name, version, rows, padded)
        return BatchScheduler(options, on_batch=on_batch)

    def _forget_batches(self, model_name: str, version: int) -> None:
        if self.batcher is not None:
            self.batcher.forget(lambda key: key[:2] == (model_name, version))

    def _metrics_path(self) -> Optional[str]:
        if not self.options.monitoring_config_file:
            return None
        prometheus = read_monitoring_config(self.options.monitoring_config_file).prometheus_config
        if not prometheus.enable:
            return None
        return prometheus.path or DEFAULT_PROMETHEUS_PATH

    def start(self) -> "ModelServer":
        """Loads the configured models (like TF Serving, before serving), then opens the ports."""
        options = self.options
        metrics_path = self._metrics_path()
        tls = read_ssl_config(options.ssl_config_file) if options.ssl_config_file else None
        self._remove_stale_temporaries()
        problems = self.reload_from_file(force=True)
        for problem in problems:
            LOGGER.warning("%s", problem)
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=options.grpc_max_workers, thread_name_prefix="serving")
        self._loop = EventLoopThread()
        try:
            self._grpc = GrpcServer(
                self._loop, self.service, self.reload_config, options.host, options.port,
                options.max_request_bytes, self._executor, options.grpc_max_workers * 4,
                credentials=grpc_server_credentials(tls) if tls else None,
                allow_remote_reload=options.allow_remote_reload)
            self.grpc_port = self._grpc.port
            self._rest = RestServer(
                RestApi(self.service, metrics_path, self._executor), options.max_request_bytes,
                options.rest_idle_timeout_seconds, options.rest_body_timeout_seconds,
                options.rest_max_connections)
            self.rest_api_port = self._loop.run(self._rest.start(
                options.host, options.rest_api_port, server_ssl_context(tls) if tls else None))
            self._grpc.start()
        except BaseException:
            self._release_loop()
            raise
        self._start_poller("file-system-poll", options.file_system_poll_wait_seconds,
                           self.manager.poll_filesystem)
        self._start_poller("model-config-poll", options.model_config_file_poll_wait_seconds,
                           self._poll_config)
        LOGGER.info("serving gRPC on %s:%d and REST on %s:%d%s", options.host, self.grpc_port,
                    options.host, self.rest_api_port, " over TLS" if tls else "")
        return self

    def _remove_stale_temporaries(self) -> None:
        """Cleans what writers killed before their rename left beside models.config and in
        each base path (a pusher's staging folders are folders, never touched)."""
        home = Home(self.home)
        folders = [self.options.config_path().parent]
        if home.serving_models_dir.is_dir():
            folders += [entry for entry in home.serving_models_dir.iterdir()
                        if entry.is_dir() and not entry.is_symlink()]
        for folder in folders:
            for path in remove_stale_temporaries(folder, STALE_TEMPORARY_SECONDS):
                LOGGER.info("removed %s, left by a writer that did not finish", path)

    def _release_loop(self) -> None:
        if self._loop is not None:
            self._loop.stop()
        if self._executor is not None:
            self._executor.shutdown(wait=False)

    def reload_config(self, config: model_server_config_pb2.ModelServerConfig) -> List[str]:
        """Applies a config (HandleReloadConfigRequest); returns labels not applied yet."""
        with self._config_lock:
            try:
                return self.manager.apply_config(config, self.options.model_load_wait_seconds)
            finally:
                self.metrics.set_model_names(self.manager.model_names())

    def reload_from_file(self, force: bool = False) -> List[str]:
        """Re-reads models.config when it changed; a malformed file keeps the current config."""
        path = self.options.config_path()
        if not path.exists() and not force:
            LOGGER.warning("model config %s is missing; keeping the current config", path)
            return []
        try:
            text = path.read_text(encoding="utf-8") if path.exists() else ""
        except OSError as error:
            LOGGER.error("cannot read model config %s: %s", path, error)
            return []
        if not force and text == self._config_text:
            return []
        try:
            config = parse_model_server_config(text)
        except text_format.ParseError as error:
            LOGGER.error("model config %s is malformed, keeping the current one: %s", path, error)
            self._config_text = text
            return []
        self._config_text = text
        LOGGER.info("applying model config %s", path)
        try:
            problems = self.reload_config(config)
        except ServingError as error:
            if force:
                raise ValueError(f"model config {path} is refused: {error.message}") from None
            LOGGER.error("model config %s is refused, keeping the current one: %s", path,
                         error.message)
            return []
        for problem in problems:
            LOGGER.warning("%s (will apply once it is available)", problem)
        return problems

    def _poll_config(self) -> None:
        self.reload_from_file()

    def _start_poller(self, name: str, period: float, action: Callable[[], object]) -> None:
        if not period or period <= 0:
            return
        thread = threading.Thread(target=self._poll, args=(name, period, action), name=name,
                                  daemon=True)
        thread.start()
        self._pollers.append(thread)

    def _poll(self, name: str, period: float, action: Callable[[], object]) -> None:
        """Runs action every period until stop; an exception is logged (once until it changes,
        not every period) and polling goes on, so one bad config or folder never ends reloads."""
        last_error: Optional[str] = None
        while not self._stopping.wait(period):
            try:
                action()
            except Exception as error:  # noqa: BLE001 - a poller must outlive any failure
                text = f"{type(error).__name__}: {error}"
                if text != last_error:
                    LOGGER.error("%s failed, will retry every %g s (logged again only if the "
                                 "error changes): %s", name, period, text,
                                 exc_info=not isinstance(error, (OSError, ValueError)))
                    last_error = text
                continue
            if last_error is not None:
                LOGGER.info("%s works again", name)
                last_error = None

    async def _stop_front_ends(self, grace_seconds: float) -> None:
        stops = [front.stop(grace_seconds) for front in (self._grpc, self._rest) if front]
        await asyncio.gather(*stops, return_exceptions=True)

    def stop(self, grace_seconds: float = 10.0) -> None:
        """Stops accepting requests, finishes in-flight ones, then releases everything."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        LOGGER.info("shutting down: finishing in-flight requests")
        if self._loop is not None and self._loop.running:
            try:
                self._loop.run(self._stop_front_ends(grace_seconds), timeout=grace_seconds + 5)
            except concurrent.futures.TimeoutError:
                LOGGER.warning("front ends did not stop within %g s", grace_seconds + 5)
        self._release_loop()
        for thread in self._pollers:
            thread.join(timeout=5)
        if self.batcher is not None:
            self.batcher.stop()
        if self.request_logger is not None:
            self.request_logger.close()
        self.manager.close()
        LOGGER.info("model server stopped")
