"""Benchmark: does the DriftGate's rule catch each generator drift scenario, and how often does
it raise a false alarm?

For each scenario the generator produces the same week (span 1, 20,000 trades) with and without
the scenario starting on the span's first day. Windows of 200 and 2000 rows are sampled: the
reference from the unchanged span, the current window from the unchanged span (false-alarm
rate) or the changed span (detection rate). The gate's rule (components/drift_gate, default
thresholds: TFDV L-infinity > 0.1 / Jensen-Shannon > 0.4, or PSI > 1.0 with Holm-corrected
KS/chi-square p < 0.05) and the naive baseline (scipy ks_2samp per numeric feature, alarm when
any p < 0.05, uncorrected) judge the same windows. Appends a section to BENCHMARKS.md.
"""
import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

from benchmarks.report import append_section, heading, machine_line  # noqa: E402
from components.drift_gate import comparators  # noqa: E402
from components.drift_gate.findings import GateThresholds, flagged_features  # noqa: E402
from components.etrm_example_gen.span_data import SpanRequest, generate_table  # noqa: E402
from ml.monitoring.feature_drift import compare_tables  # noqa: E402
from models.risk.features import CATEGORICAL_DOMAINS, LABEL_KEY, RAW_FEATURES  # noqa: E402

SCENARIOS = {"price_shift": 0.5, "volatility_shock": 1.0, "mix_change": 0.8,
             "new_category": 0.2, "concept_change": 1.0}
SPAN_START = "2024-01-08"
FEATURES = RAW_FEATURES + [LABEL_KEY]
NUMERIC = [name for name in FEATURES if name not in CATEGORICAL_DOMAINS]
SCHEMA_FILE = Path(__file__).resolve().parents[1] / "data" / "schema" / "trades" / "schema.pbtxt"


def gate_alarm(reference: pd.DataFrame, current: pd.DataFrame, schema, limits) -> bool:
    """The DriftCheck's decision on two windows (TFDV comparators plus PSI/KS)."""
    import tensorflow_data_validation as tfdv

    anomalies = tfdv.validate_statistics(
        tfdv.generate_statistics_from_dataframe(current), schema,
        previous_statistics=tfdv.generate_statistics_from_dataframe(reference))
    rows = comparators.comparator_measurements(anomalies, comparators.DRIFT)
    table = compare_tables(reference, current, limits.feature_thresholds())
    return bool(flagged_features(rows, table, limits))


def naive_ks_alarm(reference: pd.DataFrame, current: pd.DataFrame) -> bool:
    return any(stats.ks_2samp(reference[name], current[name]).pvalue < 0.05 for name in NUMERIC)


def run(trials: int, window_rows, span_rows: int, seed: int) -> pd.DataFrame:
    import tensorflow_data_validation as tfdv

    limits = GateThresholds()
    schema = comparators.with_comparators(tfdv.load_schema_text(str(SCHEMA_FILE)), FEATURES,
                                          comparators.DRIFT, limits.js_divergence,
                                          limits.linf_distance)
    base = generate_table(SpanRequest("trades", 1, span_rows, seed=seed))[FEATURES]
    rng = np.random.default_rng(seed)
    rows = []
    for kind, magnitude in SCENARIOS.items():
        changed = generate_table(SpanRequest("trades", 1, span_rows, seed=seed,
                                             drift_scenarios=f"{kind}@{SPAN_START}:{magnitude}"))[FEATURES]
        for size in window_rows:
            counts = {"gate_detect": 0, "naive_detect": 0, "gate_false": 0, "naive_false": 0}
            started = time.perf_counter()
            for _ in range(trials):
                order = rng.permutation(len(base))
                reference = base.iloc[order[:size]]
                same = base.iloc[order[size:2 * size]]
                drifted = changed.sample(size, random_state=int(rng.integers(2**31)))
                counts["gate_false"] += gate_alarm(reference, same, schema, limits)
                counts["naive_false"] += naive_ks_alarm(reference, same)
                counts["gate_detect"] += gate_alarm(reference, drifted, schema, limits)
                counts["naive_detect"] += naive_ks_alarm(reference, drifted)
            rows.append({"scenario": f"{kind}:{magnitude}", "rows": size, "trials": trials,
                         **{k: v / trials for k, v in counts.items()},
                         "seconds_per_window": (time.perf_counter() - started) / (2 * trials)})
    return pd.DataFrame(rows)


def markdown(command: str, table: pd.DataFrame, span_rows: int, seconds: float) -> str:
    lines = [heading("Drift gate: generator drift scenarios"), "",
             f"- Command: `{command}`", f"- Machine: {machine_line()}",
             f"- Span 1 generated with {span_rows:,} trades with and without each scenario "
             f"(starting {SPAN_START}, the span's first day); windows sampled from them; gate = "
             "DriftCheck's rule at its defaults; naive = scipy ks_2samp per numeric feature, any "
             f"p < 0.05, uncorrected; total {seconds:.0f} s", "",
             "| scenario | rows | trials | gate detection | naive KS detection | gate false alarms "
             "| naive KS false alarms | s/window |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for row in table.itertuples():
        lines.append(f"| {row.scenario} | {row.rows} | {row.trials} | {row.gate_detect:.0%} | "
                     f"{row.naive_detect:.0%} | {row.gate_false:.0%} | {row.naive_false:.0%} | "
                     f"{row.seconds_per_window:.2f} |")
    missed = table[(table["rows"] == max(table["rows"])) & (table["gate_detect"] < 1.0)]
    lines += ["", "Target (every scenario detected at the largest window): " + (
        "met." if missed.empty else "missed for " + ", ".join(missed["scenario"]) + ".")]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--span-rows", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--no-append", action="store_true", help="print only")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    table = run(args.trials, (200, 2000), args.span_rows, args.seed)
    text = markdown("python benchmarks/bench_drift_scenarios.py " + " ".join(argv or sys.argv[1:]),
                    table, args.span_rows, time.perf_counter() - started)
    print(text)
    if not args.no_append:
        append_section(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
