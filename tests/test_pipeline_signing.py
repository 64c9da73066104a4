"""A home signs what its pipelines push: its first run makes the key pair (outside the serving
tree), later runs reuse it, and both models' Pushers get the private key."""
import json
import os

import pytest

from ml.core.home import Home
from pipeline.config import ModelSettings
from pipeline.local_runner import serving_settings


def test_first_run_makes_the_key_pair_and_later_runs_reuse_it(tmp_path):
    home = Home(tmp_path)
    settings = serving_settings(home)
    assert settings.signing_key_path == str(home.model_signing_key)
    assert home.model_signing_public_key.exists()
    assert oct(os.stat(home.model_signing_key).st_mode & 0o777) == "0o600"
    assert not str(home.model_signing_key).startswith(str(home.serving_models_dir))
    key = home.model_signing_key.read_bytes()
    assert serving_settings(home).signing_key_path == settings.signing_key_path
    assert home.model_signing_key.read_bytes() == key


def test_a_public_key_without_its_private_key_is_a_clear_error(tmp_path):
    home = Home(tmp_path)
    serving_settings(home)
    home.model_signing_key.unlink()
    with pytest.raises(ValueError, match="exists without its private key"):
        serving_settings(home)


@pytest.mark.parametrize("dataset", ["trades", "reports"])
def test_both_models_pushers_sign_with_the_homes_key(tmp_path, dataset):
    from models.lm.config import PRESETS
    from pipeline.config import DataSettings
    from pipeline.create import create_pipeline

    home = Home(tmp_path)
    model = ModelSettings(hyperparameters=PRESETS["tiny"].to_dict()) if dataset == "reports" \
        else ModelSettings()
    pipeline = create_pipeline(str(tmp_path / "root"), DataSettings(dataset=dataset, records_per_span=300),
                               model=model, serving=serving_settings(home))
    pushers = [node for node in pipeline.components if node.id == "ServingPusher"]
    assert len(pushers) == 1
    custom_config = json.loads(pushers[0].exec_properties["custom_config"])
    assert custom_config["signing_key_path"] == str(home.model_signing_key)
