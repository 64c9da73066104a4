"""Generative model fine-tuning: the report language model's pipeline (the spec's API).

    from ml.model_fine_tuning import main as run_fine_tuning
    run_fine_tuning()

runs the next span of the `reports` dataset through ETRMExampleGen, data validation,
Transform (builds the ETRM tokenizer), Trainer (trains `ModelConfig`'s decoder-only
transformer, warm-started from the latest blessed language model when there is one),
LMEvaluator (perplexity, next-token accuracy, Kneser-Ney baseline, blessing) and the
ServingPusher (`serving_models/etrm_report_lm/<version>/`), with the same local runner as
`run_local.py`, under the project home (`ml.home.resolve_home()`: $ETRM_HOME or .etrm), and
prints the run summary (also written to runs/latest.json).

With no arguments the model is the spec's ModelConfig() (10k vocabulary cap, 4 layers of
width 128, 10 epochs); `make run` uses `PRESETS["run"]`, a smaller model that trains in a
few minutes on two cores.
"""
from __future__ import annotations

import os
from typing import Any, Dict, Optional

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from models.lm.config import PRESETS, ModelConfig, preset  # noqa: E402

MODEL_NAME = "etrm_report_lm"
DATASET = "reports"
DEFAULT_RECORDS_PER_SPAN = 2000

__all__ = ["MODEL_NAME", "ModelConfig", "PRESETS", "main", "model_settings", "preset"]


def model_settings(config: ModelConfig, train_steps: Optional[int] = None, seed: int = 42,
                   warm_start: bool = True, ngram_order: int = 3,
                   max_ngram_perplexity_ratio: float = 1.0, perplexity_tolerance: float = 0.05):
    """ModelSettings that train, bless and push `config` as etrm_report_lm."""
    from pipeline.config import LanguageModelSettings, ModelSettings

    return ModelSettings(
        train=True, model_name=MODEL_NAME, hyperparameters=config.to_dict(),
        train_steps=train_steps, seed=seed,
        lm=LanguageModelSettings(ngram_order=ngram_order,
                                 max_ngram_perplexity_ratio=max_ngram_perplexity_ratio,
                                 perplexity_tolerance=perplexity_tolerance, warm_start=warm_start))


def main(config: Optional[ModelConfig] = None, home: Optional[str] = None,
         span: Optional[int] = None, records_per_span: int = DEFAULT_RECORDS_PER_SPAN,
         train_steps: Optional[int] = None, seed: int = 42, warm_start: bool = True,
         beam_workers: int = 1, verbose: bool = False, **blessing: Any) -> Dict[str, Any]:
    """Runs the language-model pipeline once on the next span and prints its summary.

    `records_per_span` is the generator's trades per span (one confirmation each, plus the
    week's risk summaries and compliance notes). `blessing` takes ngram_order,
    max_ngram_perplexity_ratio and perplexity_tolerance. Returns the run summary; raises if
    the run failed (the summary is written first).
    """
    from ml.home import resolve_home
    from pipeline.config import DataSettings
    from pipeline.local_runner import PIPELINE_NAMES, HomeLayout, resolve_span, run_pipeline
    from pipeline.report import print_summary

    config = config or ModelConfig()
    settings = model_settings(config, train_steps=train_steps, seed=seed, warm_start=warm_start,
                              **blessing)
    layout = HomeLayout(resolve_home(home))
    data = DataSettings(dataset=DATASET, records_per_span=records_per_span, seed=seed,
                        span=resolve_span(layout, PIPELINE_NAMES[DATASET], span))
    summary = run_pipeline(layout, data, model=settings, beam_workers=beam_workers, verbose=verbose)
    print_summary(summary, layout.runs_dir / "latest.json")
    return summary


if __name__ == "__main__":
    main()
