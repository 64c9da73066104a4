"""A home's notification channels (<home>/config/notifications.json): read and checked by
name, secrets from the environment, and used by every lifecycle path without Python code."""
import argparse
import json

import pytest

from ml.core.home import Home
from ml.monitoring.channel_config import config_path, load_channels
from ml.monitoring.notifications import EmailNotifier, PagerDutyNotifier, SlackNotifier
from ml.serving import model_config

MODEL = "etrm_risk_model"


@pytest.fixture
def home(tmp_path):
    return Home(tmp_path / "home")


def write(home, config) -> None:
    path = config_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(config if isinstance(config, str) else json.dumps(config))


def test_no_file_means_no_channels(home):
    assert load_channels(home) == {}


def test_channels_are_built_with_secrets_from_the_environment(home):
    write(home, {"slack": {"webhook_url_env": "HOOK"},
                 "pager": {"routing_key": "R0UT1NG", "timeout": 3},
                 "email": {"host": "smtp.example.com", "port": 587, "sender": "etrm@example.com",
                           "recipients": ["desk@example.com"], "username": "etrm",
                           "password_env": "SMTP_PASSWORD"}})
    channels = load_channels(home, {"HOOK": "https://hooks.example.com/T/B/token",
                                    "SMTP_PASSWORD": "s3cret"})
    assert sorted(channels) == ["email", "pager", "slack"]
    assert isinstance(channels["slack"], SlackNotifier)
    assert "https://hooks.example.com/T/B/token" in channels["slack"].secrets
    assert isinstance(channels["pager"], PagerDutyNotifier) and channels["pager"].timeout == 3.0
    email = channels["email"]
    assert isinstance(email, EmailNotifier) and email.secrets == ("s3cret",)
    assert (email.host, email.port, email.recipients) == ("smtp.example.com", 587,
                                                          ["desk@example.com"])


@pytest.mark.parametrize("config, message", [
    ("{not json", "not valid JSON"),
    ([], "must be a JSON object of channels, got list"),
    ({"teams": {}}, "unknown channels ['teams']"),
    ({"slack": "https://x"}, "channel 'slack' must be an object of settings"),
    ({"slack": {}}, "channel 'slack' needs 'webhook_url' (or webhook_url_env)"),
    ({"slack": {"webhook_url_env": "UNSET_HOOK"}},
     "webhook_url_env names the environment variable 'UNSET_HOOK', which is not set"),
    ({"slack": {"webhook_url": "https://x", "webhook_url_env": "HOOK"}},
     "gives both 'webhook_url' and webhook_url_env"),
    ({"slack": {"webhook_url": "ftp://x"}}, "channel 'slack': webhook url must be http(s)"),
    ({"slack": {"webhook": "https://x"}}, "unknown settings ['webhook']"),
    ({"email": {"host": "h", "port": "25", "sender": "a@b", "recipients": ["c@d"]}},
     "channel 'email': port must be a whole number, got '25'"),
    ({"email": {"host": "h", "port": 25, "sender": "a@b", "recipients": "c@d"}},
     "recipients must be a list"),
    ({"email": {"host": "h", "port": 25, "sender": "a@b", "recipients": ["c@d"],
                "password": "p", "starttls": False}}, "refusing to send the SMTP password"),
    ({"pager": {"routing_key": "k", "timeout": True}}, "timeout must be a whole number or a number"),
])
def test_a_bad_file_is_refused_naming_the_file_channel_and_key(home, config, message):
    write(home, config)
    with pytest.raises(ValueError) as caught:
        load_channels(home, {"HOOK": "https://hooks.example.com/x"})
    assert message in str(caught.value) and str(config_path(home)) in str(caught.value)


def push(home: Home, version: int) -> None:
    (home.serving_base(MODEL) / str(version)).mkdir(parents=True)
    model_config.register_pushed_version(home.models_config_path, MODEL,
                                         home.serving_base(MODEL), version)


def deploy_cli(*argv):
    from ml.cli.continuous_deploy import add_deploy_commands

    parser = argparse.ArgumentParser()
    add_deploy_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return args.handler(args)


@pytest.mark.network
def test_a_promotion_by_hand_reaches_the_homes_channels(home, capsys, monkeypatch):
    """`etrm continuous promote` with nothing but the home's file: the Slack-style endpoint
    the test starts receives the decision; the CLI says which channels it notified."""
    from tests.continuous_fixtures import WebhookReceiver

    hook = WebhookReceiver()
    monkeypatch.setenv("ETRM_TEST_SLACK_HOOK", hook.url)
    write(home, {"slack": {"webhook_url_env": "ETRM_TEST_SLACK_HOOK", "timeout": 5}})
    push(home, 1)
    push(home, 2)
    try:
        assert deploy_cli("promote", "risk_model", "--home", str(home.root),
                          "--reason", "release approved") == 0
    finally:
        hook.close()
    assert "; notified: log, slack" in capsys.readouterr().out
    (body,) = hook.bodies
    assert body["text"].startswith("[INFO] etrm_risk_model: stable v1 -> v2, promoted by hand")
    assert body["text"].endswith("release approved")


def test_the_loop_and_the_spec_api_use_the_homes_channels(home, monkeypatch):
    from ml.lifecycle.clock import SimulatedClock
    from ml.lifecycle.loop import ContinuousLearningLoop
    from ml.lifecycle.settings import ContinuousSettings
    from ml.lifecycle.store import LifecycleStore

    monkeypatch.setenv("ETRM_TEST_SLACK_HOOK", "https://hooks.example.com/T/B/x")
    write(home, {"slack": {"webhook_url_env": "ETRM_TEST_SLACK_HOOK"}})
    loop = ContinuousLearningLoop(home, LifecycleStore(home.lifecycle_db), runner=None,
                                  settings=ContinuousSettings(), clock=SimulatedClock(0.0))
    try:
        assert loop.notifier.channels == ("log", "slack")
    finally:
        loop.notifier.close()
    write(home, {"slack": {"webhook_url_env": "ETRM_UNSET_HOOK"}})
    with pytest.raises(ValueError, match="ETRM_UNSET_HOOK"):
        ContinuousLearningLoop(home, LifecycleStore(home.lifecycle_db), runner=None,
                               settings=ContinuousSettings(), clock=SimulatedClock(0.0))
