"""ModelConfig keeps the documented fields and defaults and rejects bad values by name."""
import dataclasses

import pytest

from ml import model_fine_tuning
from models.lm.config import PRESETS, ModelConfig, preset
from pipeline.config import LanguageModelSettings

SPEC_DEFAULTS = {"vocab_size": 10000, "embedding_dim": 128, "max_length": 512, "batch_size": 32,
                 "epochs": 10, "learning_rate": 0.001, "hidden_dim": 256, "num_heads": 8,
                 "num_layers": 4}


def test_the_documented_fields_come_first_with_their_defaults():
    fields = dataclasses.fields(ModelConfig)
    assert [f.name for f in fields[:len(SPEC_DEFAULTS)]] == list(SPEC_DEFAULTS)
    assert {name: getattr(ModelConfig(), name) for name in SPEC_DEFAULTS} == SPEC_DEFAULTS
    assert model_fine_tuning.ModelConfig is ModelConfig
    assert PRESETS["spec"] == ModelConfig()


@pytest.mark.parametrize("field, value", [
    ("vocab_size", 0), ("embedding_dim", -8), ("max_length", 0), ("batch_size", 0),
    ("epochs", 0), ("hidden_dim", 0), ("num_heads", 0), ("num_layers", -1),
    ("learning_rate", 0.0), ("learning_rate", float("nan")), ("dropout", 1.0),
    ("steps_per_epoch", 0), ("kind_sampling_exponent", 1.5), ("batch_size", 2.5),
    ("epochs", True),
])
def test_bad_values_raise_a_value_error_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        ModelConfig(**{field: value})


def test_embedding_dim_must_divide_into_heads():
    with pytest.raises(ValueError, match="embedding_dim .*num_heads"):
        ModelConfig(embedding_dim=100, num_heads=8)


def test_unknown_fields_and_presets_are_named():
    with pytest.raises(ValueError, match="hidden_size"):
        ModelConfig.from_dict({"hidden_size": 3})
    with pytest.raises(ValueError, match="huge"):
        preset("huge")
    assert ModelConfig.from_dict(PRESETS["run"].to_dict()) == PRESETS["run"]


def test_language_model_settings_are_validated():
    with pytest.raises(ValueError, match="ngram_order"):
        LanguageModelSettings(ngram_order=0)
    with pytest.raises(ValueError, match="perplexity_tolerance"):
        LanguageModelSettings(perplexity_tolerance=-1.0)
    with pytest.raises(ValueError, match="max_ngram_perplexity_ratio"):
        LanguageModelSettings(max_ngram_perplexity_ratio=0.0)


def test_fine_tuning_settings_configure_the_report_lm_and_name_no_model():
    settings = model_fine_tuning.model_settings(PRESETS["tiny"], train_steps=3, warm_start=False,
                                                perplexity_tolerance=0.1)
    # The pushed name comes from the registry entry of the run's dataset, never from settings.
    assert not hasattr(settings, "model_name") and settings.train
    assert model_fine_tuning.MODEL_NAME == "etrm_report_lm"
    assert ModelConfig.from_dict(settings.hyperparameters) == PRESETS["tiny"]
    assert settings.train_steps == 3
    assert settings.lm == LanguageModelSettings(perplexity_tolerance=0.1, warm_start=False)
