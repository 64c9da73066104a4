"""The Airflow DAGs' settings: read from ETRM_* variables in one place, one-line errors."""
import datetime as dt

import pytest

from pipeline.airflow_settings import AirflowSettings


def test_settings_default_and_read_from_the_environment(tmp_path):
    defaults = AirflowSettings.from_environ({"ETRM_HOME": str(tmp_path)})
    assert defaults.home.root == tmp_path and defaults.trades_per_span == 20000
    assert defaults.default_args() == {"retries": 2, "retry_delay": dt.timedelta(minutes=5),
                                       "retry_exponential_backoff": True,
                                       "max_retry_delay": dt.timedelta(hours=1)}
    settings = AirflowSettings.from_environ({
        "ETRM_HOME": str(tmp_path), "ETRM_TRADES_PER_SPAN": "1000", "ETRM_TRAIN_STEPS": "20",
        "ETRM_RISK_HYPERPARAMETERS": '{"epochs": 1}', "ETRM_AIRFLOW_RETRY_DELAY_SECONDS": "30",
        "ETRM_DRIFT": "price_shift@2024-01-08:1.0"})
    assert (settings.trades_per_span, settings.train_steps) == (1000, 20)
    assert settings.risk_hyperparameters == {"epochs": 1}
    assert settings.retry_delay == dt.timedelta(seconds=30)
    assert settings.drift_scenarios == "price_shift@2024-01-08:1.0"


@pytest.mark.parametrize("variable, value, message", [
    ("ETRM_TRADES_PER_SPAN", "many", "ETRM_TRADES_PER_SPAN='many' is not valid"),
    ("ETRM_RISK_HYPERPARAMETERS", "[1]", "expected a JSON object"),
    ("ETRM_TRADES_PER_SPAN", "0", "trades_per_span must be > 0"),
    ("ETRM_AIRFLOW_RETRIES", "-1", "retries must be >= 0"),
])
def test_bad_settings_name_the_variable(tmp_path, variable, value, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[")) as error:
        AirflowSettings.from_environ({"ETRM_HOME": str(tmp_path), variable: value})
    assert "\n" not in str(error.value)
