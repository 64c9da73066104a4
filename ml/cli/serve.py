"""`etrm serve` / `python -m ml.serving`: flags named like tensorflow_model_server's."""
import argparse
import json
import logging
import signal
import sys
import threading
from typing import Optional, Sequence

from ml.serving.options import ServerOptions

READY_EVENT = "ready"


def _flag_bool(value: str) -> bool:
    lowered = value.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Adds the server flags to a parser (used by `etrm serve` and `python -m ml.serving`)."""
    defaults = ServerOptions()
    parser.add_argument("--home", default=None,
                        help="ETRM home (default: $ETRM_HOME, else ./.etrm)")
    parser.add_argument("--host", default=defaults.host,
                        help="address to bind both APIs to (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=defaults.port,
                        help="gRPC port (default 8500; 0 picks a free port)")
    parser.add_argument("--rest_api_port", type=int, default=defaults.rest_api_port,
                        help="REST port (default 8501; 0 picks a free port)")
    parser.add_argument("--model_config_file", default=None,
                        help="model_config_list file (default <home>/serving_config/models.config)")
    parser.add_argument("--model_config_file_poll_wait_seconds", type=float,
                        default=defaults.model_config_file_poll_wait_seconds,
                        help="re-read the model config this often (0: never)")
    parser.add_argument("--file_system_poll_wait_seconds", type=float,
                        default=defaults.file_system_poll_wait_seconds,
                        help="look for new model versions this often (0: only at start)")
    parser.add_argument("--enable_batching", type=_flag_bool, nargs="?", const=True,
                        default=False, help="merge concurrent requests into batches")
    parser.add_argument("--batching_parameters_file", default=None,
                        help="BatchingParameters text file (serving_config/batching.config)")
    parser.add_argument("--monitoring_config_file", default=None,
                        help="MonitoringConfig text file enabling Prometheus metrics")
    parser.add_argument("--request_log_sampling_rate", type=float, default=0.1,
                        help="fraction of requests logged to <home>/serving_logs (0 disables)")
    parser.add_argument("--request_log_max_records_per_file", type=int,
                        default=defaults.request_log_max_records_per_file)
    parser.add_argument("--request_log_max_file_age_seconds", type=float,
                        default=defaults.request_log_max_file_age_seconds)
    parser.add_argument("--max_request_bytes", type=int, default=defaults.max_request_bytes,
                        help="largest accepted REST body or gRPC message")
    parser.add_argument("--rest_idle_timeout_seconds", type=float,
                        default=defaults.rest_idle_timeout_seconds,
                        help="close a REST connection that has not sent a complete request "
                             "head this long after opening or after its last response")
    parser.add_argument("--rest_body_timeout_seconds", type=float,
                        default=defaults.rest_body_timeout_seconds,
                        help="close a REST connection whose request body is not complete "
                             "this long after its head")
    parser.add_argument("--rest_max_connections", type=int,
                        default=defaults.rest_max_connections,
                        help="open REST connections above this are answered 503 and closed")
    parser.add_argument("--ssl_config_file", default=None,
                        help="SSLConfig text file (server_key, server_cert, custom_ca, "
                             "client_verify) as tensorflow_model_server takes; applies to "
                             "gRPC and REST")
    parser.add_argument("--allow_remote_reload", type=_flag_bool, nargs="?", const=True,
                        default=False, help="accept HandleReloadConfigRequest from other hosts "
                                            "(default: loopback clients only)")
    parser.add_argument("--model_signing_public_key_file", default=None,
                        help="PEM file of the Ed25519 public key(s) model manifests must be "
                             "signed with")
    parser.add_argument("--shutdown_grace_seconds", type=float, default=10.0,
                        help="how long in-flight requests may take to finish on SIGTERM")
    parser.add_argument("--log_level", default="INFO")
    return parser


def options_from_args(args: argparse.Namespace) -> ServerOptions:
    return ServerOptions(
        home=args.home, host=args.host, port=args.port, rest_api_port=args.rest_api_port,
        model_config_file=args.model_config_file,
        model_config_file_poll_wait_seconds=args.model_config_file_poll_wait_seconds,
        file_system_poll_wait_seconds=args.file_system_poll_wait_seconds,
        enable_batching=args.enable_batching, batching_parameters_file=args.batching_parameters_file,
        monitoring_config_file=args.monitoring_config_file,
        request_log_sampling_rate=args.request_log_sampling_rate,
        request_log_max_records_per_file=args.request_log_max_records_per_file,
        request_log_max_file_age_seconds=args.request_log_max_file_age_seconds,
        max_request_bytes=args.max_request_bytes,
        rest_idle_timeout_seconds=args.rest_idle_timeout_seconds,
        rest_body_timeout_seconds=args.rest_body_timeout_seconds,
        rest_max_connections=args.rest_max_connections, ssl_config_file=args.ssl_config_file,
        allow_remote_reload=args.allow_remote_reload,
        model_signing_public_key_file=args.model_signing_public_key_file)


def run(args: argparse.Namespace) -> int:
    """Runs the server until SIGTERM or SIGINT, then shuts down gracefully. Returns 0."""
    logging.basicConfig(level=getattr(logging, str(args.log_level).upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    from ml.serving.server import ModelServer  # imports TensorFlow: only when serving

    stop_requested = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop_requested.set())
                for sig in (signal.SIGTERM, signal.SIGINT)}
    server = None
    try:
        server = ModelServer(options_from_args(args))
        server.start()
    except (ValueError, OSError) as error:  # a bad flag, key, certificate, config or port
        if server is not None:
            server.stop(0)
        _restore_signals(previous)
        print(f"etrm serve: error: {error}", file=sys.stderr)
        return 2
    try:
        print(json.dumps({"event": READY_EVENT, "grpc_port": server.grpc_port,
                          "rest_api_port": server.rest_api_port, "host": args.host}), flush=True)
        while not stop_requested.wait(0.5):
            pass
    finally:
        server.stop(args.shutdown_grace_seconds)
        _restore_signals(previous)
    return 0


def _restore_signals(previous) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml.serving", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))
