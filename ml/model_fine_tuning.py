"""Generative model fine-tuning: the report language model's pipeline (the spec's API).

    from ml.model_fine_tuning import main as run_fine_tuning
    run_fine_tuning()

runs the next span of the `reports` dataset through ETRMExampleGen, data validation,
Transform (builds the ETRM tokenizer), Trainer (trains `ModelConfig`'s decoder-only
transformer, warm-started from the latest blessed language model when there is one),
LMEvaluator (perplexity, next-token accuracy, Kneser-Ney baseline, blessing) and the
ServingPusher (`serving_models/etrm_report_lm/<version>/`), with the same local runner as
`run_local.py`, under the project home (`ml.core.home.Home`: $ETRM_HOME or .etrm), and
prints the run summary (also written to runs/latest.json).

With no arguments the model is the spec's ModelConfig() (10k vocabulary cap, 4 layers of
width 128, 10 epochs); `make run` uses `PRESETS["run"]`, a smaller model that trains in a
few minutes on two cores.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

from ml.core.registry import REPORT_LM
from models.lm.config import PRESETS, ModelConfig, preset

MODEL_NAME = REPORT_LM.serving_name
DEFAULT_RECORDS_PER_SPAN = 2000

__all__ = ["MODEL_NAME", "ModelConfig", "PRESETS", "main", "model_settings", "preset"]


def model_settings(config: ModelConfig, train_steps: Optional[int] = None, seed: int = 42,
                   warm_start: bool = True, ngram_order: int = 3,
                   max_ngram_perplexity_ratio: float = 1.0, perplexity_tolerance: float = 0.05):
    """ModelSettings that train, bless and push `config` (as etrm_report_lm, on a reports run)."""
    from pipeline.config import LanguageModelSettings, ModelSettings

    return ModelSettings(
        train=True, hyperparameters=config.to_dict(),
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
    from ml.core import logs
    from ml.core.home import Home
    from pipeline.config import DataSettings
    from pipeline.local_runner import resolve_span, run_pipeline
    from pipeline.run_summary import print_summary

    project = Home.resolve(home)
    with logs.terminal(project, verbose=verbose):
        settings = model_settings(config or ModelConfig(), train_steps=train_steps, seed=seed,
                                  warm_start=warm_start, **blessing)
        data = DataSettings(dataset=REPORT_LM.dataset, records_per_span=records_per_span,
                            seed=seed, span=resolve_span(project, REPORT_LM.pipeline_name, span))
        summary = run_pipeline(project, data, model=settings, beam_workers=beam_workers,
                               verbose=verbose)
        print_summary(summary, project.latest_run)
    return summary


if __name__ == "__main__":
    main()
