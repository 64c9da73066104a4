"""Helpers for end-to-end tests: small, fast pipeline runs under a temporary home."""
import pathlib

from pipeline.config import DataSettings, DriftSettings, ModelSettings, ValidationSettings
from pipeline.local_runner import HomeLayout, run_pipeline
from pipeline.metadata_queries import open_store, sqlite_config

SMALL_TRADES = 1500
FAST_HYPERPARAMETERS = {"epochs": 4, "embed_dim": 16, "num_heads": 2, "ff_dim": 32, "num_layers": 1,
                        "batch_size": 128}


def run_small(home: pathlib.Path, span=None, train=False, drift="", shuffle_labels=False,
              records=SMALL_TRADES, model_overrides=None, drift_gate=True):
    layout = HomeLayout(home)
    from pipeline.local_runner import PIPELINE_NAMES, resolve_span

    data = DataSettings(dataset="trades", span=resolve_span(layout, PIPELINE_NAMES["trades"], span),
                        records_per_span=records, drift_scenarios=drift, shuffle_labels=shuffle_labels)
    model = ModelSettings(train=train, hyperparameters=FAST_HYPERPARAMETERS, min_auc=0.65,
                          **(model_overrides or {}))
    return run_pipeline(layout, data, ValidationSettings(), model=model, beam_workers=1,
                        drift=DriftSettings(enabled=drift_gate))


def store_for(home: pathlib.Path):
    return open_store(sqlite_config(str(home / "metadata.sqlite")))
