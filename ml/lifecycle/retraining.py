"""The retraining job: ingest the window's spans, check there is enough data, train on the
rolling window against the `stable` version, push a blessed candidate to `canary`.

Each step is a TFX run on the home's ML Metadata, checkpointed in the job, so an attempt that
died (kill -9 at any point) is resumed by the next one without redoing finished steps:

1. ingest: one run of the model's pipeline per span of the window that has no validated
   Examples yet (ExampleGen .. ValidationGate; the drift check only warns, since drift is a
   reason to retrain, not to stop). A span is done once its gate passed, as ML Metadata
   records it (`metadata.validated_spans`), so a run killed half-way is simply run again.
2. count: the examples in the window's validated spans (their recorded records_per_span);
   fewer than min_samples_threshold skips the job with that reason.
3. train: `pipeline.create.create_window_pipeline` on the window, warm-started from and
   judged against the version labelled `stable`, with the job's push key: a retried attempt
   whose predecessor published a version finds it instead of pushing a second one.
"""
from __future__ import annotations

import logging
from typing import Any, Dict, List

from ml.core import metadata, registry
from ml.lifecycle.jobs import JobContext, JobInterrupted, JobOutcome, PermanentJobError
from ml.lifecycle.settings import ContinuousSettings
from ml.lifecycle.windows import span_ending, training_spans
from ml.synthetic.calendar import trading_days
from ml.synthetic.spans import span_window

LOGGER = logging.getLogger(__name__)


def has_trading_day(span: int, settings: ContinuousSettings) -> bool:
    """Spans without a trading day (a weekend or holiday with span_days=1) hold no trades."""
    first, last = span_window(span, settings.history_start, settings.span_days)
    return len(trading_days(first, last)) > 0


def stable_version(home, model_name: str) -> int:
    """The version labelled `stable` in the home's models.config; -1 when nothing serves."""
    from ml.lifecycle.deployment import STABLE, label_versions

    return label_versions(home, model_name).get(STABLE, -1)


def push_key(context: JobContext) -> str:
    """One key per job: its model, window end and id (the idempotency key plus the job)."""
    return f"{context.entry.serving_name}@{context.job.window_end}#job{context.job.id}"


class RetrainingJobRunner:
    """The JobRunner the loop uses by default: real TFX runs on the loop's home."""

    def __init__(self, settings: ContinuousSettings = None, verbose: bool = False):
        self._settings = settings
        self._verbose = verbose

    def run(self, context: JobContext) -> JobOutcome:
        settings = self._settings or context.settings
        entry, config, job = context.entry, context.config, context.job
        try:
            last_span = span_ending(job.window_end, settings)
        except ValueError as exc:
            raise PermanentJobError(str(exc)) from None
        spans = [span for span in training_spans(last_span, config.data_window_days, settings)
                 if has_trading_day(span, settings)]
        if not spans:
            return JobOutcome("skipped", f"the {config.data_window_days} days up to "
                              f"{job.window_end} hold no complete span with a trading day")
        self._ingest(context, spans, settings)
        store = metadata.store_for(context.home)
        validated = metadata.validated_spans(store, entry.pipeline_name, settings.span_days,
                                             settings.history_start)
        artifacts = store.get_artifacts_by_id([validated[span] for span in spans])
        examples = sum(int(a.custom_properties["etrm_records_per_span"].int_value) for a in artifacts)
        window = {"window": [spans[0], spans[-1]], "examples": examples,
                  "examples_artifact_ids": [a.id for a in artifacts]}
        context.checkpoint("count", **window)
        if examples < config.min_samples_threshold:
            return JobOutcome("skipped", f"the window (spans {spans[0]}-{spans[-1]}) holds "
                              f"{examples} examples, fewer than min_samples_threshold="
                              f"{config.min_samples_threshold}", window)
        if context.should_stop():
            raise JobInterrupted("stopped before training")
        return self._train(context, spans, settings, window)

    def _ingest(self, context: JobContext, spans: List[int], settings: ContinuousSettings) -> None:
        from pipeline.config import DataSettings, DriftSettings, ModelSettings
        from pipeline.local_runner import run_pipeline

        entry = context.entry
        done = metadata.validated_spans(metadata.store_for(context.home), entry.pipeline_name,
                                        settings.span_days, settings.history_start) \
            if metadata.has_store(context.home) else {}
        for span in spans:
            if span in done:
                continue
            if context.should_stop():
                raise JobInterrupted(f"stopped before ingesting span {span}")
            context.progress(f"ingesting span {span} of {entry.dataset}")
            data = DataSettings(dataset=entry.dataset, span=span,
                                records_per_span=settings.records_per_span, seed=settings.seed,
                                history_start=settings.history_start,
                                period_days=settings.span_days,
                                drift_scenarios=settings.drift_scenarios)
            try:
                run_pipeline(context.home, data, model=ModelSettings(train=False),
                             drift=DriftSettings(drift_action="warn"), verbose=self._verbose)
            except Exception as exc:
                if _is_validation_failure(exc):
                    raise PermanentJobError(f"span {span} failed data validation: {exc}") from exc
                raise
            context.checkpoint("ingest", spans=sorted(set(context.steps().get("ingest", {})
                                                           .get("spans", [])) | {span}))

    def _train(self, context: JobContext, spans: List[int], settings: ContinuousSettings,
               window: Dict[str, Any]) -> JobOutcome:
        from pipeline.local_runner import WindowRun, run_window_pipeline

        entry, config = context.entry, context.config
        finished = context.steps().get("train")
        if finished:
            return _outcome(finished, "an earlier attempt trained and recorded this window")
        baseline = stable_version(context.home, entry.serving_name)
        run = WindowRun(dataset=entry.dataset, first_span=spans[0], last_span=spans[-1],
                        baseline_version=baseline, push_key=push_key(context),
                        period_days=settings.span_days, history_start=settings.history_start)
        context.progress(f"training {entry.serving_name} on spans {spans[0]}-{spans[-1]} "
                         f"({window['examples']} examples) against stable v{baseline}"
                         if baseline >= 0 else
                         f"training {entry.serving_name} on spans {spans[0]}-{spans[-1]} "
                         f"({window['examples']} examples); nothing serves yet")
        summary = run_window_pipeline(context.home, run, model_settings(entry, config, settings),
                                      settings.records_per_span, verbose=self._verbose)
        model = summary.get("model", {})
        result = dict(window, baseline_version=baseline if baseline >= 0 else None,
                      blessed=bool(model.get("blessed")) and model.get("canary", {}).get("blessed", True),
                      pushed_version=model.get("pushed_version"),
                      metrics=_headline_metrics(model), run_summary=str(context.home.latest_run),
                      mlmd={"model_uri": model.get("model_uri"),
                            "baseline_model_artifact_id": (model.get("baseline") or {}).get("model_artifact_id")})
        failures = model.get("validation_failures") or []
        result["not_pushed_reason"] = None if result["pushed_version"] is not None else (
            (model.get("not_pushed_reason") or "candidate was not blessed")
            + (f" ({'; '.join(map(str, failures))})" if failures else ""))
        context.checkpoint("train", **result)
        return _outcome(result)


def _outcome(result: Dict[str, Any], note: str = "") -> JobOutcome:
    """succeeded either way: a candidate that was not blessed is a finished job, not a failure."""
    reason = (f"pushed v{result['pushed_version']} to canary" if result.get("pushed_version") is not None
              else f"not pushed: {result.get('not_pushed_reason')}")
    return JobOutcome("succeeded", f"{reason} ({note})" if note else reason, result)


def model_settings(entry: registry.RegisteredModel, config, settings: ContinuousSettings):
    """The pipeline's ModelSettings for a job: performance_threshold is the allowed drop
    against `stable` (AUC for the risk model, relative perplexity for the report LM)."""
    from models.lm.config import PRESETS
    from pipeline.config import LanguageModelSettings, ModelSettings

    if entry is registry.REPORT_LM:
        return ModelSettings(train_steps=settings.train_steps, seed=settings.seed,
                             hyperparameters=PRESETS["run"].to_dict(),
                             lm=LanguageModelSettings(perplexity_tolerance=config.performance_threshold))
    return ModelSettings(train_steps=settings.train_steps, seed=settings.seed,
                         min_auc=settings.min_auc, auc_tolerance=config.performance_threshold)


def _is_validation_failure(error: BaseException) -> bool:
    """Whether the ValidationGate stopped the run (the data is wrong: retrying cannot help)."""
    from components.validation_gate.anomalies import DataValidationError

    while error is not None:
        if isinstance(error, DataValidationError):
            return True
        error = error.__cause__ or error.__context__
    return False


def _headline_metrics(model: Dict[str, Any]) -> Dict[str, Any]:
    """The blessing figures worth an audit entry (JSON numbers only)."""
    overall = (model.get("metrics") or {}).get("overall", {})
    figures = {key: overall[key] for key in ("auc", "auc_precision_recall", "binary_accuracy",
                                             "example_count", "perplexity")
               if isinstance(overall.get(key), (int, float))}
    for key in ("perplexity", "ngram_perplexity", "baseline_perplexity"):
        if isinstance(model.get(key), (int, float)):
            figures[key] = model[key]
    return figures
