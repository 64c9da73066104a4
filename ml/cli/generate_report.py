"""`etrm generate-report`: writes an ETRM report with the pushed report language model.

By default the newest version of etrm_report_lm that `<home>/serving_config/models.config`
serves is loaded in this process with the local server's loader (integrity manifest checked,
warm-up run) and its `generate` signature is called: no server needed, and exactly the model
TF Serving would answer with. `--server HOST:PORT` sends the same request over REST to a
running TensorFlow Serving (or `etrm serve`) instead, through ml.tensorflow_serving_client.
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Tuple

from ml.core.registry import REPORT_LM

MODEL_NAME = REPORT_LM.serving_name


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--prompt", required=True,
                        help='start of the report, e.g. "Daily risk summary for PROP_TRADING on 2024-03-04."')
    parser.add_argument("--max-new-tokens", type=int, default=300,
                        help="most tokens to add (digits count one each; default: 300)")
    parser.add_argument("--temperature", type=float, default=0.7,
                        help="sampling temperature; 0 picks the likeliest token, deterministically (default: 0.7)")
    parser.add_argument("--top-k", type=int, default=20,
                        help="sample among the k likeliest tokens; 0 = all (default: 20)")
    parser.add_argument("--home", help="project home (default: $ETRM_HOME or .etrm)")
    parser.add_argument("--version", type=int, default=None,
                        help="model version (default: the newest one models.config serves)")
    parser.add_argument("--server", metavar="HOST:PORT", default=None,
                        help="ask a running TF Serving / `etrm serve` over REST instead of loading the model")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds to wait for the server (with --server; default: 120)")
    return parser


def _check(args: argparse.Namespace) -> None:
    if not args.prompt.strip():
        raise ValueError("--prompt must not be empty")
    if args.max_new_tokens < 0:
        raise ValueError(f"--max-new-tokens must be >= 0, got {args.max_new_tokens}")
    if args.temperature < 0:
        raise ValueError(f"--temperature must be >= 0, got {args.temperature}")


def _host_port(server: str) -> Tuple[str, int]:
    host, _, port = server.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"--server must be HOST:PORT, got {server!r}")
    return host, int(port)


def newest_served_version(home, version: Optional[int] = None):
    """(version, folder) of etrm_report_lm that models.config serves under `home`."""
    from ml.serving.model_config import find_model_config, read_model_server_config
    from ml.core.serving_layout import list_version_dirs
    from ml.serving.version_policy import aspired_versions

    config = read_model_server_config(home.models_config_path)
    try:
        model = find_model_config(config, MODEL_NAME)
    except KeyError:
        raise LookupError(f"no {MODEL_NAME} has been pushed under {home.root}: run "
                          f"`python run_local.py --model lm` first") from None
    base = home.local_base_path(model.base_path)
    served = aspired_versions(model, list_version_dirs(base))
    if not served:
        raise LookupError(f"{MODEL_NAME} has no servable version under {base}")
    if version is not None and version not in served:
        raise LookupError(f"{MODEL_NAME} version {version} is not served; served: {served}")
    chosen = version if version is not None else max(served)
    return chosen, base / str(chosen)


def generate_locally(home, prompt: str, max_new_tokens: int, temperature: float, top_k: int,
                     version: Optional[int] = None) -> Tuple[str, int]:
    """The report text and the version that wrote it, from the model loaded in-process."""
    import numpy as np

    from ml.serving.model_manager import load_version

    chosen, folder = newest_served_version(home, version)
    servable = load_version(MODEL_NAME, chosen, folder)
    outputs = servable.run("generate", {
        "prompt": np.array([prompt.encode("utf-8")], dtype=object),
        "max_new_tokens": np.array(max_new_tokens, np.int32),
        "temperature": np.array(temperature, np.float32),
        "top_k": np.array(top_k, np.int32)})
    return outputs["text"].reshape(-1)[0].decode("utf-8"), chosen


def generate_on_server(server: str, prompt: str, max_new_tokens: int, temperature: float,
                       top_k: int, version: Optional[int], timeout: float) -> str:
    from ml.tensorflow_serving_client import ETRMModelClient, TensorFlowServingClient

    host, port = _host_port(server)
    with TensorFlowServingClient(host=host, rest_port=port, timeout_seconds=timeout) as client:
        return ETRMModelClient(client, version=version).generate_report(
            prompt, max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k)


def run(args: argparse.Namespace) -> int:
    """Prints the generated report on stdout (and which version wrote it on stderr)."""
    from ml.serving.errors import ServingError
    from ml.tensorflow_serving_client import TensorFlowServingError

    try:
        _check(args)
        if args.server:
            text = generate_on_server(args.server, args.prompt, args.max_new_tokens,
                                      args.temperature, args.top_k, args.version, args.timeout)
            source = f"{MODEL_NAME} on {args.server}"
        else:
            from ml.core.home import Home

            home = Home.resolve(args.home)
            text, version = generate_locally(home, args.prompt, args.max_new_tokens,
                                             args.temperature, args.top_k, args.version)
            source = f"{MODEL_NAME} version {version} under {home.root}"
    except (ValueError, LookupError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (ServingError, TensorFlowServingError) as exc:
        print(f"error: the model could not answer: {exc}", file=sys.stderr)
        return 1
    print(f"({source})", file=sys.stderr)
    print(text)
    return 0
