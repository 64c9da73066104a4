"""The model registry and the project Home: the one place names and paths come from."""
import pytest

from ml.core import registry
from ml.core.home import Home
from pipeline.config import ModelSettings


@pytest.mark.parametrize("name", ["risk", "etrm_risk_model", "risk_model", "etrm-risk-pipeline"])
def test_every_name_of_the_risk_model_resolves_to_its_entry(name):
    assert registry.get_model(name) is registry.RISK_MODEL


def test_the_report_lm_answers_to_its_spec_alias_and_dataset():
    assert registry.get_model("report_model") is registry.REPORT_LM
    assert registry.for_dataset("reports") is registry.REPORT_LM
    assert registry.for_dataset("trades").serving_name == "etrm_risk_model"


def test_unknown_names_are_refused_naming_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown model 'fraud'.*risk_model"):
        registry.get_model("fraud")
    with pytest.raises(ValueError, match=r"no model is trained on dataset 'weather'"):
        registry.for_dataset("weather")


def test_names_are_unique_across_models():
    names = [name for model in registry.MODELS for name in model.names]
    assert len(names) == len(set(names))


def test_node_builders_resolve_to_functions():
    assert registry.RISK_MODEL.build_nodes().__name__ == "risk_model_nodes"
    assert registry.REPORT_LM.build_nodes().__name__ == "lm_model_nodes"


def test_settings_cannot_carry_a_model_name():
    with pytest.raises(TypeError):
        ModelSettings(model_name="etrm_risk_model")


def test_home_resolves_flag_then_environment_then_default(tmp_path, monkeypatch):
    monkeypatch.setenv("ETRM_HOME", str(tmp_path / "from-env"))
    assert Home.resolve(tmp_path / "flag").root == tmp_path / "flag"
    assert Home.resolve().root == tmp_path / "from-env"
    monkeypatch.delenv("ETRM_HOME")
    monkeypatch.chdir(tmp_path)
    assert Home.resolve().root == tmp_path / ".etrm"


def test_home_maps_the_docker_mount_to_its_serving_models(tmp_path):
    home = Home(tmp_path)
    assert home.local_base_path("/models/etrm_risk_model") == tmp_path / "serving_models" / "etrm_risk_model"
    assert home.serving_log_dir("etrm_risk_model").parent == home.serving_logs_dir
    assert home.models_config_path == tmp_path / "serving_config" / "models.config"
