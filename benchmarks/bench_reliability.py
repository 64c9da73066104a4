"""Serving under hostile clients: a slow-client flood and a corpus of malformed requests.

    TF_USE_LEGACY_KERAS=1 .venv/bin/python -m benchmarks.bench_reliability

One `python -m ml.serving` process (as in production) with short REST timeouts so the run is
short. The flood opens --slow-sockets connections that send a partial request head (and a set
that send a body shorter than its Content-Length), then times a normal request on another
connection while they are held, and how long after they were opened the server drops them.
The corpus sends every malformed REST and gRPC request of issue 17 part 2; each answer must be
well formed (REST: a 4xx with a JSON `{"error": ...}` body; gRPC: a status other than UNKNOWN
or INTERNAL), the server must still answer normally afterwards, and its memory must stay
bounded (RSS before and after). Targets: the normal request served within 100 ms; every slow
socket dropped within the timeout plus one second.
"""
import argparse
import base64
import datetime
import http.client
import json
import os
import pathlib
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Tuple

import grpc  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow_serving.apis import (inference_pb2, model_management_pb2,  # noqa: E402
                                     model_service_pb2_grpc, predict_pb2,
                                     prediction_service_pb2_grpc)

from benchmarks.sections import publish  # noqa: E402
from components.canary_validator.serving_check import read_ready_line  # noqa: E402
from ml.serving import tensor_codec  # noqa: E402
from tests.serving_fixtures import (REPORT_LM, RISK_MODEL, push_version,  # noqa: E402
                                    raw_exchange, raw_http_request, serialized_trade,
                                    split_http_responses)

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
TRADE = serialized_trade(volume=1000.0, price=75.5, volatility=0.25, commodity="gas")
RISK = f"/v1/models/{RISK_MODEL}"
MAX_REQUEST_BYTES = 1024 * 1024


def _rss_mb(pid: int) -> float:
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def _threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def _start_server(home: pathlib.Path, timeout: float) -> subprocess.Popen:
    command = [sys.executable, "-m", "ml.serving", "--home", str(home), "--port", "0",
               "--rest_api_port", "0", "--file_system_poll_wait_seconds", "0",
               "--request_log_sampling_rate", "0", "--log_level", "ERROR",
               "--rest_idle_timeout_seconds", str(timeout),
               "--rest_body_timeout_seconds", str(timeout),
               "--max_request_bytes", str(MAX_REQUEST_BYTES)]
    return subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=dict(os.environ))


def _predict_once(connection: http.client.HTTPConnection) -> float:
    body = json.dumps({"instances": [{"b64": base64.b64encode(TRADE).decode()}]})
    started = time.perf_counter()
    connection.request("POST", f"{RISK}:predict", body=body,
                       headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    payload = response.read()
    if response.status != 200:
        raise RuntimeError(payload.decode()[:200])
    return (time.perf_counter() - started) * 1000.0


def _normal_latencies(port: int, count: int) -> List[float]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    _predict_once(connection)
    latencies = [_predict_once(connection) for _ in range(count)]
    connection.close()
    return latencies


def _drop_times(sockets: List[Tuple[socket.socket, float]], limit: float) -> List[float]:
    """Seconds from opening each socket to the server closing it (inf if still open)."""
    times = []
    for sock, opened in sockets:
        sock.settimeout(max(0.1, opened + limit - time.monotonic()))
        try:
            while sock.recv(65536):
                pass
            times.append(time.monotonic() - opened)
        except socket.timeout:
            times.append(float("inf"))
        except OSError:
            times.append(time.monotonic() - opened)
        finally:
            sock.close()
    return times


def run_flood(port: int, pid: int, slow: int, truncated: int, timeout: float) -> Dict:
    idle = _normal_latencies(port, 30)
    rss_before, threads_before = _rss_mb(pid), _threads(pid)
    held: List[Tuple[socket.socket, float]] = []
    for index in range(slow + truncated):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        if index < slow:
            sock.sendall(f"GET {RISK} HTTP/1.1\r\nHost: x\r\nX-Slow-{index}: ".encode())
        else:
            sock.sendall(f"POST {RISK}:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 60000\r\n"
                         f"\r\n{{}}".encode())
        held.append((sock, time.monotonic()))
    flooded = _normal_latencies(port, 30)
    threads_flooded = _threads(pid)
    drops = _drop_times(held, timeout + 10)
    return {"idle_p50_ms": statistics.median(idle), "flood_p50_ms": statistics.median(flooded),
            "flood_max_ms": max(flooded),
            "slow_drop_s": (min(drops[:slow]), max(drops[:slow])),
            "truncated_drop_s": (min(drops[slow:]), max(drops[slow:])) if truncated else None,
            "threads": (threads_before, threads_flooded),
            "rss_mb": (rss_before, _rss_mb(pid))}


def rest_corpus() -> List[Tuple[str, bytes]]:
    nested = b'{"instances": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    classify = {"signature_name": "classification", "examples": [{"tenor_days": 2 ** 64}]}
    regress = {"signature_name": "regression", "examples": [{"tenor_days": -10 ** 30}]}
    long_float = (b'{"signature_name": "generate", "inputs": {"prompt": ["x"], "max_new_tokens": '
                  b'2, "top_k": 1, "temperature": 1' + b"0" * 400 + b".5}}")
    smuggled = f"GET /v1/models/{REPORT_LM} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    cases = [
        ("HEAD", raw_http_request("HEAD", RISK)), ("PUT", raw_http_request("PUT", RISK, b"{}")),
        ("DELETE", raw_http_request("DELETE", RISK)),
        ("OPTIONS", raw_http_request("OPTIONS", RISK)),
        ("Content-Length abc", f"POST {RISK}:predict HTTP/1.1\r\nHost: x\r\nContent-Length: "
                               f"abc\r\n\r\n{{}}".encode()),
        ("Content-Length of 5,000 digits", f"POST {RISK}:predict HTTP/1.1\r\nHost: x\r\n"
                                           f"Content-Length: {'9' * 5000}\r\n\r\n".encode()),
        ("Content-Length -1", f"POST {RISK}:predict HTTP/1.1\r\nHost: x\r\nContent-Length: -1"
                              f"\r\n\r\n".encode()),
        ("POST without Content-Length", f"POST {RISK}:predict HTTP/1.1\r\nHost: x\r\n\r\n"
         .encode()),
        ("body over the limit", raw_http_request("POST", f"{RISK}:predict",
                                      b'{"instances": ["' + b"x" * MAX_REQUEST_BYTES + b'"]}')),
        ("version abc", raw_http_request("POST", f"{RISK}/versions/abc:predict", b"{}")),
        ("version of 5,000 digits",
         raw_http_request("POST", f"{RISK}/versions/{'9' * 5000}:predict", b"{}")),
        ("version above int64", raw_http_request("GET", f"{RISK}/versions/{'9' * 20}")),
        ("version with an Arabic-Indic digit", raw_http_request("GET", f"{RISK}/versions/%D9%A1")),
        ("model name of 8 KB", raw_http_request("POST", f"/v1/models/{'m' * 8192}:predict", b"{}")),
        ("JSON nested 100,000 deep", raw_http_request("POST", f"{RISK}:predict", nested)),
        ("integer of 5,000 digits", raw_http_request("POST", f"{RISK}:predict",
                                          b'{"instances": [' + b"1" * 5000 + b"]}")),
        ("integer above int64 to :classify", raw_http_request("POST", f"{RISK}:classify",
                                                   json.dumps(classify).encode())),
        ("integer below int64 to :regress", raw_http_request("POST", f"{RISK}:regress",
                                                  json.dumps(regress).encode())),
        ("400-digit float",
         raw_http_request("POST", f"/v1/models/{REPORT_LM}:predict", long_float)),
        ("invalid UTF-8 body", raw_http_request("POST", f"{RISK}:predict", b"\xff\xfe{")),
        ("request line garbage", b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n"),
        ("HTTP/2.0 request line", f"GET {RISK} HTTP/2.0\r\n\r\n".encode()),
        ("101 headers", f"GET {RISK} HTTP/1.1\r\n".encode()
         + b"".join(b"X-%d: 1\r\n" % i for i in range(101)) + b"\r\n"),
        ("header line of 64 KB", f"GET {RISK} HTTP/1.1\r\nX: ".encode() + b"a" * 65536
         + b"\r\n\r\n"),
        ("GET with a body", f"GET {RISK} HTTP/1.1\r\nHost: x\r\nContent-Length: "
                            f"{len(smuggled)}\r\nConnection: close\r\n\r\n".encode() + smuggled),
    ]
    return cases


def _well_formed_rest(reply: bytes, name: str) -> Tuple[bool, str]:
    try:
        answers = split_http_responses(reply)
    except ValueError as error:
        return False, str(error)
    if not answers:
        return False, "no HTTP answer"
    status, head, body = answers[0]
    if name == "GET with a body":
        return status == 200 and len(answers) == 1, f"{status}, {len(answers)} answer(s)"
    if name == "HEAD":
        return status == 405 and "application/json" in head, str(status)
    if name == "400-digit float" and status == 200:
        return True, "200 (JSON)"
    try:
        error = json.loads(body)["error"]
    except (ValueError, KeyError, TypeError):
        return False, f"{status}, body not JSON"
    return 400 <= status < 600 and isinstance(error, str) and len(answers) == 1, str(status)


def _predict(name=RISK_MODEL, **inputs):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    if name == REPORT_LM:
        request.model_spec.signature_name = "generate"
    for alias, proto in inputs.items():
        request.inputs[alias].CopyFrom(proto)
    return request


def grpc_corpus() -> List[Tuple[str, str, object]]:
    claims_2m = tf.make_tensor_proto([b"\xff"])
    claims_2m.tensor_shape.dim[0].size = 2_000_000
    short_content = tf.make_tensor_proto([0.5, 0.5], dtype=tf.float32)
    short_content.tensor_content = b"\x00\x00"
    lm = dict(prompt=tf.make_tensor_proto([b"x"]),
              max_new_tokens=tf.make_tensor_proto(2, dtype=tf.int32),
              top_k=tf.make_tensor_proto(1, dtype=tf.int32))
    reload_request = model_management_pb2.ReloadConfigRequest()
    reload_request.config.model_config_list.config.add(name=RISK_MODEL)
    cases = [
        ("no model name", "Predict", _predict(name="")),
        ("unknown model of 8 KB", "Predict", _predict(name="m" * 8192)),
        ("wrong dtype", "Predict", _predict(examples=tf.make_tensor_proto([1.0]))),
        ("110-byte request claiming 2M rows", "Predict", _predict(examples=claims_2m)),
        ("tensor_content shorter than its shape", "Predict",
         _predict(REPORT_LM, temperature=short_content, **lm)),
        ("message over the size limit", "Predict",
         _predict(examples=tf.make_tensor_proto([b"x" * (MAX_REQUEST_BYTES + 10)]))),
        ("MultiInference without tasks", "MultiInference", inference_pb2.MultiInferenceRequest()),
        ("reload config without base_path", "HandleReloadConfigRequest", reload_request),
    ]
    if hasattr(tensor_codec, "MAX_TENSOR_ELEMENTS"):
        huge = tf.make_tensor_proto([0.5], dtype=tf.float32)
        huge.tensor_shape.dim[0].size = 2 ** 31
        cases.append(("float tensor claiming 2^31 elements", "Predict",
                      _predict(REPORT_LM, temperature=huge, **lm)))
    return cases


def run_corpus(ready: Dict, pid: int) -> Dict:
    rest_port, grpc_port = ready["rest_api_port"], ready["grpc_port"]
    rss_before = _rss_mb(pid)
    rest_rows = []
    for name, data in rest_corpus():
        started = time.perf_counter()
        try:
            ok, answer = _well_formed_rest(raw_exchange(rest_port, data), name)
        except OSError as error:
            ok, answer = False, f"{type(error).__name__}"
        rest_rows.append((name, answer, ok, (time.perf_counter() - started) * 1000.0))
    channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}", options=[
        ("grpc.max_send_message_length", 4 * MAX_REQUEST_BYTES)])
    stubs = {"PredictionService": prediction_service_pb2_grpc.PredictionServiceStub(channel),
             "ModelService": model_service_pb2_grpc.ModelServiceStub(channel)}
    grpc_rows = []
    for name, method, request in grpc_corpus():
        stub = stubs["ModelService" if method == "HandleReloadConfigRequest"
                     else "PredictionService"]
        started = time.perf_counter()
        try:
            getattr(stub, method)(request, timeout=30)
            code = "OK"
        except grpc.RpcError as error:
            code = error.code().name
        grpc_rows.append((name, code, code not in ("OK", "UNKNOWN", "INTERNAL"),
                          (time.perf_counter() - started) * 1000.0))
    channel.close()
    alive = _normal_latencies(rest_port, 3)
    return {"rest": rest_rows, "grpc": grpc_rows, "alive_ms": statistics.median(alive),
            "rss_mb": (rss_before, _rss_mb(pid))}


def _report(flood: Dict, corpus: Dict, args, started: str, load: str) -> str:
    limit = args.timeout + 1.0
    slow_ok = flood["slow_drop_s"][1] <= limit
    truncated_ok = flood["truncated_drop_s"] is None or flood["truncated_drop_s"][1] <= limit
    rest_ok = sum(row[2] for row in corpus["rest"])
    grpc_ok = sum(row[2] for row in corpus["grpc"])
    lines = [
        f"## Serving reliability under hostile clients ({started})", "",
        f"Command: `TF_USE_LEGACY_KERAS=1 .venv/bin/python -m benchmarks.bench_reliability "
        f"--slow-sockets {args.slow_sockets} --truncated-sockets {args.truncated_sockets} "
        f"--timeout {args.timeout:g}`  ",
        f"Machine: {os.cpu_count()} cores (shared; 1-min load average at start {load}). One "
        f"`python -m ml.serving` process (REST on aiohttp and gRPC on one event loop) with "
        f"`--rest_idle_timeout_seconds {args.timeout:g} --rest_body_timeout_seconds "
        f"{args.timeout:g} --max_request_bytes {MAX_REQUEST_BYTES}`; fixture risk model.", "",
        "Slow-client flood:", "",
        "| figure | value | target |", "| --- | ---: | --- |",
        f"| predict p50 before the flood (keep-alive REST) | {flood['idle_p50_ms']:.2f} ms | |",
        f"| predict p50 / max with {args.slow_sockets} partial-head and "
        f"{args.truncated_sockets} short-body sockets held | {flood['flood_p50_ms']:.2f} / "
        f"{flood['flood_max_ms']:.2f} ms | <= 100 ms: "
        f"{'met' if flood['flood_max_ms'] <= 100 else 'NOT met'} |",
        f"| partial-head sockets dropped after (min / max) | {flood['slow_drop_s'][0]:.2f} / "
        f"{flood['slow_drop_s'][1]:.2f} s | <= {limit:g} s: {'met' if slow_ok else 'NOT met'} |"]
    if flood["truncated_drop_s"] is not None:
        lines.append(f"| short-body sockets dropped after (min / max) | "
                     f"{flood['truncated_drop_s'][0]:.2f} / {flood['truncated_drop_s'][1]:.2f} s"
                     f" | <= {limit:g} s: {'met' if truncated_ok else 'NOT met'} |")
    lines += [f"| server threads before / during the flood | {flood['threads'][0]} / "
              f"{flood['threads'][1]} | no thread per connection |",
              f"| server RSS before / after the flood | {flood['rss_mb'][0]:.0f} / "
              f"{flood['rss_mb'][1]:.0f} MB | |", "",
              f"Hostile REST corpus: {rest_ok}/{len(corpus['rest'])} answered well formed "
              f"(one answer, a 4xx or 505 with a JSON error; GET with a body answered once).", "",
              "| request | answer | well formed | ms |", "| --- | --- | --- | ---: |"]
    lines += [f"| {name} | {answer} | {'yes' if ok else 'NO'} | {ms:.1f} |"
              for name, answer, ok, ms in corpus["rest"]]
    lines += ["", f"Hostile gRPC corpus: {grpc_ok}/{len(corpus['grpc'])} answered with a proper "
                  f"status (not OK, UNKNOWN or INTERNAL).", "",
              "| request | status | proper | ms |", "| --- | --- | --- | ---: |"]
    lines += [f"| {name} | {code} | {'yes' if ok else 'NO'} | {ms:.1f} |"
              for name, code, ok, ms in corpus["grpc"]]
    if not hasattr(tensor_codec, "MAX_TENSOR_ELEMENTS"):
        lines += ["", "The 2^31-element claim was left out: this tree's tensor decode has no "
                      "element bound (it would allocate 8 GB)."]
    lines += ["", f"After the corpus the server answered a normal predict in "
                  f"{corpus['alive_ms']:.2f} ms (p50 of 3); RSS before / after the corpus "
                  f"{corpus['rss_mb'][0]:.0f} / {corpus['rss_mb'][1]:.0f} MB.", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slow-sockets", type=int, default=200)
    parser.add_argument("--truncated-sockets", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=3.0,
                        help="the server's REST idle and body timeouts, seconds")
    parser.add_argument("--no-append", action="store_true", help="do not write BENCHMARKS.md")
    args = parser.parse_args(argv)
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load = f"{os.getloadavg()[0]:.1f}"
    work = pathlib.Path(tempfile.mkdtemp(prefix="etrm-bench-reliability-"))
    push_version(work / "home", RISK_MODEL, 1)
    push_version(work / "home", REPORT_LM, 1)
    process = _start_server(work / "home", args.timeout)
    try:
        ready = read_ready_line(process, 300)
        flood = run_flood(ready["rest_api_port"], process.pid, args.slow_sockets,
                          args.truncated_sockets, args.timeout)
        corpus = run_corpus(ready, process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    publish(_report(flood, corpus, args, started, load), write=not args.no_append)
    return 0


if __name__ == "__main__":
    sys.exit(main())
