"""Helpers for end-to-end tests: small, fast pipeline runs under a temporary home."""
import pathlib

from ml.core import metadata, registry
from ml.core.home import Home
from pipeline.config import DataSettings, DriftSettings, ModelSettings, ValidationSettings
from pipeline.local_runner import resolve_span, run_pipeline

SMALL_TRADES = 1500
FAST_HYPERPARAMETERS = {"epochs": 4, "embed_dim": 16, "num_heads": 2, "ff_dim": 32, "num_layers": 1,
                        "batch_size": 128}


def run_small(home: pathlib.Path, span=None, train=False, drift="", shuffle_labels=False,
              records=SMALL_TRADES, model_overrides=None, drift_gate=True):
    project = Home(pathlib.Path(home))
    data = DataSettings(dataset="trades",
                        span=resolve_span(project, registry.RISK_MODEL.pipeline_name, span),
                        records_per_span=records, drift_scenarios=drift, shuffle_labels=shuffle_labels)
    model = ModelSettings(train=train, hyperparameters=FAST_HYPERPARAMETERS, min_auc=0.65,
                          **(model_overrides or {}))
    return run_pipeline(project, data, ValidationSettings(), model=model, beam_workers=1,
                        drift=DriftSettings(enabled=drift_gate))


def store_for(home: pathlib.Path):
    return metadata.store_for(Home(pathlib.Path(home)))
