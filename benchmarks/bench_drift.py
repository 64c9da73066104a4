"""Benchmark: drift detection quality and speed.

Quality: synthetic windows drawn from scenarios (no change; one feature shifted by 0.2, 0.3,
0.4, 0.5 or 0.6 of its spread; one feature's spread grown by half; every feature shifted by a
tenth of its spread; two features becoming correlated, rho = 0.5, marginals unchanged), at 200
and 2000 rows against a reference (5,000 rows by default) of 5 independent standard normal
features. For each window the service at its default thresholds
(ModelMonitoringService.detect_drift: any alert counts), the same drift rule at the drift
gate's p 0.01 (compare_tables), and the naive baseline (scipy.stats.ks_2samp on every feature,
alarm when any p < 0.05, uncorrected) judge the same data. Rates: false alarms on the no-change scenario, detection on
the others. The same windows are saved and judged by Alibi Detect's KSDrift and Evidently's
DataDriftPreset at their defaults, in .venv-drift-baselines (benchmarks/drift_baselines.py);
without that virtualenv their columns say why they were not measured.

Speed (median of 3 runs for ours, one scipy run): the per-feature table (KS statistic and p-value, PSI, JS, chi-square-ready bins,
corrected p-values) on 1,000,000 reference rows and 1,000,000 current rows x 50 features,
against a loop of scipy.stats.ks_2samp over the same columns (contiguous copies, so scipy is
not slowed by strided access). Cold includes building the reference profile (sorting the
reference); warm is the service's steady state, where the profile is built once at
registration. --speed-only re-measures just this part and replaces it in the published
section, keeping the quality table (which takes most of the run time) as it was measured.

The scenario runner (evaluate) takes any mapping of name -> Scenario so other drift scenarios
(e.g. generator-based ones) can reuse it. Writes its section to BENCHMARKS.md in place of the
previous one.
"""
import argparse
import datetime as dt
import gc
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Mapping, Optional, Sequence

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

from benchmarks.baseline_client import WindowArchive, baseline_alarms  # noqa: E402
from benchmarks.sections import BENCHMARKS_MD, publish, section_title  # noqa: E402
from ml.drift_detection_service import ModelMonitoringService  # noqa: E402
from ml.monitoring.feature_drift import (ReferenceProfile, compare_tables,  # noqa: E402
                                         compare_to_profile)
from ml.monitoring.tables import as_feature_table  # noqa: E402

FEATURES = 5
TARGET_FALSE_ALARMS = 0.01
TARGET_CORRELATION_DETECTION = 0.80
TARGET_SPEEDUP = 5.0
GATE_P_VALUE = 0.01
SECTION_TITLE = "Drift detection: alarm rates and speed"
LOCATION_SHIFTS = (0.2, 0.3, 0.4, 0.5, 0.6)
PER_FEATURE_SCENARIOS = tuple(f"one feature +{shift} sd" for shift in LOCATION_SHIFTS) + (
    "one feature spread x1.5", "all features +0.1 sd")
Sampler = Callable[[np.random.Generator, int], np.ndarray]


@dataclass(frozen=True)
class Scenario:
    """How to draw a reference and a current window; drifted says which rate it measures."""

    description: str
    reference: Sampler
    current: Sampler
    drifted: bool


def _normal(rng: np.random.Generator, rows: int) -> np.ndarray:
    return rng.normal(size=(rows, FEATURES))


def _changed(change: Callable[[np.ndarray], None]) -> Sampler:
    def sample(rng: np.random.Generator, rows: int) -> np.ndarray:
        data = _normal(rng, rows)
        change(data)
        return data
    return sample


def _correlated(rho: float) -> Sampler:
    covariance = np.eye(FEATURES)
    covariance[0, 1] = covariance[1, 0] = rho
    return lambda rng, rows: rng.multivariate_normal(np.zeros(FEATURES), covariance, size=rows)


def _shift_first(shift: float) -> Callable[[np.ndarray], None]:
    def change(data):
        data[:, 0] += shift
    return change


def _widen_first(data):
    data[:, 0] *= 1.5


def _shift_all(data):
    data += 0.1


SCENARIOS: Dict[str, Scenario] = {
    "no change": Scenario("same distribution", _normal, _normal, False),
    **{f"one feature +{shift} sd": Scenario(f"feature 0 mean + {shift} sd", _normal,
                                             _changed(_shift_first(shift)), True)
       for shift in LOCATION_SHIFTS},
    "one feature spread x1.5": Scenario("feature 0 sd x 1.5", _normal, _changed(_widen_first), True),
    "all features +0.1 sd": Scenario("every mean + 0.1 sd", _normal, _changed(_shift_all), True),
    "correlation appears": Scenario("corr(f0, f1) 0 -> 0.5, marginals unchanged", _normal,
                                    _correlated(0.5), True),
}


def naive_ks_alarm(reference: np.ndarray, current: np.ndarray, alpha: float = 0.05) -> bool:
    """Baseline: scipy KS on every feature, alarm if any p < alpha, no correction."""
    return any(stats.ks_2samp(reference[:, j], current[:, j]).pvalue < alpha
               for j in range(reference.shape[1]))


def evaluate(scenarios: Mapping[str, Scenario], window_rows: Sequence[int],
             trials: Callable[[Scenario, int], int], reference_rows: int,
             seed: int = 0, archive: Optional[WindowArchive] = None) -> pd.DataFrame:
    """Alarm rates of the service (defaults) and of the naive baseline on the same windows.

    trials(scenario, rows) says how many windows to draw for each scenario and size; with an
    archive, every window is kept there for the third-party baselines (column 'group').
    """
    logging.getLogger("ml.monitoring.alerts").setLevel(logging.CRITICAL)
    rows = []
    with tempfile.TemporaryDirectory() as state:
        service = ModelMonitoringService(Path(state))
        for name, scenario in scenarios.items():
            for window in window_rows:
                rng = np.random.default_rng([seed, window, len(rows)])
                service_alarms = gate_alarms = naive_alarms = 0
                count = trials(scenario, window)
                kept = (np.empty((count, reference_rows, FEATURES)),
                        np.empty((count, window, FEATURES))) if archive else None
                started = time.perf_counter()
                for trial in range(count):
                    reference = scenario.reference(rng, reference_rows)
                    current = scenario.current(rng, window)
                    service.register_model("bench", reference)
                    service_alarms += bool(service.detect_drift("bench", current))
                    gate_alarms += bool(compare_tables(
                        reference, current, {"ks_p_value": GATE_P_VALUE})["drifted"].any())
                    naive_alarms += naive_ks_alarm(reference, current)
                    if kept:
                        kept[0][trial], kept[1][trial] = reference, current
                elapsed = time.perf_counter() - started
                rows.append({"scenario": name, "rows": window, "trials": count,
                             "drifted": scenario.drifted, "service_rate": service_alarms / count,
                             "gate_rule_rate": gate_alarms / count,
                             "naive_ks_rate": naive_alarms / count,
                             "seconds_per_window": elapsed / count,
                             "group": archive.add(name, window, *kept) if archive else ""})
    return pd.DataFrame(rows)


def speed_comparison(rows: int, features: int, repeats: int = 3, seed: int = 0) -> dict:
    """Seconds for a scipy ks_2samp loop (one run: it takes long and varies little) and for
    the per-feature table, cold and warm (median of repeats: the first run also pays for
    the operating system mapping fresh memory)."""
    rng = np.random.default_rng(seed)
    reference = rng.normal(size=(rows, features))
    current = rng.normal(0.001, 1.0, size=(rows, features))
    reference_columns = [np.ascontiguousarray(reference[:, j]) for j in range(features)]
    current_columns = [np.ascontiguousarray(current[:, j]) for j in range(features)]
    gc.collect()
    started = time.perf_counter()
    scipy_results = [stats.ks_2samp(r, c) for r, c in zip(reference_columns, current_columns)]
    scipy_seconds = time.perf_counter() - started
    del reference_columns, current_columns
    cold_runs, warm_runs = [], []
    for _ in range(repeats):
        gc.collect()
        started = time.perf_counter()
        table = compare_tables(reference, current)
        cold_runs.append(time.perf_counter() - started)
    profile = ReferenceProfile.build(as_feature_table(reference, "reference"))
    current_table = as_feature_table(current, "current", like=profile.table)
    for _ in range(repeats):
        gc.collect()
        started = time.perf_counter()
        compare_to_profile(profile, current_table)
        warm_runs.append(time.perf_counter() - started)
    worst = max(abs(row.statistic - expected.statistic) for row, expected
                in zip(table.itertuples(), scipy_results))
    worst_p = max(abs(row.p_value - expected.pvalue) for row, expected
                  in zip(table.itertuples(), scipy_results))
    return {"scipy_seconds": scipy_seconds, "cold_seconds": statistics.median(cold_runs),
            "warm_seconds": statistics.median(warm_runs), "cold_runs": cold_runs,
            "warm_runs": warm_runs, "max_statistic_difference": worst,
            "max_p_value_difference": worst_p}


def with_baselines(quality: pd.DataFrame, results: Optional[dict]) -> pd.DataFrame:
    """The quality table with Alibi Detect's and Evidently's alarm rates (NaN if not measured)."""
    quality = quality.copy()
    by_group = {group["file"]: group for group in (results or {}).get("groups", [])}
    for column, key in (("alibi_rate", "alibi"), ("evidently_rate", "evidently_dataset"),
                        ("evidently_any_rate", "evidently_any_column")):
        quality[column] = [by_group[g][key] / by_group[g]["windows"] if g in by_group else np.nan
                           for g in quality["group"]]
    return quality


def _rate(value: float) -> str:
    return "not measured" if pd.isna(value) else f"{value:.1%}"


def baseline_lines(quality: pd.DataFrame, results: Optional[dict], note: str) -> list:
    """What the third-party baselines were and whether the service meets its target on them."""
    if results is None:
        return [f"Alibi Detect and Evidently: {note}."]
    versions = results["versions"]
    checks = sum(g["preset_checks"] for g in results["groups"])
    mismatches = sum(g["preset_mismatches"] for g in results["groups"])
    lines = [f"Alibi Detect {versions['alibi-detect']} KSDrift (p_val 0.05, Bonferroni over the "
             f"features) and Evidently {versions['evidently']} DataDriftPreset (dataset drift when "
             ">= 50% of columns drift; 'any column' for the least strict reading) ran in "
             ".venv-drift-baselines on the same windows (saved as .npz, results back as JSON); "
             f"the full preset agreed with its DriftedColumnsCount metric on {checks - mismatches} "
             f"of {checks} checked windows."]
    null = quality[~quality["drifted"]]
    within_budget = bool((null["service_rate"] <= TARGET_FALSE_ALARMS).all())
    short = [f"{row.scenario} at {row.rows} rows ({row.service_rate:.1%} < {row.alibi_rate:.1%})"
             for row in quality[quality["scenario"].isin(PER_FEATURE_SCENARIOS)].itertuples()
             if row.service_rate < row.alibi_rate]
    verdict = "met" if within_budget and not short else "missed"
    detail = ("" if not short else "; short on " + ", ".join(short)) + (
        "" if within_budget else "; service false alarms above 1%")
    lines.append(f"Target (service detection at its <= 1% false-alarm rate at least Alibi "
                 f"Detect's at its 5% budget on every per-feature scenario): **{verdict}**{detail}.")
    return lines


def markdown_section(command: str, load: tuple, quality: pd.DataFrame, speed: dict,
                     reference_rows: int, speed_rows: int, speed_features: int,
                     total_seconds: float, baselines: Optional[dict] = None,
                     baseline_note: str = "") -> str:
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    quality = with_baselines(quality, baselines)
    lines = [f"## {SECTION_TITLE} ({now})", "",
             f"- Command: `{command}`",
             f"- Machine: {os.cpu_count()} CPU cores (shared), load average before the run "
             f"{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}; Python {platform.python_version()}, "
             f"numpy {np.__version__}, pandas {pd.__version__}",
             f"- Quality: reference {reference_rows:,} rows x {FEATURES} independent N(0, 1) "
             "features, a fresh reference and window per trial; service = "
             "`ModelMonitoringService().detect_drift` at its defaults (any alert counts; rule "
             "`ml.monitoring.drift_rule`: Holm over KS, Mann-Whitney and Brown-Forsythe per "
             "feature at family-wise p < 0.05, PSI net of sampling > 0.25 or location/scale "
             f"effect > 0.3 SD); rule p 0.01 = the same rule at the drift gate's p {GATE_P_VALUE}; naive = "
             "`scipy.stats.ks_2samp` per feature, alarm if any p < 0.05, no correction; Alibi "
             "Detect and Evidently at their defaults; all on the same windows",
             "", "| scenario | rows | trials | service | rule p 0.01 | naive KS | Alibi Detect KSDrift | "
             "Evidently (dataset drift) | Evidently (any column) | s/window (all ours) |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for row in quality.itertuples():
        lines.append(f"| {row.scenario} | {row.rows} | {row.trials} | {row.service_rate:.1%} | "
                     f"{row.gate_rule_rate:.1%} | "
                     f"{row.naive_ks_rate:.1%} | {_rate(row.alibi_rate)} | "
                     f"{_rate(row.evidently_rate)} | {_rate(row.evidently_any_rate)} | "
                     f"{row.seconds_per_window:.3f} |")
    null = quality[~quality["drifted"]]
    correlation = quality[(quality["scenario"] == "correlation appears") & (quality["rows"] == 200)]
    lines += ["", "Rows 'no change' are false-alarm rates, the others detection rates.",
              f"False alarms (no change): service {', '.join(f'{r:.1%}' for r in null['service_rate'])}"
              f", rule p 0.01 {', '.join(f'{r:.1%}' for r in null['gate_rule_rate'])}"
              f" at {', '.join(str(r) for r in null['rows'])} rows (target <= {TARGET_FALSE_ALARMS:.0%}); "
              f"naive KS {', '.join(f'{r:.1%}' for r in null['naive_ks_rate'])}; Alibi Detect "
              f"{', '.join(_rate(r) for r in null['alibi_rate'])}.",
              f"Correlation appearing at 200 rows: service {correlation['service_rate'].iloc[0]:.1%} "
              f"(target >= {TARGET_CORRELATION_DETECTION:.0%}), naive KS "
              f"{correlation['naive_ks_rate'].iloc[0]:.1%}.",
              *baseline_lines(quality, baselines, baseline_note), "",
              *speed_lines(speed, speed_rows, speed_features), f"Total benchmark time: {total_seconds:.0f} s."]
    return "\n".join(lines) + "\n"


SPEED_START = "Speed, "


def speed_lines(speed: dict, speed_rows: int, speed_features: int) -> list:
    warm_ratio = speed["scipy_seconds"] / speed["warm_seconds"]
    cold_ratio = speed["scipy_seconds"] / speed["cold_seconds"]
    return [f"{SPEED_START}{speed_rows:,} reference rows and {speed_rows:,} current rows x "
            f"{speed_features} features:", "", "| what | seconds (runs) |", "| --- | ---: |",
            f"| scipy.stats.ks_2samp loop over the columns | {speed['scipy_seconds']:.2f} |",
            f"| per-feature table, cold (reference profile built inside), median | "
            f"{speed['cold_seconds']:.2f} ({', '.join(f'{r:.2f}' for r in speed['cold_runs'])}) |",
            f"| per-feature table, warm (profile built at registration), median | "
            f"{speed['warm_seconds']:.2f} ({', '.join(f'{r:.2f}' for r in speed['warm_runs'])}) |",
            "", f"Speed-up over the scipy loop: **{cold_ratio:.1f}x cold, {warm_ratio:.1f}x warm** "
            f"(target >= {TARGET_SPEEDUP:.0f}x); the table also holds PSI, JS and corrected "
            f"p-values. Largest difference from scipy: KS statistic "
            f"{speed['max_statistic_difference']:.1e}, p-value {speed['max_p_value_difference']:.1e}"
            " (from effective n = 100,000 on, p-values use the limiting Kolmogorov distribution "
            "where scipy evaluates its finite-n kstwo)."]


def with_new_speed(section: str, command: str, load: tuple, speed: dict, speed_rows: int,
                   speed_features: int, total_seconds: float) -> str:
    """The published section with only its speed part replaced (--speed-only): the quality
    table and its command stay as measured, and the speed part names its own run."""
    head, found, _ = section.partition("\n" + SPEED_START)
    if not found:
        raise SystemExit("BENCHMARKS.md has no drift speed part to replace; run without --speed-only")
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = speed_lines(speed, speed_rows, speed_features)
    lines.insert(1, f"(speed part re-measured {now} with `{command}`; load average before it "
                    f"{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}; {total_seconds:.0f} s)")
    return head.rstrip("\n") + "\n\n" + "\n".join(lines) + "\n"


def published_section(path=BENCHMARKS_MD) -> str:
    """The drift section as BENCHMARKS.md has it now."""
    for part in path.read_text().split("\n## ")[1:]:
        if section_title("## " + part) == SECTION_TITLE:
            return "## " + part.rstrip() + "\n"
    raise SystemExit("BENCHMARKS.md has no drift section; run without --speed-only")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--null-trials-200", type=int, default=400,
                        help="no-change windows of 200 rows (false alarms need many)")
    parser.add_argument("--null-trials-2000", type=int, default=100)
    parser.add_argument("--trials-200", type=int, default=100, help="windows per drift scenario")
    parser.add_argument("--trials-2000", type=int, default=30)
    parser.add_argument("--reference-rows", type=int, default=5000)
    parser.add_argument("--speed-rows", type=int, default=1_000_000)
    parser.add_argument("--speed-features", type=int, default=50)
    parser.add_argument("--speed-repeats", type=int, default=3)
    parser.add_argument("--speed-only", action="store_true",
                        help="measure only the speed part and replace it in the published "
                             "section, keeping its quality table")
    parser.add_argument("--no-write", action="store_true", help="print, do not write BENCHMARKS.md")
    args = parser.parse_args(argv)
    load = os.getloadavg()
    started = time.perf_counter()
    command = ".venv/bin/python -m benchmarks.bench_drift" + (
        " " + " ".join(argv if argv is not None else sys.argv[1:])).rstrip()
    if args.speed_only:
        existing = published_section()
        speed = speed_comparison(args.speed_rows, args.speed_features, args.speed_repeats)
        print(speed, flush=True)
        publish(with_new_speed(existing, command, load, speed, args.speed_rows,
                               args.speed_features, time.perf_counter() - started),
                write=not args.no_write)
        return 0
    counts = {(False, 200): args.null_trials_200, (False, 2000): args.null_trials_2000,
              (True, 200): args.trials_200, (True, 2000): args.trials_2000}
    archive = WindowArchive()
    try:
        quality = evaluate(SCENARIOS, [200, 2000],
                           lambda scenario, rows: counts[(scenario.drifted, rows)],
                           args.reference_rows, archive=archive)
        print(quality.to_string(index=False), flush=True)
        baselines, baseline_note = baseline_alarms(archive)
    finally:
        archive.close()
    print(baseline_note or "baselines measured", flush=True)
    speed = speed_comparison(args.speed_rows, args.speed_features, args.speed_repeats)
    print(speed, flush=True)
    section = markdown_section(command, load, quality, speed, args.reference_rows,
                               args.speed_rows, args.speed_features,
                               time.perf_counter() - started, baselines, baseline_note)
    publish(section, write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
