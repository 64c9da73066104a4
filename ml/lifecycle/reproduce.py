"""Reproduces a pushed version: reruns what ML Metadata recorded behind it into a fresh home.

The recipe of a version is read from its lineage only (never from runs/*.json, which a user
may have deleted): each span's generator settings, the Trainer's hyperparameters, seed and
steps, the blessing thresholds, the canary and push settings, and the baseline it was judged
against. That baseline is reproduced first (recursively, oldest first) and labelled `stable`
in the fresh home, so each run warm-starts from and is compared with the same model as the
original. The drift check is left out: it can only stop a run, and a pushed version's run was
not stopped; its recorded result stays in the original's lineage.
"""
from __future__ import annotations

import dataclasses
import json
import math
from typing import Callable, Dict, List, Optional

from ml.core import metadata, registry
from ml.core.code_fingerprint import GENERATOR_CODE_SETTING, MODEL_CODE_KEY
from ml.core.example_tables import split_checksums
from ml.core.home import Home
from ml.core.lineage import describe_push, properties
from pipeline.config import (DataSettings, DriftSettings, LanguageModelSettings, ModelSettings,
                             ValidationSettings)

# Figures compared between the original and the reproduction (what the Evaluators report).
COMPARED_METRICS = {"risk": ("auc", "auc_precision_recall", "binary_accuracy",
                             "binary_crossentropy", "calibration"),
                    "report_lm": ("perplexity", "token_accuracy", "cross_entropy")}


class ReproductionError(LookupError):
    """A version whose lineage lacks what a rerun needs (named in the message)."""


@dataclasses.dataclass(frozen=True)
class Recipe:
    """What one pushed version was built from, as its lineage records it."""

    model_key: str
    version: int
    spans: List[DataSettings]
    model: ModelSettings
    baseline_version: Optional[int]
    metrics: Dict[str, float]
    checksums: Dict[int, Dict[str, Dict]]
    code: Dict[str, Optional[str]]


@dataclasses.dataclass
class Reproduction:
    """A version and its reproduction, side by side."""

    original: Recipe
    reproduced_version: int
    reproduced_metrics: Dict[str, float]
    reproduced_checksums: Dict[int, Dict[str, Dict]]
    reproduced_code: Dict[str, Optional[str]]
    tolerance: float
    chain: List["Reproduction"] = dataclasses.field(default_factory=list)

    def code_changes(self) -> List[str]:
        """Which code differs between the original and the rerun ("generator", "model"): a
        reason for a difference that no setting explains."""
        return [part for part in ("generator", "model")
                if self.original.code.get(part) != self.reproduced_code.get(part)]

    @property
    def examples_identical(self) -> bool:
        return self.original.checksums == self.reproduced_checksums

    def metric_rows(self) -> List[Dict]:
        rows = []
        for name in COMPARED_METRICS[self.original.model_key]:
            before, after = self.original.metrics.get(name), self.reproduced_metrics.get(name)
            if before is None and after is None:
                continue
            difference = None if before is None or after is None else after - before
            rows.append({"metric": name, "original": before, "reproduced": after,
                         "difference": difference,
                         "within_tolerance": difference is not None
                         and math.isfinite(difference) and abs(difference) <= self.tolerance})
        return rows

    @property
    def reproduced(self) -> bool:
        return (self.examples_identical and all(row["within_tolerance"] for row in self.metric_rows())
                and all(parent.reproduced for parent in self.chain))

    def to_dict(self) -> Dict:
        return {"model": registry.get_model(self.original.model_key).serving_name,
                "version": self.original.version, "reproduced_version": self.reproduced_version,
                "examples_identical": self.examples_identical,
                "examples": {str(span): {"original": self.original.checksums.get(span),
                                         "reproduced": self.reproduced_checksums.get(span)}
                             for span in sorted(set(self.original.checksums)
                                                | set(self.reproduced_checksums))},
                "metrics": self.metric_rows(), "tolerance": self.tolerance,
                "code": {"original": self.original.code, "reproduced": self.reproduced_code,
                         "changed": self.code_changes()},
                "reproduced": self.reproduced,
                "chain": [parent.to_dict() for parent in self.chain]}


def _execution_properties(store, ref: Optional[Dict]) -> Dict:
    """The recorded properties of the execution a lineage entry names ({} when absent)."""
    if not ref or ref.get("execution_id") is None:
        return {}
    found = store.get_executions_by_id([ref["execution_id"]])
    return properties(found[0]) if found else {}


def _json(text, default):
    if not text:
        return default
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return default


def _auc_thresholds(eval_config_text: str) -> Dict[str, float]:
    """min_auc and auc_tolerance from the Evaluator's recorded EvalConfig (risk_eval_config)."""
    config = _json(eval_config_text, {})
    for spec in config.get("metrics_specs", []):
        for metric in spec.get("metrics", []):
            if metric.get("class_name") != "AUC":
                continue
            for per_slice in metric.get("per_slice_thresholds", []):
                threshold = per_slice.get("threshold", {})
                lower = threshold.get("value_threshold", {}).get("lower_bound")
                change = threshold.get("change_threshold", {}).get("absolute")
                found = {}
                if lower is not None:
                    found["min_auc"] = float(lower)
                if change is not None:
                    found["auc_tolerance"] = -float(change)
                return found
    return {}


def _span_settings(entry: Dict) -> DataSettings:
    """The DataSettings that regenerate one recorded span exactly."""
    from ml.synthetic.spans import SpanRequest

    generator = dict(entry.get("generator") or {})
    if generator.get("span") in (None, "") or not generator.get("records_per_span"):
        raise ReproductionError(
            f"Examples artifact {entry.get('artifact_id')} records no generator settings "
            "(span, records_per_span): it was not made by ETRMExampleGen")
    request = SpanRequest.from_properties(str(generator.get("dataset") or "trades"),
                                          int(generator["span"]), generator)
    return DataSettings(**dataclasses.asdict(request))


def read_recipe(store, model_key: str, version: int) -> Recipe:
    """The recipe of `version` of a registry model, from its lineage in `store`."""
    entry = registry.get_model(model_key)
    lineage = describe_push(store, entry.serving_name, version)
    trainer = lineage.get("trainer")
    if not trainer or not lineage["examples"]:
        raise ReproductionError(f"{entry.serving_name} version {version} has no Trainer run or "
                                "training Examples in ML Metadata")
    custom = trainer.get("custom_config") or {}
    train_args = trainer.get("train_args") or {}
    fields: Dict = {"train": True, "hyperparameters": dict(custom.get("hyperparameters") or {}),
                    "seed": int(custom.get("seed", ModelSettings.seed))}
    if train_args.get("num_steps"):
        fields["train_steps"] = int(train_args["num_steps"])
    evaluation = lineage.get("evaluation") or {}
    evaluator = _execution_properties(store, evaluation)
    if entry.key == registry.RISK_MODEL.key:
        fields.update(_auc_thresholds(evaluator.get("eval_config")))
    else:
        fields["lm"] = LanguageModelSettings(
            ngram_order=int(evaluator.get("ngram_order", LanguageModelSettings.ngram_order)),
            max_ngram_perplexity_ratio=float(evaluator.get(
                "max_ngram_perplexity_ratio", LanguageModelSettings.max_ngram_perplexity_ratio)),
            perplexity_tolerance=float(evaluator.get(
                "perplexity_tolerance", LanguageModelSettings.perplexity_tolerance)),
            warm_start=trainer.get("warm_start_parent") is not None
            or (evaluation.get("baseline") is None))
    canary = _execution_properties(store, lineage.get("infra_blessing"))
    if canary.get("num_requests"):
        fields["canary_requests"] = int(canary["num_requests"])
    if canary.get("latency_budget_ms"):
        fields["canary_latency_budget_ms"] = float(canary["latency_budget_ms"])
    pusher = _execution_properties(store, lineage["push"].get("execution"))
    push_config = _json(pusher.get("custom_config"), {})
    if push_config.get("num_versions"):
        fields["num_serving_versions"] = int(push_config["num_versions"])
    baseline = evaluation.get("baseline") or trainer.get("warm_start_parent")
    spans = [_span_settings(examples) for examples in lineage["examples"]]
    checksums = {settings.span: split_checksums(examples["uri"])
                 for settings, examples in zip(spans, lineage["examples"])}
    code = {"model": custom.get(MODEL_CODE_KEY),
            "generator": ",".join(sorted({str((e.get("generator") or {}).get(
                GENERATOR_CODE_SETTING)) for e in lineage["examples"]}))}
    return Recipe(model_key=entry.key, version=int(version), spans=spans,
                  model=ModelSettings(**fields),
                  baseline_version=baseline.get("serving_version") if baseline else None,
                  metrics=dict(evaluation.get("metrics") or {}), checksums=checksums, code=code)


def recipe_chain(store, model_key: str, version: int) -> List[Recipe]:
    """The version's recipe after those of its baselines, oldest first."""
    chain: List[Recipe] = []
    seen = set()
    current: Optional[int] = int(version)
    while current is not None and current >= 0:
        if current in seen:
            raise ReproductionError(f"the baselines of version {version} form a cycle at {current}")
        seen.add(current)
        recipe = read_recipe(store, model_key, current)
        chain.insert(0, recipe)
        current = recipe.baseline_version
    return chain


def _rerun(fresh: Home, recipe: Recipe, say: Callable[[str], None], beam_workers: int) -> Dict:
    """Ingests the recipe's spans into the fresh home and trains on them; the run's summary."""
    from pipeline.local_runner import WindowRun, run_pipeline, run_window_pipeline, stable_version

    drift = DriftSettings(enabled=False)
    if len(recipe.spans) == 1:
        return run_pipeline(fresh, recipe.spans[0], ValidationSettings(), model=recipe.model,
                            beam_workers=beam_workers, drift=drift)
    entry = registry.get_model(recipe.model_key)
    store = metadata.store_for(fresh)
    ingested = set(metadata.ingested_spans(store, entry.pipeline_name))
    for settings in recipe.spans:
        if settings.span not in ingested:
            say(f"  ingesting span {settings.span}")
            run_pipeline(fresh, settings, ValidationSettings(),
                         model=dataclasses.replace(recipe.model, train=False),
                         beam_workers=beam_workers, drift=drift)
    first, last = recipe.spans[0], recipe.spans[-1]
    window = WindowRun(dataset=first.dataset, first_span=first.span, last_span=last.span,
                       baseline_version=stable_version(fresh, entry.serving_name),
                       push_key=f"reproduce-{recipe.version}", period_days=first.period_days,
                       history_start=first.history_start)
    return run_window_pipeline(fresh, window, recipe.model, records_per_span=first.records_per_span)


def _pushed_version(summary: Dict, recipe: Recipe) -> int:
    model = summary.get("model") or {}
    pushed = model.get("pushed_version")
    if pushed is None:
        raise ReproductionError(
            f"the rerun of version {recipe.version} pushed nothing ("
            f"{model.get('not_pushed_reason') or 'status ' + str(summary.get('status'))}): "
            "not reproduced")
    return int(pushed)


def _holds_metadata(home: Home) -> bool:
    if not metadata.has_store(home):
        return False
    try:
        return bool(metadata.existing_store(home).get_contexts())
    except LookupError:  # a server database that does not exist yet
        return False


def reproduce(source: Home, model_key: str, version: int, fresh: Home,
              tolerance: float = 1e-6, say: Callable[[str], None] = print,
              beam_workers: int = 1) -> Reproduction:
    """Reruns `version` (and the baselines before it) from `source`'s lineage into `fresh`,
    which must hold no ML Metadata yet; returns both sides' figures."""
    from ml.lifecycle.deployment import move_label
    from ml.serving.model_config import STABLE_LABEL, version_labels

    if fresh.root.resolve() == source.root.resolve() or fresh.metadata == source.metadata:
        raise ValueError("the reproduction needs a fresh home and ML Metadata, not the original's")
    if _holds_metadata(fresh):
        raise ValueError(f"{fresh.metadata.describe()} already holds ML Metadata: reproduce "
                         "into a fresh home")
    entry = registry.get_model(model_key)
    chain = recipe_chain(metadata.existing_store(source), entry.key, version)
    done: List[Reproduction] = []
    for step, recipe in enumerate(chain, 1):
        spans = ", ".join(str(s.span) for s in recipe.spans)
        say(f"[{step}/{len(chain)}] reproducing {entry.serving_name} v{recipe.version} "
            f"(spans {spans})")
        summary = _rerun(fresh, recipe, say, beam_workers)
        new_version = _pushed_version(summary, recipe)
        fresh_store = metadata.existing_store(fresh)
        reproduced = read_recipe(fresh_store, entry.key, new_version)
        done.append(Reproduction(original=recipe, reproduced_version=new_version,
                                 reproduced_metrics=reproduced.metrics,
                                 reproduced_checksums=reproduced.checksums,
                                 reproduced_code=reproduced.code,
                                 tolerance=tolerance, chain=list(done[-1:])))
        if step < len(chain):
            # The next original was judged against this one as `stable`: the same here.
            current = version_labels(fresh.models_config_path, entry.serving_name).get(STABLE_LABEL)
            if current != new_version:
                move_label(fresh, entry.serving_name, STABLE_LABEL, new_version, expected=current)
    return done[-1]
