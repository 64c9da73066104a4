"""A home's notification channels, from `<home>/config/notifications.json`.

Why a file in the home: the continuous-learning loop (`etrm continuous run`), a promotion or
rollback by hand (the CLI, the dashboard), the spec's `ContinuousLearningPipeline()` and
`etrm monitor` must all reach the same people without each caller building notifiers in
Python. One object per channel, the channel names of the alert rules:

    {
      "slack": {"webhook_url_env": "ETRM_SLACK_WEBHOOK"},
      "email": {"host": "smtp.example.com", "port": 587, "sender": "etrm@example.com",
                "recipients": ["risk-desk@example.com"], "username": "etrm",
                "password_env": "ETRM_SMTP_PASSWORD"},
      "pager": {"routing_key_env": "ETRM_PAGERDUTY_KEY"}
    }

Secrets (a webhook URL, a password, a routing key) are read from the environment variable
named by the `..._env` key, so the file can be shared and versioned; a literal value is
accepted too. Every key is checked when the file is read: a bad one is a ValueError naming
the file, the channel and the key.
"""
from __future__ import annotations

import json
import os
import pathlib
from typing import Any, Callable, Dict, Mapping, Optional

from ml.monitoring.notifications import EmailNotifier, PagerDutyNotifier, SlackNotifier

CONFIG_NAME = "notifications.json"

# channel -> {key: (type, required)}; a secret key may be given as <key>_env instead.
_SCHEMA: Dict[str, Dict[str, tuple]] = {
    "slack": {"webhook_url": (str, True), "timeout": ((int, float), False)},
    "pager": {"routing_key": (str, True), "url": (str, False), "timeout": ((int, float), False)},
    "email": {"host": (str, True), "port": (int, True), "sender": (str, True),
              "recipients": (list, True), "username": (str, False), "password": (str, False),
              "starttls": (bool, False), "ssl": (bool, False), "timeout": ((int, float), False),
              "ca_file": (str, False), "allow_plain_password": (bool, False)},
}
_SECRETS = {"slack": ("webhook_url",), "pager": ("routing_key",), "email": ("password",)}
_BUILDERS: Dict[str, Callable[..., object]] = {
    "slack": lambda webhook_url, **rest: SlackNotifier(webhook_url, **rest),
    "pager": lambda routing_key, **rest: PagerDutyNotifier(routing_key, **rest),
    "email": lambda **options: EmailNotifier(**options),
}


def config_path(home) -> pathlib.Path:
    return pathlib.Path(getattr(home, "root", home)) / "config" / CONFIG_NAME


def _type_name(kind) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join({str: "a string", int: "a whole number", float: "a number",
                        bool: "true or false", list: "a list"}[k] for k in kinds)


def _channel_options(where: str, channel: str, entry: Any,
                     environ: Mapping[str, str]) -> Dict[str, Any]:
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: channel {channel!r} must be an object of settings, got "
                         f"{type(entry).__name__}")
    schema = _SCHEMA[channel]
    allowed = set(schema) | {f"{key}_env" for key in _SECRETS[channel]}
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise ValueError(f"{where}: channel {channel!r} has unknown settings {unknown}; known: "
                         f"{sorted(allowed)}")
    options: Dict[str, Any] = {}
    for key in _SECRETS[channel]:
        variable = entry.get(f"{key}_env")
        if variable is None:
            continue
        if key in entry:
            raise ValueError(f"{where}: channel {channel!r} gives both {key!r} and {key}_env; "
                             "choose one")
        if not isinstance(variable, str) or not environ.get(variable):
            raise ValueError(f"{where}: channel {channel!r}: {key}_env names the environment "
                             f"variable {variable!r}, which is not set")
        options[key] = environ[variable]
    for key, (kind, required) in schema.items():
        if key in entry:
            value = entry[key]
            if isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
                raise ValueError(f"{where}: channel {channel!r}: {key} must be "
                                 f"{_type_name(kind)}, got {value!r}")
            options[key] = value
        elif required and key not in options:
            raise ValueError(f"{where}: channel {channel!r} needs {key!r}"
                             + (f" (or {key}_env)" if key in _SECRETS[channel] else ""))
    if channel == "email" and not all(isinstance(r, str) for r in options["recipients"]):
        raise ValueError(f"{where}: channel 'email': recipients must be a list of addresses")
    return options


def load_channels(home, environ: Optional[Mapping[str, str]] = None) -> Dict[str, object]:
    """Channel name -> notifier from the home's file ({} when there is none)."""
    path = config_path(home)
    if not path.exists():
        return {}
    where = str(path)
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"{where}: cannot be read: {error}") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{where}: not valid JSON: {error.msg} at line {error.lineno}, "
                         f"column {error.colno}") from None
    if not isinstance(config, dict):
        raise ValueError(f"{where}: must be a JSON object of channels, got "
                         f"{type(config).__name__}")
    unknown = sorted(set(config) - set(_SCHEMA))
    if unknown:
        raise ValueError(f"{where}: unknown channels {unknown}; known: {sorted(_SCHEMA)} (the "
                         "log channel needs no settings)")
    environ = os.environ if environ is None else environ
    channels = {}
    for channel, entry in config.items():
        options = _channel_options(where, channel, entry, environ)
        try:
            channels[channel] = _BUILDERS[channel](**options)
        except ValueError as error:
            raise ValueError(f"{where}: channel {channel!r}: {error}") from None
    return channels
