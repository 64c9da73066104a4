"""The pre-push serving check: a candidate model served by a real local model server process.

The candidate is published with the pusher's own steps (version folder, manifest, models.config
entry) into a throw-away home, served on free ports, and sent the given requests over REST and
gRPC; the server process is always stopped. The CanaryValidator component (its id kept for
ML Metadata) wraps `run_serving_check`. Not to be confused with the `canary` version label.
"""
import json
import logging
import pathlib
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from components.serving_pusher.versions import publish_version
from ml.core.home import Home
from ml.serving.model_config import register_pushed_version
from ml.serving_client.client import TensorFlowServingClient, TensorFlowServingError

LOGGER = logging.getLogger(__name__)
CANDIDATE_VERSION = 1
MAX_REPORTED_ERRORS = 10
SERVER_LOG_NAME = "model_server.log"


def _percentile(latencies: List[float], percent: float) -> Optional[float]:
    return float(np.percentile(latencies, percent)) if latencies else None


def read_ready_line(process: subprocess.Popen, timeout_seconds: float) -> Dict[str, Any]:
    """Waits for the server's JSON ready line on stdout (or its early exit)."""
    lines: "queue.Queue" = queue.Queue()

    def pump() -> None:
        for line in process.stdout:
            lines.put(line)
    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            if process.poll() is not None:
                raise RuntimeError(f"model server exited with code {process.returncode} before "
                                   f"it was ready")
            continue
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if isinstance(message, dict) and message.get("event") == "ready":
            return message
    raise TimeoutError(f"model server not ready after {timeout_seconds}s")


def _log_tail(path: pathlib.Path, lines: int = 20) -> List[str]:
    """The last lines the server wrote to stderr, to explain a failed start."""
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    except OSError:
        return []


def _stop(process: subprocess.Popen, grace_seconds: float = 20.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace_seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _exercise(client: TensorFlowServingClient, model_name: str, request_examples: Sequence[bytes],
              signature_name: str, input_alias: str) -> Dict[str, Any]:
    latencies, errors = [], []
    for serialized in request_examples:
        started = time.perf_counter()
        try:
            prediction = client.predict(model_name, {input_alias: [serialized]},
                                        signature_name=signature_name)
            if not prediction.outputs or any(np.asarray(value).shape[:1] != (1,)
                                             for value in prediction.outputs.values()):
                raise TensorFlowServingError("response does not have one row per request",
                                             "INVALID_RESPONSE")
            latencies.append((time.perf_counter() - started) * 1000.0)
        except TensorFlowServingError as error:
            errors.append(str(error))
    return {"requests": len(request_examples), "ok": len(latencies), "errors": len(errors),
            "p50_ms": _percentile(latencies, 50), "p99_ms": _percentile(latencies, 99),
            "error_messages": errors[:MAX_REPORTED_ERRORS], "latencies_ms": latencies}


def run_serving_check(saved_model_dir, model_name: str, request_examples: List[bytes],
                       latency_budget_ms: float, signature_name: str = "serving_default",
                       input_alias: str = "examples", startup_timeout_seconds: float = 300.0,
                       request_timeout_seconds: float = 30.0,
                       python_executable: Optional[str] = None,
                       ssl_config_file: Optional[str] = None, ca_bundle: Optional[str] = None,
                       client_cert: Optional[str] = None,
                       client_key: Optional[str] = None) -> Dict[str, Any]:
    """Serves the candidate in a model server process and sends every request over REST and
    gRPC. Blessed when all requests succeed and the p99 latency is within the budget.

    With ssl_config_file the server serves TLS as it would in production, and the clients
    trust ca_bundle and present client_cert/client_key (for a server that verifies clients)."""
    if not request_examples:
        raise ValueError("the serving check needs at least one request example")
    work = pathlib.Path(tempfile.mkdtemp(prefix="etrm-serving-check-"))
    home = Home(work)
    result: Dict[str, Any] = {"blessed": False, "model_name": model_name,
                              "latency_budget_ms": float(latency_budget_ms),
                              "requests": len(request_examples), "errors": []}
    process = None
    try:
        base = home.serving_base(model_name)
        publish_version(str(saved_model_dir), base, CANDIDATE_VERSION)
        config_path = home.models_config_path
        register_pushed_version(config_path, model_name, base, CANDIDATE_VERSION, num_versions=1)
        home.log_dir.mkdir(parents=True, exist_ok=True)
        server_log = open(home.log_dir / SERVER_LOG_NAME, "w", encoding="utf-8")
        process = subprocess.Popen(
            [python_executable or sys.executable, "-m", "ml.serving", "--home", str(work),
             "--port", "0", "--rest_api_port", "0", "--model_config_file", str(config_path),
             "--file_system_poll_wait_seconds", "0", "--request_log_sampling_rate", "0",
             "--log_level", "WARNING"]
            + (["--ssl_config_file", str(ssl_config_file)] if ssl_config_file else []),
            stdout=subprocess.PIPE, stderr=server_log, text=True,
            cwd=str(pathlib.Path(__file__).resolve().parents[2]))
        server_log.close()
        ready = read_ready_line(process, startup_timeout_seconds)
        result.update(grpc_port=ready["grpc_port"], rest_api_port=ready["rest_api_port"])
        clients = {protocol: TensorFlowServingClient(
            host="127.0.0.1", rest_port=ready["rest_api_port"], grpc_port=ready["grpc_port"],
            protocol=protocol, timeout_seconds=request_timeout_seconds, max_retries=0,
            ca_bundle=ca_bundle, client_cert=client_cert, client_key=client_key)
            for protocol in ("rest", "grpc")}
        status = clients["rest"].model_status(model_name)
        result["model_status"] = status
        if not any(entry["state"] == "AVAILABLE" for entry in status):
            messages = [entry["error_message"] for entry in status if entry["error_message"]]
            result["errors"] = messages or ["candidate did not become available"]
            return result
        latencies: List[float] = []
        for protocol, client in clients.items():
            summary = _exercise(client, model_name, request_examples, signature_name, input_alias)
            latencies += summary.pop("latencies_ms")
            result["errors"] += summary.pop("error_messages")
            result[protocol] = summary
            client.close()
        result["latency_p50_ms"] = _percentile(latencies, 50)
        result["latency_p99_ms"] = _percentile(latencies, 99)
        failures = sum(result[protocol]["errors"] for protocol in clients)
        result["blessed"] = (failures == 0 and result["latency_p99_ms"] is not None
                             and result["latency_p99_ms"] <= latency_budget_ms)
        if failures:
            result["reason"] = f"{failures} request(s) failed"
        elif not result["blessed"]:
            result["reason"] = (f"p99 latency {result['latency_p99_ms']:.2f} ms exceeds the "
                                f"budget of {latency_budget_ms} ms")
        return result
    except (RuntimeError, TimeoutError, OSError) as error:
        result["errors"].append(f"{type(error).__name__}: {error}")
        result["reason"] = "the candidate could not be served"
        result["server_log_tail"] = _log_tail(home.log_dir / SERVER_LOG_NAME)
        return result
    finally:
        if process is not None:
            _stop(process)
            result["server_exit_code"] = process.returncode
        shutil.rmtree(work, ignore_errors=True)
