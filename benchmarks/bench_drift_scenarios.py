"""Benchmark: does the DriftGate's rule catch each generator drift scenario, and how often does
it raise a false alarm?

As the pipeline uses the gate: the reference is the previous week. For each scenario the
generator produces week 1 (span 1, 20,000 trades) with and without the scenario starting on
the span's first day, and the unchanged week 0 before it. Each trial samples a reference
window from week 0, a window from the unchanged week 1 (no change: false alarms, so the
market's ordinary week-to-week movement counts against the gate) and a window from the
changed week 1 (detection), at 200 and 2000 rows. On the same windows:

- gate, component defaults: components.drift_gate.verdict with DriftThresholds() (the rule of
  ml.monitoring.drift_rule: one Holm correction at family-wise 1% over KS/chi-square,
  Mann-Whitney and Brown-Forsythe per feature and the label-relation tests; PSI beyond its
  sampling allowance above 0.25 or a location/scale effect above 0.3 SD; label correlation
  change above 0.2);
- gate, pipeline defaults: the same with DriftSettings' floors (price and volatility PSI 1.0,
  because they move that much between ordinary weeks);
- naive: scipy ks_2samp per numeric feature, alarm when any p < 0.05, uncorrected;
- TFDV alone: TFDV's drift comparators at their thresholds (Jensen-Shannon > 0.4, L-infinity >
  0.1), which the gate reports but no longer lets block (--no-tfdv skips this column; the
  gate's decision does not depend on it).

False alarms are pooled over every scenario's no-change windows. Appends a section to
BENCHMARKS.md, in place of its previous section.
"""
import argparse
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

from benchmarks.sections import heading, machine_line, publish  # noqa: E402
from components.drift_gate import comparators  # noqa: E402
from ml.monitoring.drift_rule import DriftThresholds  # noqa: E402
from components.drift_gate.verdict import window_verdict  # noqa: E402
from ml.synthetic.spans import SpanRequest, generate_table  # noqa: E402
from models.risk.features import CATEGORICAL_DOMAINS, LABEL_KEY, RAW_FEATURES  # noqa: E402
from pipeline.config import DriftSettings  # noqa: E402

SCENARIOS = {"price_shift": 0.5, "volatility_shock": 1.0, "mix_change": 0.8,
             "new_category": 0.2, "concept_change": 1.0}
SPAN_START = "2024-01-08"
FEATURES = RAW_FEATURES + [LABEL_KEY]
NUMERIC = [name for name in FEATURES if name not in CATEGORICAL_DOMAINS]
SCHEMA_FILE = Path(__file__).resolve().parents[1] / "data" / "schema" / "trades" / "schema.pbtxt"
RULES = {"gate": DriftThresholds(), "gate_pipeline": DriftSettings().gate_thresholds()}
METHODS = list(RULES) + ["naive", "tfdv"]
LABELS = {"gate": "gate (component defaults)", "gate_pipeline": "gate (pipeline defaults)",
          "naive": "naive KS", "tfdv": "TFDV alone"}


def gate_alarms(reference: pd.DataFrame, current: pd.DataFrame) -> dict:
    """The gate's decision under each set of defaults (TFDV rows only add reasons)."""
    return {name: bool(window_verdict(reference, current, limits, LABEL_KEY).flagged)
            for name, limits in RULES.items()}


def tfdv_alarm(reference: pd.DataFrame, current: pd.DataFrame, schema) -> bool:
    """TFDV's drift comparators at the gate's thresholds, on their own."""
    import tensorflow_data_validation as tfdv

    anomalies = tfdv.validate_statistics(
        tfdv.generate_statistics_from_dataframe(current), schema,
        previous_statistics=tfdv.generate_statistics_from_dataframe(reference))
    return any(row["exceeded"]
               for row in comparators.comparator_measurements(anomalies, comparators.DRIFT))


def naive_ks_alarm(reference: pd.DataFrame, current: pd.DataFrame) -> bool:
    return any(stats.ks_2samp(reference[name], current[name]).pvalue < 0.05 for name in NUMERIC)


def alarms(reference, current, schema) -> dict:
    result = gate_alarms(reference, current)
    result["naive"] = naive_ks_alarm(reference, current)
    result["tfdv"] = tfdv_alarm(reference, current, schema) if schema is not None else None
    return result


def tfdv_schema():
    import tensorflow_data_validation as tfdv

    limits = DriftThresholds()
    return comparators.with_comparators(tfdv.load_schema_text(str(SCHEMA_FILE)), FEATURES,
                                        comparators.DRIFT, limits.js_divergence,
                                        limits.linf_distance)


def run(trials: int, window_rows, span_rows: int, seed: int, with_tfdv: bool) -> pd.DataFrame:
    """One row per (scenario or 'no change', window rows) with alarm counts per method."""
    schema = tfdv_schema() if with_tfdv else None
    previous = generate_table(SpanRequest("trades", 0, span_rows, seed=seed))[FEATURES]
    base = generate_table(SpanRequest("trades", 1, span_rows, seed=seed))[FEATURES]
    rng = np.random.default_rng(seed)
    null = {size: {"windows": 0, "seconds": 0.0, **{m: 0 for m in METHODS}}
            for size in window_rows}
    rows = []
    for kind, magnitude in SCENARIOS.items():
        changed = generate_table(SpanRequest("trades", 1, span_rows, seed=seed,
                                             drift_scenarios=f"{kind}@{SPAN_START}:{magnitude}"))[FEATURES]
        for size in window_rows:
            detected = {m: 0 for m in METHODS}
            started = time.perf_counter()
            for _ in range(trials):
                reference = previous.sample(size, random_state=int(rng.integers(2**31)))
                same = base.sample(size, random_state=int(rng.integers(2**31)))
                drifted = changed.sample(size, random_state=int(rng.integers(2**31)))
                for method, alarm in alarms(reference, same, schema).items():
                    null[size][method] += bool(alarm)
                for method, alarm in alarms(reference, drifted, schema).items():
                    detected[method] += bool(alarm)
            seconds = time.perf_counter() - started
            null[size]["windows"] += trials
            null[size]["seconds"] += seconds / 2
            rows.append({"scenario": f"{kind}:{magnitude}", "rows": size, "windows": trials,
                         **{m: detected[m] for m in METHODS},
                         "seconds_per_window": seconds / (2 * trials)})
    for size, counts in null.items():
        rows.append({"scenario": "no change", "rows": size, "windows": counts["windows"],
                     **{m: counts[m] for m in METHODS},
                     "seconds_per_window": counts["seconds"] / counts["windows"]})
    table = pd.DataFrame(rows)
    if not with_tfdv:
        table["tfdv"] = np.nan
    return table


def upper_bound(alarms: int, windows: int, confidence: float = 0.95) -> float:
    """One-sided Clopper-Pearson upper bound of an alarm rate (how large it may still be)."""
    if alarms >= windows:
        return 1.0
    return float(stats.beta.ppf(confidence, alarms + 1, windows - alarms))


def _rate(count, windows) -> str:
    return "not measured" if pd.isna(count) else f"{count / windows:.1%}"


def _floors() -> str:
    return ", ".join(f"{name} to {floor}" for name, floor in DriftSettings().feature_psi_thresholds)


def markdown(command: str, table: pd.DataFrame, span_rows: int, seconds: float) -> str:
    lines = [heading("Drift gate: generator drift scenarios"), "",
             f"- Command: `{command}`", f"- Machine: {machine_line()}",
             f"- Span 1 generated with {span_rows:,} trades with and without each scenario "
             f"(starting {SPAN_START}, the span's first day) and the unchanged span 0 before it; "
             "per trial a reference window from span 0 (the previous week, as the pipeline "
             "compares), a no-change window from the unchanged span 1 and a window from the "
             "changed one. Gate = `components.drift_gate.verdict` (Holm over KS/chi-square, Mann-Whitney "
             "and Brown-Forsythe per feature and label-relation tests at family-wise p < 0.01; "
             "PSI beyond its sampling allowance > 0.25 or location/scale effect > 0.3 SD; label "
             "correlation change > 0.2); pipeline defaults raise the "
             f"PSI floors of {_floors()}. Naive = scipy ks_2samp per numeric feature, "
             "any p < 0.05, uncorrected. TFDV alone = Jensen-Shannon > 0.4 or L-infinity > 0.1 "
             f"(reported by the gate, never blocking alone). Total {seconds:.0f} s", "",
             "| scenario | rows | windows | " + " | ".join(LABELS[m] for m in METHODS)
             + " | s/window |", "| --- | ---: | ---: | " + "---: | " * len(METHODS) + "---: |"]
    ordered = pd.concat([table[table["scenario"] == "no change"],
                         table[table["scenario"] != "no change"]])
    for row in ordered.itertuples():
        rates = " | ".join(_rate(getattr(row, m), row.windows) for m in METHODS)
        lines.append(f"| {row.scenario} | {row.rows} | {row.windows} | {rates} | "
                     f"{row.seconds_per_window:.2f} |")
    lines.append("")
    lines.append("Rows 'no change' are false alarms, the others detection rates.")
    for row in table[table["scenario"] == "no change"].itertuples():
        bounds = ", ".join(f"{LABELS[m]} {getattr(row, m)}/{row.windows} (95% upper bound "
                           f"{upper_bound(getattr(row, m), row.windows):.1%})" for m in RULES)
        lines.append(f"False alarms at {row.rows} rows: {bounds} (target <= 1%).")
    largest = table[(table["rows"] == max(table["rows"])) & (table["scenario"] != "no change")]
    for method in RULES:
        missed = largest[largest[method] < largest["windows"]]
        lines.append(f"Every scenario detected at {max(table['rows'])} rows, {LABELS[method]}: "
                     + ("met." if missed.empty else "missed for " + ", ".join(
                         f"{r.scenario} ({r[method] / r.windows:.0%})"
                         for _, r in missed.iterrows()) + "."))
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--span-rows", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--no-tfdv", action="store_true",
                        help="skip the TFDV-alone column (the slowest part)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    table = run(args.trials, (200, 2000), args.span_rows, args.seed, not args.no_tfdv)
    command = ".venv/bin/python benchmarks/bench_drift_scenarios.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    publish(markdown(command.strip(), table, args.span_rows, time.perf_counter() - started),
            write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
