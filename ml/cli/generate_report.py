"""`etrm generate-report`: writes an ETRM report with the pushed report language model.

`--book BOOK --date YYYY-MM-DD` writes that book-day's daily risk summary: its risk record is
looked up in the home's report pipeline history (ml.reports.records) and the model's
`summarize` signature writes the summary from it, every figure the record's, and the summary is
checked against the record before it is printed (ml.reports.generation). `--prompt TEXT`
continues a free prompt instead, for exploration, and says so: its figures are the model's own.

By default the newest version of etrm_report_lm that `<home>/serving_config/models.config`
serves is loaded in this process with the local server's loader (integrity manifest checked,
warm-up run) and its `generate` signature is called: no server needed, and exactly the model
TF Serving would answer with. `--server HOST:PORT` sends the same request over REST to a
running TensorFlow Serving (or `etrm serve`) instead, through ml.tensorflow_serving_client.
"""
from __future__ import annotations

import argparse
import functools
import sys
from typing import Optional, Tuple

from ml.core.registry import REPORT_LM
from ml.reports import generation

MODEL_NAME = REPORT_LM.serving_name


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--book", help="book of the daily risk summary, e.g. FLOW_TRADING (with --date)")
    parser.add_argument("--date", help="report date YYYY-MM-DD of the summary (with --book)")
    parser.add_argument("--prompt",
                        help='instead of --book/--date: a free prompt to continue, for exploration '
                             '(not conditioned on a risk record)')
    parser.add_argument("--unchecked", action="store_true",
                        help="with --book/--date: print the model's first draft without holding "
                             "it against the record (to inspect the model; marked as such)")
    parser.add_argument("--max-new-tokens", type=int, default=None,
                        help=f"most tokens to add (default: {generation.SUMMARY_MAX_NEW_TOKENS} "
                             f"for a summary, {generation.PROMPT_MAX_NEW_TOKENS} for a prompt; "
                             "digits count one each)")
    parser.add_argument("--temperature", type=float, default=generation.DEFAULT_TEMPERATURE,
                        help="sampling temperature; 0 picks the likeliest token, deterministically "
                             f"(default: {generation.DEFAULT_TEMPERATURE})")
    parser.add_argument("--top-k", type=int, default=generation.DEFAULT_TOP_K,
                        help="sample among the k likeliest tokens; 0 = all "
                             f"(default: {generation.DEFAULT_TOP_K})")
    parser.add_argument("--home", help="project home (default: $ETRM_HOME or .etrm)")
    parser.add_argument("--version", type=int, default=None,
                        help="model version (default: the newest one models.config serves)")
    parser.add_argument("--server", metavar="HOST:PORT", default=None,
                        help="ask a running TF Serving / `etrm serve` over REST instead of loading the model")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds to wait for the server (with --server; default: 120)")
    return parser


def _check(args: argparse.Namespace) -> None:
    if args.prompt is not None and (args.book or args.date):
        raise ValueError("give either --prompt or --book with --date, not both")
    if args.prompt is None and not (args.book and args.date):
        raise ValueError("give --book BOOK and --date YYYY-MM-DD (or --prompt TEXT to explore)")
    if args.prompt is not None and args.unchecked:
        raise ValueError("--unchecked is for --book/--date summaries; a --prompt is never checked")
    if args.prompt is not None and not args.prompt.strip():
        raise ValueError("--prompt must not be empty")
    if args.max_new_tokens is not None and args.max_new_tokens < 0:
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


def generate_locally(home, args: argparse.Namespace) -> Tuple[str, int, str]:
    """(text, the version that wrote it, what it is conditioned on), from the model loaded
    in-process. The request is built first, so bad input is named before the model loads."""
    if args.prompt is not None:
        inputs = generation.prompt_request(args.prompt, args.max_new_tokens, args.temperature,
                                           args.top_k)
        servable, chosen = _load_served(home, args.version)
        text = generation.output_text(servable.run(generation.GENERATE_SIGNATURE, inputs))
        return text, chosen, generation.EXPLORATION_NOTE
    from ml.reports.records import RiskRecordSource

    record = RiskRecordSource(home).record(args.book, args.date)
    servable, chosen = _load_served(home, args.version)
    summarize = functools.partial(servable.run, generation.SUMMARIZE_SIGNATURE)
    if args.unchecked:
        text = generation.unchecked_summary(summarize, record, args.max_new_tokens,
                                            args.temperature, args.top_k)
        return text, chosen, _conditioning(record.book, record.report_date, checked=False)
    summary = generation.checked_summary(summarize, record, args.max_new_tokens,
                                         args.temperature, args.top_k)
    return summary.text, chosen, _conditioning(record.book, record.report_date, checked=True,
                                               drafts=summary.drafts)


def _load_served(home, version: Optional[int]):
    """(servable, version) of the newest served (or the asked) version, loaded in-process."""
    from ml.serving.model_manager import load_version

    chosen, folder = newest_served_version(home, version)
    return load_version(MODEL_NAME, chosen, folder), chosen


def _conditioning(book: str, date: str, checked: bool, drafts: int = 1) -> str:
    """What a summary is conditioned on and whether it was checked, for the status line."""
    said = f"conditioned on the risk record of {book} on {date}, "
    if not checked:
        return said + "not checked against it"
    return said + ("checked against it" if drafts == 1 else
                   f"checked against it (draft {drafts}: earlier drafts did not state the record)")


def generate_on_server(server: str, args: argparse.Namespace, home) -> str:
    from ml.tensorflow_serving_client import ETRMModelClient, TensorFlowServingClient

    host, port = _host_port(server)
    with TensorFlowServingClient(host=host, rest_port=port, timeout_seconds=args.timeout) as client:
        reports = ETRMModelClient(client, version=args.version)
        if args.prompt is not None:
            return reports.generate_report(args.prompt, args.max_new_tokens, args.temperature,
                                           args.top_k)
        return reports.generate_report(max_new_tokens=args.max_new_tokens,
                                       temperature=args.temperature, top_k=args.top_k,
                                       book=args.book, date=args.date, home=home,
                                       checked=not args.unchecked)


def run(args: argparse.Namespace) -> int:
    """Prints the generated report on stdout (and which version wrote it on stderr)."""
    from ml.serving.errors import ServingError
    from ml.tensorflow_serving_client import TensorFlowServingError

    try:
        _check(args)
        from ml.core.home import Home

        home = Home.resolve(args.home)
        if args.server:
            text = generate_on_server(args.server, args, home)
            conditioning = (generation.EXPLORATION_NOTE if args.prompt is not None else
                            _conditioning(args.book, args.date, checked=not args.unchecked))
            source = f"{MODEL_NAME} on {args.server}"
        else:
            text, version, conditioning = generate_locally(home, args)
            source = f"{MODEL_NAME} version {version} under {home.root}"
    except (ValueError, LookupError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (ServingError, TensorFlowServingError) as exc:
        print(f"error: the model could not answer: {exc}", file=sys.stderr)
        return 1
    except generation.SummaryRejected as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"({source}, {conditioning})", file=sys.stderr)
    if args.prompt is not None:
        print(f"[{generation.EXPLORATION_NOTE}]")
    elif args.unchecked:
        print(f"[{generation.UNCHECKED_NOTE}]")
    print(text)
    return 0
