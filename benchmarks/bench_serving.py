"""Serving latency and throughput: REST and gRPC, batching off and on, 1/8/32 clients,
each against calling the same SavedModel in-process in the same run.

    TF_USE_LEGACY_KERAS=1 .venv/bin/python -m benchmarks.bench_serving

Both servers (batching off and on) run side by side as `python -m ml.serving` processes, as in
production. REST clients are threads with keep-alive connections; gRPC clients are requests
kept in flight with futures. The paths are measured in turn, repeat after repeat, and every
figure is the median of --repeats runs of --seconds each (the machine is shared and noisy).
Targets: REST p50 at most 2 ms above the in-process call for one trade; gRPC with batching at
32 clients at least 3x the throughput without batching.
"""
import argparse
import base64
import datetime
import http.client
import json
import os
import pathlib
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Callable, Dict, List, Optional


import grpc  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc  # noqa: E402

from benchmarks.sections import publish  # noqa: E402
from components.canary_validator.serving_check import read_ready_line  # noqa: E402
from tests.serving_fixtures import (RISK_MODEL, build_risk_model, push_version,  # noqa: E402
                                    serialized_trade)

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
CONCURRENCY = (1, 8, 32)
TRADE = serialized_trade(volume=1000.0, price=75.5, volatility=0.25, commodity="gas")


def _measure(make_call: Callable[[], Callable[[], None]], clients: int, seconds: float) -> Dict:
    """Runs `clients` threads, each repeatedly calling its own call; latency and throughput."""
    latencies: List[List[float]] = [[] for _ in range(clients)]
    start_barrier = threading.Barrier(clients + 1)
    stop = threading.Event()
    errors = []

    def worker(index: int) -> None:
        call = make_call()
        call()  # warm the connection
        start_barrier.wait()
        own = latencies[index]
        while not stop.is_set():
            started = time.perf_counter()
            try:
                call()
            except (OSError, http.client.HTTPException, RuntimeError) as error:
                errors.append(repr(error))
                continue
            own.append(time.perf_counter() - started)
    threads = [threading.Thread(target=worker, args=(index,)) for index in range(clients)]
    for thread in threads:
        thread.start()
    start_barrier.wait()
    began = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    merged = np.array([value for own in latencies for value in own]) * 1000.0
    return {"p50_ms": float(np.percentile(merged, 50)), "p99_ms": float(np.percentile(merged, 99)),
            "rps": len(merged) / elapsed, "errors": len(errors)}


def _median(runs: List[Dict]) -> Dict:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def _in_process_call(model_dir: pathlib.Path):
    function = tf.saved_model.load(str(model_dir)).signatures["serving_default"]

    def make_call():
        def call():
            outputs = function(examples=tf.constant([TRADE]))
            outputs["risk_score"].numpy()
        return call
    return make_call


def _rest_call(port: int):
    """A keep-alive HTTP/1.1 connection per client (http.client: the lightest Python client)."""
    path = f"/v1/models/{RISK_MODEL}:predict"
    body = json.dumps({"instances": [{"b64": base64.b64encode(TRADE).decode()}]})
    headers = {"Content-Type": "application/json"}

    def make_call():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

        def call():
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            if response.status != 200:
                raise RuntimeError(payload.decode())
        return call
    return make_call


def _grpc_request():
    request = predict_pb2.PredictRequest()
    request.model_spec.name = RISK_MODEL
    request.inputs["examples"].CopyFrom(tf.make_tensor_proto([TRADE], dtype=tf.string))
    return request


def _measure_grpc(port: int, clients: int, seconds: float) -> Dict:
    """`clients` requests kept in flight on one channel with futures (no client threads, so
    the load generator does not compete with the server for the interpreter lock)."""
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    request = _grpc_request()
    stub.Predict(request, timeout=30)
    latencies: List[float] = []
    errors: List[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    outstanding = threading.Semaphore(0)

    def issue():
        started = time.perf_counter()
        future = stub.Predict.future(request, timeout=30)
        future.add_done_callback(lambda done: finished(done, started))

    def finished(done, started):
        elapsed = time.perf_counter() - started
        with lock:
            if done.exception() is None:
                latencies.append(elapsed)
            else:
                errors.append(repr(done.exception()))
        if stop.is_set():
            outstanding.release()
        else:
            issue()
    began = time.perf_counter()
    for _ in range(clients):
        issue()
    time.sleep(seconds)
    stop.set()
    with lock:
        elapsed = time.perf_counter() - began
        merged = np.array(latencies) * 1000.0
    for _ in range(clients):
        outstanding.acquire(timeout=30)
    channel.close()
    return {"p50_ms": float(np.percentile(merged, 50)), "p99_ms": float(np.percentile(merged, 99)),
            "rps": len(merged) / elapsed, "errors": len(errors)}


def _start_server(home: pathlib.Path, batching: bool, tree: pathlib.Path = REPO_ROOT
                  ) -> subprocess.Popen:
    command = [sys.executable, "-m", "ml.serving", "--home", str(home), "--port", "0",
               "--rest_api_port", "0", "--file_system_poll_wait_seconds", "0",
               "--request_log_sampling_rate", "0", "--log_level", "WARNING"]
    if batching:
        command += ["--enable_batching", "true", "--batching_parameters_file",
                    str(REPO_ROOT / "serving_config" / "batching.config")]
    return subprocess.Popen(command, cwd=tree, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=dict(os.environ))


def run(seconds: float, repeats: int, depth: int, concurrency=CONCURRENCY,
        baseline: Optional[pathlib.Path] = None) -> Dict:
    """Both servers run side by side and every path is measured in turn, repeat after repeat,
    so background load on a shared machine hits all of them alike. With `baseline` (another
    checkout of the repository) its servers run too and are measured in the same turns, so
    a change to the server is compared under the same load."""
    work = pathlib.Path(tempfile.mkdtemp(prefix="etrm-bench-serving-"))
    model_dir = build_risk_model(work / "model", depth=depth)
    push_version(work / "home", RISK_MODEL, 1, source=model_dir)
    trees = {"": REPO_ROOT}
    if baseline is not None:
        trees[" (baseline)"] = baseline
    servers = {(tag, batching): _start_server(work / "home", batching == "on", tree)
               for tag, tree in trees.items() for batching in ("off", "on")}
    try:
        ready = {key: read_ready_line(process, 300) for key, process in servers.items()}
        in_process = _in_process_call(model_dir)
        paths = {("in-process", "-"): lambda clients: _measure(in_process, clients, seconds)}
        for (tag, batching), ports in ready.items():
            paths[("REST" + tag, batching)] = (lambda clients, port=ports["rest_api_port"]:
                                               _measure(_rest_call(port), clients, seconds))
            paths[("gRPC" + tag, batching)] = (lambda clients, port=ports["grpc_port"]:
                                               _measure_grpc(port, clients, seconds))
        runs: Dict = {(path, batching, clients): [] for (path, batching) in paths
                      for clients in concurrency}
        for repeat in range(repeats):
            for clients in concurrency:
                # Alternate the order so no path always runs right after another.
                order = list(paths.items())
                for (path, batching), measure in (order if repeat % 2 == 0 else order[::-1]):
                    runs[(path, batching, clients)].append(measure(clients))
            print(f"repeat {repeat + 1}/{repeats} done", flush=True)
    finally:
        for process in servers.values():
            process.send_signal(signal.SIGTERM)
        for process in servers.values():
            process.wait(timeout=60)
    return {key: _median(values) for key, values in runs.items()}


def _report(results: Dict, args, started: str, load: str, end_load: str) -> str:
    rest_gap = results[("REST", "off", 1)]["p50_ms"] - results[("in-process", "-", 1)]["p50_ms"]
    grpc_gain = results[("gRPC", "on", 32)]["rps"] / results[("gRPC", "off", 32)]["rps"]
    lines = [
        f"## Serving latency and throughput ({started})", "",
        f"Command: `TF_USE_LEGACY_KERAS=1 .venv/bin/python -m benchmarks.bench_serving "
        f"--seconds {args.seconds:g} --repeats {args.repeats} --depth {args.depth}"
        + (f" --clients {' '.join(map(str, args.clients))}" if tuple(args.clients) != CONCURRENCY
           else "")
        + (f" --baseline {args.baseline}" if args.baseline else "") + "`  ",
        f"Machine: {os.cpu_count()} cores (shared; 1-min load average at start {load}). Model: "
        f"fixture risk model with {args.depth} attention blocks over feature tokens, one trade "
        f"per request. Both servers run as `python -m ml.serving` processes; REST clients are "
        f"threads with keep-alive connections, gRPC clients are requests kept in flight with "
        f"futures; batching uses serving_config/batching.config. Paths measured in turn; median "
        f"of {args.repeats} runs of {args.seconds:g} s. 1-min load average at the end {end_load}.",
        "",
        "| path | batching | clients | p50 ms | p99 ms | requests/s | errors |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for (path, batching, clients), figures in results.items():
        lines.append(f"| {path} | {batching} | {clients} | {figures['p50_ms']:.2f} | "
                     f"{figures['p99_ms']:.2f} | {figures['rps']:.0f} | {figures['errors']:.0f} |")
    lines += ["",
              f"- REST p50 minus in-process p50, one client, batching off: {rest_gap:.2f} ms "
              f"(target <= 2 ms: {'met' if rest_gap <= 2.0 else 'NOT met'}).",
              f"- gRPC throughput at 32 clients, batching on / off: {grpc_gain:.2f}x "
              f"(target >= 3x: {'met' if grpc_gain >= 3.0 else 'NOT met'})."]
    if ("REST (baseline)", "off", 1) in results:
        base_gap = (results[("REST (baseline)", "off", 1)]["p50_ms"]
                    - results[("in-process", "-", 1)]["p50_ms"])
        base_gain = (results[("gRPC (baseline)", "on", 32)]["rps"]
                     / results[("gRPC (baseline)", "off", 32)]["rps"])
        lines += [f"- Baseline tree ({args.baseline}) in the same run: REST p50 minus in-process "
                  f"{base_gap:.2f} ms, gRPC batching gain {base_gain:.2f}x."]
    return "\n".join(lines + [""])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.5, help="length of one run")
    parser.add_argument("--repeats", type=int, default=5, help="runs per figure (median)")
    parser.add_argument("--depth", type=int, default=4, help="attention blocks in the model")
    parser.add_argument("--clients", type=int, nargs="+", default=list(CONCURRENCY),
                        help="concurrency levels (1 and 32 give the two targets)")
    parser.add_argument("--baseline", type=pathlib.Path, default=None,
                        help="another checkout whose servers are measured in the same run")
    parser.add_argument("--no-append", action="store_true", help="do not write BENCHMARKS.md")
    args = parser.parse_args(argv)
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load = f"{os.getloadavg()[0]:.1f}"
    results = run(args.seconds, args.repeats, args.depth, tuple(args.clients), args.baseline)
    report = _report(results, args, started, load, f"{os.getloadavg()[0]:.1f}")
    publish(report, write=not args.no_append)
    return 0


if __name__ == "__main__":
    sys.exit(main())
