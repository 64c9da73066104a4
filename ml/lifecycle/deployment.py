"""Deployment decisions on `models.config`: label moves with compare-and-swap, promote,
withdraw, rollback, and the DeploymentManager the loop calls each tick.

Why a lock and a compare-and-swap: two loops started on one home by mistake, or a loop and an
`etrm continuous promote` by hand, must never both promote. Every change reads models.config,
checks that each label still points where the caller saw it (`expected`) and writes, all under
an exclusive lock on the sibling `models.config.lock` (portalocker: flock, per open file, so
two threads of one process exclude each other too); a moved label raises PromotionConflict.

TF Serving's two-step rule holds throughout: a label only moves to a version the policy
already serves (`ml.serving.model_config`); a rollback target trimmed from the policy is
admitted first (step one) and the label moved after (step two). A server that has not loaded
the target yet keeps the old label until it has (the local server; the real TF Serving needs
the target AVAILABLE first: pass `wait_available`).

Every action appends an audit entry (promote, withdraw, rollback; bless/reject for a canary
verdict) with its reason, the versions, the figures and the ML Metadata ids where known, to
`store` (default: the home's lifecycle database). The DeploymentManager notifies of its
decisions; `promote_by_hand` and `rollback_by_hand` (the CLI's) record who acted and notify
through the same `send_notification`, so a label moved by a person is heard of like one moved
by the loop.
"""
from __future__ import annotations

import logging
from typing import (TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional,
                    Tuple)

from ml.core.home import Home
from ml.core.serving_layout import list_version_dirs
from ml.lifecycle import canary_analysis, guard
from ml.lifecycle.canary_analysis import AnalysisThresholds, VersionObservation
from ml.lifecycle.deployment_store import Deployment, DeploymentStore
from ml.serving import model_config
from ml.serving.version_policy import aspired_versions

if TYPE_CHECKING:
    from ml.lifecycle.config import RetrainingConfig
    from ml.lifecycle.settings import ContinuousSettings
    from ml.lifecycle.store import LifecycleStore

STABLE = model_config.STABLE_LABEL
CANARY = model_config.CANARY_LABEL
LOCK_TIMEOUT_SECONDS = 30.0
LOGGER = logging.getLogger(__name__)

ObservationSource = Callable[[str, int, float, float], VersionObservation]
Notifier = Any  # an object with notify(model, event, message, severity=, figures=) or a callable


class PromotionConflict(RuntimeError):
    """A label no longer points where the caller expected: someone else moved it first."""


def _home(home) -> Home:
    return home if isinstance(home, Home) else Home.resolve(home)


def models_config_lock(home, timeout: float = LOCK_TIMEOUT_SECONDS):
    """The exclusive lock every writer of the home's models.config holds (the Pusher too, for
    its whole push, so no label move is lost between its two steps)."""
    return model_config.config_write_lock(_home(home).models_config_path, timeout=timeout)


def _model_entry(config, model_name: str):
    try:
        return model_config.find_model_config(config, model_name)
    except KeyError:
        raise ValueError(f"model {model_name!r} is not in models.config; push a version "
                         f"first") from None


def versions_on_disk(home, model) -> List[int]:
    """Version folders of a models.config entry, its docker base path mapped to the home."""
    return list_version_dirs(_home(home).local_base_path(model.base_path))


def label_versions(home, model_name: str) -> Dict[str, int]:
    """Each label of the model and the version it points at (empty when not configured)."""
    return model_config.version_labels(_home(home).models_config_path, model_name)


def served_versions(home, model_name: str) -> List[int]:
    """Versions the model's policy serves now (on disk and wanted)."""
    config = model_config.read_model_server_config(_home(home).models_config_path)
    model = _model_entry(config, model_name)
    return aspired_versions(model, versions_on_disk(home, model))


def move_labels(home, model_name: str,
                moves: Mapping[str, Tuple[Optional[int], Optional[int]]]) -> Dict[str, int]:
    """Moves several labels in one write: {label: (version or None to remove, expected)}.

    Under the lock: each label must still point at `expected` (None: absent), else
    PromotionConflict; each target must be served by the policy, else ValueError (TF
    Serving's two-step rule: admit the version first). Returns the labels after the move."""
    home = _home(home)
    with models_config_lock(home):
        config = model_config.read_model_server_config(home.models_config_path)
        model = _model_entry(config, model_name)
        for label, (_, expected) in moves.items():
            current = model.version_labels.get(label) if label in model.version_labels else None
            if current != expected:
                raise PromotionConflict(
                    f"label {label!r} of {model_name!r} points at version {current}, not at "
                    f"{expected} as expected: another process moved it; nothing changed")
        serving = aspired_versions(model, versions_on_disk(home, model))
        for label, (version, _) in moves.items():
            if version is not None and int(version) not in serving:
                raise ValueError(
                    f"cannot point label {label!r} of {model_name!r} at version {version}: the "
                    f"policy {model_config.policy_text(model)} serves versions {serving}; add "
                    f"the version to the policy first (TF Serving's two-step rule)")
        for label, (version, _) in moves.items():
            if version is None:
                model.version_labels.pop(label, None)
            else:
                model.version_labels[label] = int(version)
        model_config.write_model_server_config(home.models_config_path, config)
        return {label: int(version) for label, version in model.version_labels.items()}


def move_label(home, model_name: str, label: str, version: int,
               expected: Optional[int]) -> None:
    """Compare-and-swap of one label (expected None: the label must be absent)."""
    move_labels(home, model_name, {label: (int(version), expected)})


def admit_version(home, model_name: str, version: int) -> bool:
    """Step one for a version on disk the policy no longer serves; True when admitted now."""
    home = _home(home)
    with models_config_lock(home):
        config = model_config.read_model_server_config(home.models_config_path)
        on_disk = versions_on_disk(home, _model_entry(config, model_name))
        return model_config.admit_version(home.models_config_path, model_name, version,
                                          versions_on_disk=on_disk)


# ML Metadata: the push history
def push_history(home, model_name: str) -> List[Dict[str, int]]:
    """Versions pushed for the model, oldest first, with their PushedModel artifact ids
    (empty when the home has no ML Metadata yet)."""
    from ml.core import metadata

    home = _home(home)
    if not metadata.has_store(home):
        return []
    store = metadata.store_for(home)
    return [{"version": int(artifact.custom_properties["pushed_version"].string_value),
             "pushed_model_id": int(artifact.id)}
            for artifact in metadata.pushed_models(store, model_name)]


def mlmd_ids(home, model_name: str, version: Optional[int]) -> Dict[str, int]:
    """PushedModel, Model and training Examples ids of a pushed version (what is known)."""
    from ml.core import metadata

    home = _home(home)
    if version is None or not metadata.has_store(home):
        return {}

    try:
        store = metadata.store_for(home)
        for artifact in reversed(metadata.pushed_models(store, model_name)):
            if int(artifact.custom_properties["pushed_version"].string_value) != int(version):
                continue
            ids = {"pushed_model_id": int(artifact.id)}
            model = metadata.producer_inputs(store, artifact.id, "model")
            if model is not None:
                ids["model_id"] = int(model.id)
                examples = metadata.producer_inputs(store, model.id, "examples")
                if examples is not None:
                    ids["examples_id"] = int(examples.id)
            return ids
    except Exception as error:  # noqa: BLE001 - ids are a courtesy in the audit, never a blocker
        LOGGER.warning("ML Metadata ids of %s v%s not found: %s", model_name, version, error)
    return {}


def known_good_versions(home, model_name: str, store: Optional["LifecycleStore"] = None
                        ) -> List[int]:
    """Versions that served as `stable` and were not rolled back, the most recently stable
    first.

    Served as stable: the first pushed version (ML Metadata's push history; a first push sets
    `stable`), the two sides of every `promote` in the audit log, every rollback target, and
    the current `stable`. A `rollback` marks the version it left bad, until it is promoted
    again."""
    home = _home(home)
    if store is None and home.lifecycle_db.exists():
        store = _store(home, None)
    events: List[Tuple[int, bool]] = []
    history = push_history(home, model_name)
    if history:
        events.append((history[0]["version"], True))
    if store is not None:
        for entry in store.history(model_name, limit=100000):
            figures = entry.figures
            if entry.action == "promote":
                if figures.get("previous_stable") is not None:
                    events.append((int(figures["previous_stable"]), True))
                if figures.get("version") is not None:
                    events.append((int(figures["version"]), True))
            elif entry.action == "rollback":
                if figures.get("from_version") is not None:
                    events.append((int(figures["from_version"]), False))
                if figures.get("version") is not None:
                    events.append((int(figures["version"]), True))
    stable = label_versions(home, model_name).get(STABLE)
    if stable is not None:
        events.append((stable, True))
    latest: Dict[int, Tuple[int, bool]] = {}
    for order, (version, good) in enumerate(events):
        latest[version] = (order, good)
    return [version for version, (_, good) in
            sorted(latest.items(), key=lambda item: item[1][0], reverse=True) if good]


def _now(clock) -> float:
    if clock is None:
        import time

        return time.time()
    return clock.now()


def _store(home, store: Optional["LifecycleStore"]) -> "LifecycleStore":
    """The given store, else the home's lifecycle database (every action is audited)."""
    if store is not None:
        return store
    from ml.lifecycle.store import LifecycleStore

    return LifecycleStore(_home(home).lifecycle_db)


def _record(store, model_name: str, action: str, reason: str, now: float,
            figures: Dict[str, Any], job_id: Optional[int]) -> None:
    if store is not None:
        store.record(model_name, action, reason, now, figures=figures, job_id=job_id)


def _deployments(home, store) -> DeploymentStore:
    return DeploymentStore(store.path if store is not None else _home(home).lifecycle_db)


def promote(home, model_name: str, version: Optional[int] = None,
            expected_stable: Optional[int] = None, reason: str = "",
            store: Optional["LifecycleStore"] = None, clock=None, force: bool = False,
            figures: Optional[Dict[str, Any]] = None, job_id: Optional[int] = None,
            reference: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """`stable` -> `version` (default: the canary's), compare-and-swap on `expected_stable`
    (default: the stable read now). A version whose canary analysis failed, or that was
    withdrawn or rolled back, needs force=True. Starts the guard; audit "promote"."""
    home = _home(home)
    labels = label_versions(home, model_name)
    if version is None:
        if CANARY not in labels:
            raise ValueError(f"{model_name!r} has no canary version to promote; name one with "
                             f"--version")
        version = labels[CANARY]
    version = int(version)
    store = _store(home, store)
    previous = labels.get(STABLE)
    expected = previous if expected_stable is None else int(expected_stable)
    if version == expected:
        raise ValueError(f"version {version} of {model_name!r} is already stable")
    deployments = _deployments(home, store)
    tracked = deployments.get(model_name, version)
    if not force and tracked is not None and (tracked.verdict == canary_analysis.FAIL or
                                              tracked.phase in ("withdrawn", "rolled_back")):
        why = (f"its canary analysis failed ({'; '.join(tracked.figures.get('reasons', []))})"
               if tracked.verdict == canary_analysis.FAIL else f"it was {tracked.phase}")
        raise ValueError(f"version {version} of {model_name!r} is not promoted: {why}; "
                         f"use --force to promote it anyway")
    move_labels(home, model_name, {STABLE: (version, expected)})
    now = _now(clock)
    if reference is None:
        reference = {"version": expected,
                     "start": tracked.started_at if tracked is not None
                     and tracked.phase == "canary" else None, "end": now}
    # Validated: a job's Evaluator blessed it against stable and its canary analysis passed;
    # the guard holds any other version to the one it replaced until outcomes arrive.
    reference = {**reference, "validated": bool(
        not force and tracked is not None and tracked.verdict == canary_analysis.PASS)}
    deployments.promoted(model_name, version, now, previous_stable=expected,
                         reference=reference,
                         job_id=tracked.job_id if tracked is not None else job_id)
    result = {"version": version, "previous_stable": expected, "forced": bool(force),
              "labels": label_versions(home, model_name),
              "mlmd": mlmd_ids(home, model_name, version), **(figures or {})}
    _record(store, model_name, "promote", reason or f"stable -> version {version}", now,
            result, job_id if job_id is not None else
            (tracked.job_id if tracked is not None else None))
    return result


def withdraw_canary(home, model_name: str, reason: str, store: Optional["LifecycleStore"] = None,
                    clock=None, expected_canary: Optional[int] = None,
                    figures: Optional[Dict[str, Any]] = None,
                    job_id: Optional[int] = None) -> Dict[str, Any]:
    """`canary` -> stable's version (removed when there is no stable), compare-and-swap on
    `expected_canary`; the policy drops the withdrawn version on a later push. Audit
    "withdraw"."""
    home = _home(home)
    store = _store(home, store)
    labels = label_versions(home, model_name)
    canary = labels.get(CANARY) if expected_canary is None else int(expected_canary)
    if canary is None:
        raise ValueError(f"{model_name!r} has no canary version to withdraw")
    stable = labels.get(STABLE)
    if canary == stable:
        raise ValueError(f"the canary of {model_name!r} is version {canary}, which is stable: "
                         f"nothing to withdraw")
    move_labels(home, model_name, {CANARY: (stable, canary)})
    now = _now(clock)
    deployments = _deployments(home, store)
    tracked = deployments.get(model_name, canary)
    if tracked is not None:
        deployments.set_phase(tracked.id, "withdrawn", now)
    result = {"version": canary, "stable": stable, "labels": label_versions(home, model_name),
              "mlmd": mlmd_ids(home, model_name, canary), **(figures or {})}
    if job_id is None and tracked is not None:
        job_id = tracked.job_id
    _record(store, model_name, "withdraw", reason, now, result, job_id)
    return result


def rollback(home, model_name: str, to: Optional[int] = None, reason: str = "",
             store: Optional["LifecycleStore"] = None, clock=None,
             expected_stable: Optional[int] = None, figures: Optional[Dict[str, Any]] = None,
             job_id: Optional[int] = None,
             wait_available: Optional[Callable[[int], None]] = None) -> Dict[str, Any]:
    """`stable` -> the last known-good version (or `to`), which must still be on disk.

    Two steps: the target is admitted to the policy if a later push trimmed it, then
    `stable` (and `canary`, when it points at the version rolled back) moves to it in one
    compare-and-swap write. `wait_available(version)` runs between the two (a real TF Serving
    must have loaded the target). The job that produced the version rolled back is marked
    rolled_back. Audit "rollback"."""
    home = _home(home)
    store = _store(home, store)
    labels = label_versions(home, model_name)
    current = labels.get(STABLE) if expected_stable is None else int(expected_stable)
    if current is None:
        raise ValueError(f"{model_name!r} has no stable version to roll back")
    config = model_config.read_model_server_config(home.models_config_path)
    on_disk = versions_on_disk(home, _model_entry(config, model_name))
    if to is None:
        candidates = [v for v in known_good_versions(home, model_name, store)
                      if v != current and v in on_disk]
        if not candidates:
            raise ValueError(f"{model_name!r} has no known-good version other than {current} "
                             f"on disk to roll back to; name one with --to")
        target = candidates[0]
    else:
        target = int(to)
        if target == current:
            raise ValueError(f"version {target} of {model_name!r} is already stable")
        if target not in on_disk:
            raise ValueError(f"version {target} of {model_name!r} is not on disk (versions on "
                             f"disk: {on_disk})")
    admitted = admit_version(home, model_name, target)
    if admitted and wait_available is not None:
        wait_available(target)
    moves = {STABLE: (target, current)}
    if labels.get(CANARY) == current:
        moves[CANARY] = (target, current)
    move_labels(home, model_name, moves)
    now = _now(clock)
    deployments = _deployments(home, store)
    bad = deployments.get(model_name, current)
    if bad is not None:
        deployments.set_phase(bad.id, "rolled_back", now)
    deployments.promoted(model_name, target, now, previous_stable=current, guard=False)
    if job_id is None and bad is not None:
        job_id = bad.job_id
    result = {"version": target, "from_version": current, "admitted": admitted,
              "labels": label_versions(home, model_name),
              "mlmd": {"version": mlmd_ids(home, model_name, target),
                       "from_version": mlmd_ids(home, model_name, current)},
              "job_marked_rolled_back": mark_rolled_back(store, deployments, job_id),
              **(figures or {})}
    _record(store, model_name, "rollback", reason or f"stable {current} -> {target}", now,
            result, job_id)
    return result


def send_notification(notifier: Optional[Notifier], model_name: str, action: str, message: str,
                      figures: Dict[str, Any], severity: str = "info", clock=None
                      ) -> Optional[str]:
    """Tells the notifier of a decision; returns why it failed (None when sent or when there
    is no notifier). Never raises: the labels have moved already, a channel must not undo it."""
    if notifier is None:
        return None
    try:
        if hasattr(notifier, "notify"):
            notifier.notify(model_name, action, message, severity=severity, figures=figures)
        else:
            notifier({"model": model_name, "action": action, "reason": message,
                      "figures": figures, "time": _now(clock), "severity": severity})
    except Exception as error:  # noqa: BLE001 - a notifier never stops a deployment
        LOGGER.warning("notification of %s %s failed: %s", model_name, action, error)
        return f"{type(error).__name__}: {error}"
    return None


def operator_name() -> str:
    """user@host of whoever runs a command by hand, for the audit log and the notification."""
    import getpass
    import socket

    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name in a bare container
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def promote_by_hand(home, model_name: str, version: Optional[int] = None, force: bool = False,
                    reason: str = "", by: Optional[str] = None,
                    store: Optional["LifecycleStore"] = None, clock=None,
                    notifier: Optional[Notifier] = None) -> Dict[str, Any]:
    """`promote` for a person (`etrm continuous promote`): audited as manual with who did
    it, then notified like the loop's promotions, so the team hears of a label moved outside
    the loop. The result carries `notification_error` when the notifier failed."""
    by = by or operator_name()
    reason = reason or ("forced promotion by hand" if force else "promotion by hand")
    result = promote(home, model_name, version=version, reason=reason, store=store, clock=clock,
                     force=force, figures={"manual": True, "by": by})
    message = (f"{model_name}: stable v{result['previous_stable']} -> v{result['version']}, "
               f"promoted by hand{' (forced)' if force else ''} by {by}: {reason}")
    return {**result, "notification_error": send_notification(
        notifier, model_name, "promote", message, result, "warning" if force else "info", clock)}


def rollback_by_hand(home, model_name: str, to: Optional[int] = None, reason: str = "",
                     by: Optional[str] = None, store: Optional["LifecycleStore"] = None,
                     clock=None, notifier: Optional[Notifier] = None) -> Dict[str, Any]:
    """`rollback` for a person (`etrm continuous rollback`): the same as the guard's (labels
    moved, the version's job marked rolled_back, audited) with who did it, and notified with
    the same severity."""
    by = by or operator_name()
    reason = reason or "rollback by hand"
    result = rollback(home, model_name, to=to, reason=reason, store=store, clock=clock,
                      figures={"manual": True, "by": by})
    message = (f"{model_name}: stable v{result['from_version']} rolled back to "
               f"v{result['version']} by hand by {by}: {reason}")
    return {**result, "notification_error": send_notification(
        notifier, model_name, "rollback", message, result, "critical", clock)}


def mark_rolled_back(store, deployments: DeploymentStore, job_id: Optional[int]) -> bool:
    """The job that produced a rolled-back version ends as rolled_back (the store's own
    `mark_rolled_back` when it has one)."""
    if job_id is None or store is None:
        return False
    own = getattr(store, "mark_rolled_back", None)
    if own is not None:
        return bool(own(job_id))
    return deployments.mark_job_rolled_back(job_id)


class DeploymentManager:
    """What the loop asks each tick: analyse the canary, promote or withdraw it (auto_deploy),
    guard a promotion, roll back (rollback_on_failure).

    `observations(model, version, start, end)` gives a VersionObservation per version and
    interval (default: `LoggedObservations` on the home); the notifier is told of each
    decision, either as `notifier.notify(model, action, message, severity=, figures=)` (the
    loop's LifecycleNotifier) or, for a plain callable, `notifier(event)` with {"model",
    "action", "reason", "figures", "time", "severity"};
    `metrics` (a PrometheusCounts) is scraped at each step when given; `shadow(model,
    version, records)` scores logged requests with a replaced version for the guard of an
    unvalidated promotion (default: ml.lifecycle.shadow.ShadowScorer, in this process).
    """

    def __init__(self, home, store: "LifecycleStore", settings: "ContinuousSettings", clock,
                 notifier: Optional[Notifier] = None,
                 observations: Optional[ObservationSource] = None,
                 thresholds: Optional[AnalysisThresholds] = None, metrics=None,
                 wait_available: Optional[Callable[[int], None]] = None,
                 shadow: Optional[Callable[[str, int, List[bytes]], Any]] = None):
        from ml.lifecycle.observations import LoggedObservations
        from ml.lifecycle.shadow import ShadowScorer

        self.home = _home(home)
        self.store = store
        self.settings = settings
        self.clock = clock
        self.notifier = notifier
        self.metrics = metrics
        self.observations = observations or LoggedObservations(
            self.home, clock=clock, counts=metrics)
        self.thresholds = thresholds or AnalysisThresholds()
        self.wait_available = wait_available
        self.shadow = shadow if shadow is not None else ShadowScorer(self.home)
        self.deployments = _deployments(self.home, store)

    def _thresholds(self, config: "RetrainingConfig") -> AnalysisThresholds:
        import dataclasses

        return dataclasses.replace(self.thresholds,
                                   performance_threshold=float(config.performance_threshold))

    def _notify(self, model_name: str, action: str, reason: str, figures: Dict[str, Any],
                severity: str = "info") -> None:
        """Each message names its model, as a decision by hand does: one channel serves all."""
        send_notification(self.notifier, model_name, action, f"{model_name}: {reason}", figures,
                          severity, self.clock)

    def analysing(self, model_name: str) -> Optional[int]:
        """The version on canary whose analysis has no verdict yet (None when there is none)."""
        deployment = self.deployments.in_phase(model_name, "canary")
        return None if deployment is None else deployment.version

    def on_pushed(self, model_name: str, config: "RetrainingConfig", job, version: int) -> None:
        """A job pushed `version` to canary: its analysis starts now (the first version of a
        model is stable from its push; nothing to compare it with)."""
        now = self.clock.now()
        labels = label_versions(self.home, model_name)
        job_id = getattr(job, "id", job)
        if labels.get(STABLE) == int(version):
            first = self.deployments.open(model_name, version, "promoted", now, job_id=job_id)
            if first.previous_stable is None:
                self.deployments.set_guard_verdict(first.id, "not_guarded", now)
            return
        self.deployments.open(model_name, version, "canary", now, job_id=job_id,
                              previous_stable=labels.get(STABLE))

    def step(self, model_name: str, config: "RetrainingConfig") -> List[Dict[str, Any]]:
        """Analyses the intervals completed since the last step; returns the decisions."""
        if self.metrics is not None:
            try:
                self.metrics.scrape(self.clock.now(), model_name)
            except (OSError, ValueError) as error:
                LOGGER.warning("metrics scrape for %s failed: %s", model_name, error)
        decisions: List[Dict[str, Any]] = []
        canary = self.deployments.in_phase(model_name, "canary")
        if canary is not None:
            decisions += self._analyse(model_name, config, canary)
        guarded = self.deployments.guarded(model_name)
        if guarded is not None:
            decisions += self._guard(model_name, config, guarded)
        return decisions

    # Canary analysis
    def _interval(self) -> float:
        return float(self.settings.interval_seconds)

    def _analyse(self, model_name: str, config: "RetrainingConfig",
                 deployment: Deployment) -> List[Dict[str, Any]]:
        now = self.clock.now()
        labels = label_versions(self.home, model_name)
        if labels.get(STABLE) == deployment.version:
            # Promoted by a process that stopped before its bookkeeping: finish it.
            self.deployments.promoted(model_name, deployment.version, now,
                                      previous_stable=deployment.previous_stable,
                                      reference={"version": deployment.previous_stable,
                                                 "start": deployment.started_at, "end": now})
            return [{"action": "none", "version": deployment.version,
                     "reason": "already stable; the guard takes over"}]
        if labels.get(CANARY) != deployment.version or STABLE not in labels:
            self.deployments.set_phase(deployment.id, "superseded", now, expected="canary")
            return [{"action": "none", "version": deployment.version,
                     "reason": "the canary label no longer points at this version"}]
        # Compared with what serves as stable now (the same period's traffic); a stable
        # moved meanwhile (a rollback) is what the promotion's compare-and-swap expects.
        stable = labels[STABLE]
        if deployment.verdict in (canary_analysis.PASS, canary_analysis.FAIL):
            if not config.auto_deploy:
                return []
            return self._decide(model_name, config, deployment, stable, deployment.figures,
                                self._analysis_end(deployment))
        thresholds = self._thresholds(config)
        interval = self._interval()
        analysed = list(deployment.intervals)
        while deployment.started_at + (len(analysed) + 1) * interval <= now:
            start = deployment.started_at + len(analysed) * interval
            result = canary_analysis.analyse_interval(
                self.observations(model_name, stable, start, start + interval),
                self.observations(model_name, deployment.version, start, start + interval),
                thresholds)
            result.update({"start": start, "end": start + interval})
            if not self.deployments.add_interval(deployment.id, len(analysed), result, now):
                return [{"action": "none", "version": deployment.version,
                         "reason": "another loop analysed this interval"}]
            analysed.append(result)
            if result["status"] == canary_analysis.FAIL:
                break
        if len(analysed) == len(deployment.intervals):
            return []
        end = analysed[-1]["end"]
        outcome = canary_analysis.verdict(
            analysed, self.observations(model_name, stable, deployment.started_at, end),
            self.observations(model_name, deployment.version, deployment.started_at, end),
            thresholds, int(self.settings.canary_intervals))
        self.deployments.set_verdict(deployment.id, outcome["verdict"], outcome, now)
        decision = {"action": "analyse", "version": deployment.version,
                    "verdict": outcome["verdict"], "reasons": outcome["reasons"]}
        if outcome["verdict"] == canary_analysis.WAIT:
            return [decision]
        passed = outcome["verdict"] == canary_analysis.PASS
        reason = "; ".join(outcome["reasons"])
        figures = {"stage": "canary_analysis", "version": deployment.version, "stable": stable,
                   "verdict": outcome["verdict"], "analysis": outcome["figures"],
                   "mlmd": mlmd_ids(self.home, model_name, deployment.version)}
        _record(self.store, model_name, "bless" if passed else "reject",
                f"canary analysis {outcome['verdict']}: {reason}", now, figures,
                deployment.job_id)
        if not config.auto_deploy:
            self._notify(model_name, "bless" if passed else "reject",
                         f"canary v{deployment.version} analysis {outcome['verdict']}: {reason}; "
                         f"waiting for `etrm continuous promote {model_name}`", figures,
                         "info" if passed else "warning")
            return [decision, {"action": "wait_for_promote", "version": deployment.version,
                               "verdict": outcome["verdict"]}]
        return [decision] + self._decide(model_name, config, deployment, stable, outcome, end)

    @staticmethod
    def _analysis_end(deployment: Deployment) -> float:
        ends = [item["end"] for item in deployment.intervals if "end" in item]
        return max(ends) if ends else deployment.started_at

    def _decide(self, model_name: str, config: "RetrainingConfig", deployment: Deployment,
                stable: int, outcome: Dict[str, Any], end: float) -> List[Dict[str, Any]]:
        """auto_deploy: a passed canary is promoted (with the previous stable's figures on
        the analysis window as the guard's reference), a failed one withdrawn."""
        passed = outcome["verdict"] == canary_analysis.PASS
        reason = "; ".join(outcome["reasons"])
        try:
            if passed:
                reference = guard.performance_figures(
                    self.observations(model_name, stable, deployment.started_at, end),
                    self._thresholds(config))
                reference.update({"start": deployment.started_at, "end": end})
                result = promote(self.home, model_name, deployment.version,
                                 expected_stable=stable,
                                 reason=f"canary analysis passed: {reason}", store=self.store,
                                 clock=self.clock, job_id=deployment.job_id,
                                 reference=reference, figures={"analysis": outcome["figures"]})
                action = "promote"
            else:
                result = withdraw_canary(self.home, model_name,
                                         f"canary analysis failed: {reason}", store=self.store,
                                         clock=self.clock, expected_canary=deployment.version,
                                         job_id=deployment.job_id,
                                         figures={"analysis": outcome["figures"]})
                action = "withdraw"
        except (PromotionConflict, ValueError) as error:
            return [{"action": "conflict", "version": deployment.version, "reason": str(error)}]
        self._notify(model_name, action, reason, result, "info" if passed else "warning")
        return [{"action": action, "version": deployment.version, "reason": reason}]

    # Guard
    def _guard(self, model_name: str, config: "RetrainingConfig",
               deployment: Deployment) -> List[Dict[str, Any]]:
        now = self.clock.now()
        if label_versions(self.home, model_name).get(STABLE) != deployment.version:
            self.deployments.set_guard_verdict(deployment.id, "ended", now)
            return []
        if deployment.previous_stable is None:
            self.deployments.set_guard_verdict(deployment.id, "not_guarded", now)
            return []
        interval = self._interval()
        window = int(self.settings.guard_intervals)
        checked = len(deployment.guard_checks)
        last = deployment.guard_checks[-1] if deployment.guard_checks else None
        intervals_checked = int(last.get("intervals", checked)) if last else 0
        due = int((now - deployment.promoted_at) // interval)
        if due < 1 or (due <= intervals_checked and (last is None
                                                     or last.get("basis") == "realised")):
            return []
        thresholds = self._thresholds(config)
        waits = int(self.thresholds.max_outcome_wait_intervals)
        checks_done = min(due, window + waits)
        end = deployment.promoted_at + min(checks_done, window) * interval
        current = self.observations(model_name, deployment.version, deployment.promoted_at, end)
        labelled = int(current.labelled()[0].size)
        if due <= intervals_checked and labelled <= int(last.get("labelled", 0)):
            return []  # no new interval and no new outcome since the last check
        reference = self._reference(model_name, deployment, thresholds)
        shadow = (None if reference.get("validated", True)
                  else self._shadow(model_name, deployment, end, thresholds))
        check = guard.guard_check(current, reference, thresholds, shadow)
        check.update({"start": deployment.promoted_at, "end": end, "checked_at": now,
                      "intervals": checks_done, "labelled": labelled})
        if not self.deployments.add_guard_check(deployment.id, checked, check, now):
            return []
        decision = {"action": "guard", "version": deployment.version, "status": check["status"],
                    "reasons": check["reasons"]}
        if check["status"] == guard.ROLLBACK:
            return [decision] + self._guard_failed(model_name, config, deployment, check)
        if guard.concluded(check, checks_done, window, waits):
            verdict = "pass" if check["status"] == guard.OK else "no_data"
            self.deployments.set_guard_verdict(deployment.id, verdict, now)
            decision.update({"concluded": True, "guard_verdict": verdict})
        return [decision]

    def _shadow(self, model_name: str, deployment: Deployment, end: float,
                thresholds: AnalysisThresholds) -> Optional[Dict[str, Any]]:
        """The replaced version's judgement of the new one's logged requests since the
        promotion (guard.shadow_figures); None when the observation source keeps no requests
        or the replaced version cannot score them (logged: the guard then uses estimates)."""
        logged_requests = getattr(self.observations, "logged_requests", None)
        if logged_requests is None or self.shadow is None:
            return None
        scores, records = logged_requests(model_name, deployment.version,
                                          deployment.promoted_at, end)
        if len(scores) < thresholds.min_predictions:
            return None
        previous = deployment.previous_stable
        try:
            reference_scores = self.shadow(model_name, previous, records)
        except Exception as error:  # noqa: BLE001 - any failure only loses this basis
            LOGGER.warning("shadow scoring of %s v%s by v%s failed: %s", model_name,
                           deployment.version, previous, error)
            return None
        figures = guard.shadow_figures(scores, reference_scores, thresholds)
        if figures is not None:
            figures["version"] = previous
        return figures

    def _reference(self, model_name: str, deployment: Deployment,
                   thresholds: AnalysisThresholds) -> Dict[str, Any]:
        """The previous version's figures on the window it last served as stable (the canary
        analysis, at least guard_intervals long), re-measured while its outcomes are unknown."""
        reference = dict(deployment.reference)
        if reference.get("realised") is not None:
            return reference
        end = reference.get("end") or deployment.promoted_at
        # At least guard_intervals intervals: a canary promoted by hand early had a short window.
        start = end - int(self.settings.guard_intervals) * self._interval()
        if reference.get("start") is not None:
            start = min(start, reference["start"])
        measured = guard.performance_figures(
            self.observations(model_name, deployment.previous_stable, start, end), thresholds)
        measured.update({"start": start, "end": end, "version": deployment.previous_stable,
                         "validated": reference.get("validated", True)})
        self.deployments.set_reference(deployment.id, measured, self.clock.now())
        return measured

    def _guard_failed(self, model_name: str, config: "RetrainingConfig", deployment: Deployment,
                      check: Dict[str, Any]) -> List[Dict[str, Any]]:
        now = self.clock.now()
        reason = "; ".join(check["reasons"])
        self.deployments.set_guard_verdict(deployment.id, "fail", now)
        if not config.rollback_on_failure:
            self._notify(model_name, "guard", f"v{deployment.version} falls behind: {reason}; "
                         f"rollback_on_failure is off", check, "critical")
            return [{"action": "none", "version": deployment.version,
                     "reason": "rollback_on_failure is off"}]
        previous = deployment.previous_stable
        try:
            entry = _model_entry(model_config.read_model_server_config(
                self.home.models_config_path), model_name)
            target = previous if previous in versions_on_disk(self.home, entry) and \
                previous in known_good_versions(self.home, model_name, self.store) else None
            result = rollback(self.home, model_name, to=target,
                              reason=f"guard: {reason}", store=self.store, clock=self.clock,
                              expected_stable=deployment.version, job_id=deployment.job_id,
                              figures={"guard": check},
                              wait_available=self.wait_available)
        except (PromotionConflict, ValueError) as error:
            self._notify(model_name, "rollback", f"rollback of v{deployment.version} failed: "
                         f"{error}", check, "critical")
            return [{"action": "rollback_failed", "version": deployment.version,
                     "reason": str(error)}]
        self._notify(model_name, "rollback", f"stable v{deployment.version} rolled back to "
                     f"v{result['version']}: {reason}", result, "critical")
        return [{"action": "rollback", "version": deployment.version, "to": result["version"],
                 "reason": reason}]

