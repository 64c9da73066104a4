"""Synthetic ETRM data generation (the spec's API); the generator lives in ml/synthetic/generator.py.

    from ml.synthetic_data_generator import SyntheticETRMDataGenerator, ETRMDataConfig
"""
from ml.synthetic.generator import (DRIFT_KINDS, RISK_SUMMARY_SECTIONS, TEXT_KINDS, TRADE_COLUMNS,
                                    DriftScenario, ETRMDataConfig, PriceSeries,
                                    SyntheticETRMDataGenerator, load_dataset, roc_auc,
                                    save_dataset)

__all__ = [
    "DRIFT_KINDS", "DriftScenario", "ETRMDataConfig", "PriceSeries", "RISK_SUMMARY_SECTIONS",
    "SyntheticETRMDataGenerator", "TEXT_KINDS", "TRADE_COLUMNS", "load_dataset", "roc_auc",
    "save_dataset"]
