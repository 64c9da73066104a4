"""RetrainingConfig, as the spec writes it, and its validation at registration."""
from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, Dict

from ml.core import registry


SPEC_SCHEDULE = "0 2 * * 0"  # the spec's retraining cron: every Sunday at 02:00


@dataclasses.dataclass
class RetrainingConfig:
    """How one model is retrained (the spec's fields and defaults).

    model_name is any registry name of the model (`risk_model`, `etrm_risk_model`, `risk`);
    retrain_schedule a five-field cron expression; performance_threshold the largest drop of
    the blessing metric a candidate may show against the `stable` version.
    """

    model_name: str
    retrain_schedule: str
    data_window_days: int = 30
    min_samples_threshold: int = 1000
    performance_threshold: float = 0.05
    auto_deploy: bool = False
    rollback_on_failure: bool = True

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Dict[str, Any]) -> "RetrainingConfig":
        return cls(**values)


def validate(config: RetrainingConfig) -> registry.RegisteredModel:
    """The config's registry entry; a ValueError naming the field and what is accepted otherwise."""
    try:
        entry = registry.get_model(config.model_name)
    except ValueError as exc:
        raise ValueError(f"model_name: {exc}") from None
    next_run(config.retrain_schedule, dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc))
    for name in ("data_window_days", "min_samples_threshold"):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name} must be a positive whole number, got {value!r}")
    threshold = config.performance_threshold
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold < 1:
        raise ValueError(f"performance_threshold must be a number in [0, 1), got {threshold!r}")
    for name in ("auto_deploy", "rollback_on_failure"):
        if not isinstance(getattr(config, name), bool):
            raise ValueError(f"{name} must be True or False, got {getattr(config, name)!r}")
    return entry


def next_run(schedule: str, after: dt.datetime) -> dt.datetime:
    """The first time the cron schedule fires strictly after `after` (croniter does the parsing)."""
    from croniter import CroniterError, croniter

    if not isinstance(schedule, str) or len(schedule.split()) != 5:
        raise ValueError(f"retrain_schedule must be a five-field cron expression such as "
                         f"'0 2 * * 0' (minute hour day month weekday), got {schedule!r}")
    try:
        return croniter(schedule, after).get_next(dt.datetime)
    except (ValueError, KeyError, CroniterError) as exc:
        raise ValueError(f"retrain_schedule {schedule!r} is not a valid cron expression: {exc}") from None
