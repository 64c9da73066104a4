"""`etrm run` / `python run_local.py`: runs the ETRM pipelines locally.

LocalDagRunner by default (`--runner beam` for BeamDagRunner), state under the project home
(`--home`, else $ETRM_HOME, else .etrm/): metadata.sqlite, pipelines/, runs/latest.json.
"""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from ml.core import logs, registry
from models.lm.config import PRESETS  # no TensorFlow: keeps --help fast

from ml.cli.home_args import add_home_arguments, home_of

MODEL_CHOICES = registry.KEYS + ("all",)


def build_parser(parser: Optional[argparse.ArgumentParser] = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=MODEL_CHOICES, default="all",
                        help="which model's pipeline to run (default: all)")
    add_home_arguments(parser)
    parser.add_argument("--runner", choices=["local", "beam"], default="local",
                        help="LocalDagRunner (default) or BeamDagRunner")
    parser.add_argument("--trades", type=int, default=20000, dest="records_per_span",
                        help="trades generated per span (default: 20000)")
    parser.add_argument("--span", type=int, default=None,
                        help="span to ingest (default: the one after the newest in ML Metadata)")
    parser.add_argument("--seed", type=int, default=42, help="generator seed (default: 42)")
    parser.add_argument("--history-start", default="2024-01-01",
                        help="first day of span 0, YYYY-MM-DD (default: 2024-01-01)")
    parser.add_argument("--period-days", type=int, default=7, help="days per span (default: 7)")
    parser.add_argument("--drift", default="", metavar="KIND@DATE:MAGNITUDE,...",
                        help="generator drift scenarios, e.g. price_shift@2024-03-01:1.5")
    parser.add_argument("--shuffle-labels", action="store_true",
                        help="generate useless labels (to check that a bad model is refused)")
    parser.add_argument("--warn-on-anomalies", action="store_true",
                        help="log data anomalies instead of stopping the run")
    parser.add_argument("--beam-workers", type=int, default=None,
                        help="DirectRunner workers: 1 = in-process, N = multi-processing "
                             "(default: all cores from 500,000 records per span, else 1)")
    parser.add_argument("--beam-arg", action="append", default=[], metavar="--OPTION=VALUE",
                        dest="beam_options",
                        help="a Beam pipeline option passed through, repeatable (e.g. "
                             "--beam-arg=--runner=FlinkRunner --beam-arg=--flink_master=host:8081; "
                             "see README, Beam at scale)")
    parser.add_argument("--no-train", action="store_true",
                        help="stop after data validation (no Transform/Trainer/Evaluator/Pusher)")
    parser.add_argument("--min-auc", type=float, default=0.70,
                        help="the risk model is blessed only at or above this eval AUC (default: 0.70)")
    parser.add_argument("--auc-tolerance", type=float, default=0.01,
                        help="how far below the serving model's AUC a candidate may be (default: 0.01)")
    parser.add_argument("--train-steps", type=int, default=None,
                        help="cap training at this many steps (default: full epochs)")
    parser.add_argument("--lm-preset", choices=sorted(PRESETS), default="run",
                        help="report LM size, a models.lm.config preset (default: run; spec = "
                             "the documented ModelConfig defaults)")
    parser.add_argument("--drift-action", choices=["block", "warn"], default="block",
                        help="span-to-span drift stops the run (default) or only warns")
    parser.add_argument("--skew-action", choices=["block", "warn"], default="warn",
                        help="training/serving skew stops the run or only warns (default)")
    parser.add_argument("--drift-psi", type=float, default=0.25,
                        help="PSI (beyond its sampling allowance) above which a significant "
                             "change counts as drift (default: 0.25)")
    parser.add_argument("--drift-feature-psi", default=None, metavar="NAME=PSI,...",
                        help="per-feature PSI floors; prices and volatility move with the market "
                             "every week (default: the floors calibrated in "
                             "pipeline.config.DriftSettings)")
    parser.add_argument("--drift-p-value", type=float, default=0.01,
                        help="family-wise false-alarm rate of a drift or skew check (default: "
                             "0.01)")
    parser.add_argument("--drift-linf", type=float, default=0.1,
                        help="TFDV L-infinity threshold for categorical features (default: 0.1)")
    parser.add_argument("--drift-js", type=float, default=0.4,
                        help="TFDV Jensen-Shannon threshold for numeric features (default: 0.4)")
    parser.add_argument("--no-drift-check", action="store_true",
                        help="skip the drift and skew checks (DriftCheck/DriftGate)")
    parser.add_argument("--verbose", action="store_true", help="show TFX's INFO logs")
    return parser


def lm_settings(preset_name: str) -> dict:
    """ModelSettings fields of the report language model: its ModelConfig preset."""
    return {"hyperparameters": PRESETS[preset_name].to_dict()}


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    return build_parser(parser)


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return run(args)


def run(args: argparse.Namespace) -> int:
    """Runs the chosen pipelines; the terminal shows progress and summaries, the log file
    (named in each summary) the libraries' warnings and logs."""

    home = home_of(args)
    with logs.terminal(home, verbose=args.verbose) as terminal:
        return _run_models(args, home, terminal)


def _run_models(args: argparse.Namespace, home, terminal) -> int:
    from ml.core.beam import check_beam_options
    from ml.core.metadata import StoreUnavailable
    from ml.monitoring.drift_rule import parse_feature_floors
    from pipeline.config import DataSettings, DriftSettings, ModelSettings, ValidationSettings
    from pipeline.local_runner import resolve_span, run_pipeline
    from pipeline.run_summary import print_summary

    say = logs.progress_logger()
    exit_code = 0
    chosen = registry.MODELS if args.model == "all" else (registry.get_model(args.model),)
    for entry in chosen:
        try:
            span = resolve_span(home, entry.pipeline_name, args.span)
            data = DataSettings(
                dataset=entry.dataset, span=span, records_per_span=args.records_per_span,
                seed=args.seed, history_start=args.history_start, period_days=args.period_days,
                drift_scenarios=args.drift, shuffle_labels=args.shuffle_labels)
            model = ModelSettings(train=not args.no_train,
                                  min_auc=args.min_auc, auc_tolerance=args.auc_tolerance,
                                  train_steps=args.train_steps, seed=args.seed,
                                  **(lm_settings(args.lm_preset) if entry is registry.REPORT_LM else {}))
            drift = DriftSettings(
                enabled=not args.no_drift_check, drift_action=args.drift_action,
                skew_action=args.skew_action, psi_threshold=args.drift_psi,
                feature_psi_thresholds=(
                    DriftSettings.feature_psi_thresholds if args.drift_feature_psi is None
                    else tuple(parse_feature_floors(args.drift_feature_psi).items())),
                p_value=args.drift_p_value, js_threshold=args.drift_js,
                linf_threshold=args.drift_linf)
            beam_options = check_beam_options(args.beam_options)
        except (ValueError, StoreUnavailable) as exc:
            say.error("error: %s", exc)
            return 2
        say.info("Running %s on span %s (%s runner), home %s", entry.pipeline_name, span,
                 args.runner, home.root)
        try:
            summary = run_pipeline(home, data, ValidationSettings(not args.warn_on_anomalies),
                                   model=model, runner=args.runner, beam_workers=args.beam_workers,
                                   verbose=args.verbose, drift=drift,
                                   beam_options=beam_options)
        except Exception as exc:  # the summary is already written; show the reason, not a trace
            terminal.report(exc, "\nRun failed")
            say.info("Summary: %s", home.latest_run)
            exit_code = 1
            continue
        print_summary(summary, home.latest_run)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
