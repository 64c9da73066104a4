"""Benchmark: generating the synthetic trades table versus raw numpy sampling.

Generator (timed): a fresh SyntheticETRMDataGenerator(ETRMDataConfig(num_trades=N)) and
generate_trades(), i.e. the price history simulation (2019-2024, every traded series), the
counterparty/trader/book universe, every trade column with its consistency logic (prices from the
series, realised volatility, delivery periods, notionals, ids, timestamps), the risk labels
(high_risk_probability and high_risk) and the pandas DataFrame with Python-string columns.

Baseline (timed in the same run, interleaved): raw numpy sampling of the same number of rows
and columns from the same marginal distributions (category values and frequencies, log-normal
fits of the numeric columns, empirical integer columns, all measured on a 20k-trade sample
before timing), with no consistency logic: categories by inverse-CDF lookup of uniform draws
(what Generator.choice does, minus its argument checks), ids and timestamps as integers, and
the result is a dict of numpy arrays (no DataFrame). Keeping the baseline lean keeps the
ratio honest.

Beside them, generate_complete_dataset() of the same window (every table, the texts and the
metadata), against the trades table alone (target: within 3x), after one untimed warm-up on
WARM_UP_TRADES trades (so one-time imports, e.g. scipy for the metadata's AUC, stay out of
the timing, as the generator's warm-up keeps them out of its own).

Reports the median of several runs of each and their ratio (target: generator within 15x of
the baseline) and appends a section to BENCHMARKS.md at the repository root.
"""
import argparse
import datetime as dt
import gc
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402

from benchmarks.sections import publish  # noqa: E402
from ml.synthetic.generator import (TRADE_COLUMNS, ETRMDataConfig,  # noqa: E402
                                         SyntheticETRMDataGenerator)

TARGET_RATIO = 15.0
COMPLETE_TARGET_RATIO = 3.0
INTEGER_ID_COLUMNS = ("trade_id", "timestamp")
WARM_UP_TRADES = 1_000


def generate(num_trades: int) -> pd.DataFrame:
    """The timed generator path (fresh generator: prices are simulated inside the timing)."""
    return SyntheticETRMDataGenerator(ETRMDataConfig(num_trades=num_trades)).generate_trades()


def generate_complete(num_trades: int) -> dict:
    """Every table, the texts and the metadata (generate_complete_dataset) of the same window."""
    return SyntheticETRMDataGenerator(
        ETRMDataConfig(num_trades=num_trades)).generate_complete_dataset()


def fit_marginals(sample: pd.DataFrame) -> dict:
    """Per-column marginal distribution of a generated sample, for the raw sampling baseline."""
    marginals = {}
    for column in TRADE_COLUMNS:
        values = sample[column]
        if column in INTEGER_ID_COLUMNS:
            marginals[column] = ("integers", None)
        elif values.dtype == object or values.dtype == np.int64:
            counts = values.value_counts(normalize=True)
            cdf = np.cumsum(counts.to_numpy())
            cdf[-1] = 1.0
            marginals[column] = ("choice", (counts.index.to_numpy(), cdf))
        else:
            numbers = values.to_numpy(float)
            positive = numbers > 0
            logs = np.log(numbers[positive])
            marginals[column] = ("lognormal", (logs.mean(), logs.std(), positive.mean()))
    return marginals


def raw_sampling(num_trades: int, marginals: dict, seed: int = 0) -> dict:
    """The baseline: one independent numpy draw per column, no consistency logic."""
    rng = np.random.default_rng(seed)
    columns = {}
    for column, (kind, parameters) in marginals.items():
        if kind == "integers":
            columns[column] = rng.integers(0, 2 ** 62, size=num_trades)
        elif kind == "choice":
            values, cdf = parameters
            columns[column] = values[np.searchsorted(cdf, rng.random(num_trades), side="right")]
        else:
            mean, sigma, positive_share = parameters
            draws = rng.lognormal(mean, sigma, size=num_trades)
            columns[column] = np.where(rng.random(num_trades) < positive_share, draws, 0.0)
    return columns


def _timed(function, *args) -> float:
    gc.collect()
    start = time.perf_counter()
    result = function(*args)
    elapsed = time.perf_counter() - start
    del result
    return elapsed


def run(num_trades: int, repeats: int) -> dict:
    """Interleaved timings (after one untimed warm-up of each) and their medians."""
    marginals = fit_marginals(generate(20_000))
    _timed(generate, num_trades)
    _timed(raw_sampling, num_trades, marginals)
    generator_times, baseline_times = [], []
    for _ in range(repeats):
        generator_times.append(_timed(generate, num_trades))
        baseline_times.append(_timed(raw_sampling, num_trades, marginals))
    _timed(generate_complete, WARM_UP_TRADES)
    complete_times = [_timed(generate_complete, num_trades)
                      for _ in range(max(1, repeats // 2))]
    generator_median = statistics.median(generator_times)
    baseline_median = statistics.median(baseline_times)
    complete_median = statistics.median(complete_times)
    return {"num_trades": num_trades, "repeats": repeats, "generator_times": generator_times,
            "complete_times": complete_times, "complete_median": complete_median,
            "complete_ratio": complete_median / generator_median,
            "baseline_times": baseline_times, "generator_median": generator_median,
            "baseline_median": baseline_median, "ratio": generator_median / baseline_median,
            "columns": len(marginals)}


def markdown_section(result: dict, command: str, load_before: tuple) -> str:
    """The BENCHMARKS.md section for one run."""
    seconds = lambda values: ", ".join(f"{v:.3f}" for v in values)  # noqa: E731
    verdict = "within" if result["ratio"] <= TARGET_RATIO else "OUTSIDE"
    return "\n".join([
        f"## Synthetic trades generation ({dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC)",
        "",
        f"- Command: `{command}`",
        f"- Machine: {os.cpu_count()} CPU cores (shared), load average before the run "
        f"{load_before[0]:.2f} / {load_before[1]:.2f} / {load_before[2]:.2f}; Python "
        f"{platform.python_version()}, numpy {np.__version__}, pandas {pd.__version__}",
        f"- Rows x columns: {result['num_trades']:,} trades x {result['columns']} columns; "
        f"median of {result['repeats']} interleaved runs after one warm-up each (complete "
        f"dataset: median of {len(result['complete_times'])} runs after a "
        f"{WARM_UP_TRADES:,}-trade warm-up)",
        "- Generator: fresh `SyntheticETRMDataGenerator(ETRMDataConfig(num_trades=N))"
        ".generate_trades()`: price history simulation, reference data, every column with its "
        "consistency logic, risk labels, pandas DataFrame with Python-string columns",
        "- Baseline: raw numpy sampling of the same rows and columns from the same marginal "
        "distributions (no consistency logic; categories by inverse-CDF lookup of uniform draws; "
        "ids/timestamps as integers; numpy arrays, no DataFrame)",
        "",
        "| what | median (s) | runs (s) |",
        "| --- | ---: | --- |",
        f"| generator | {result['generator_median']:.3f} | {seconds(result['generator_times'])} |",
        f"| raw numpy baseline | {result['baseline_median']:.3f} | "
        f"{seconds(result['baseline_times'])} |",
        f"| complete dataset (`generate_complete_dataset()`: trades, opening portfolio, "
        f"positions, risk reports, compliance, texts) | {result['complete_median']:.3f} | "
        f"{seconds(result['complete_times'])} |",
        "",
        f"Ratio generator / baseline: **{result['ratio']:.2f}x** ({verdict} the "
        f"{TARGET_RATIO:.0f}x target). Complete dataset / trades table alone: "
        f"**{result['complete_ratio']:.2f}x** ("
        + ("within" if result["complete_ratio"] <= COMPLETE_TARGET_RATIO else "OUTSIDE")
        + f" the {COMPLETE_TARGET_RATIO:.0f}x target).",
        "", ""])


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trades", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-append", action="store_true",
                        help="print only, do not append to BENCHMARKS.md")
    args = parser.parse_args(argv)
    command = ".venv/bin/python -m benchmarks.bench_generator " + " ".join(
        argv if argv is not None else sys.argv[1:])
    load_before = os.getloadavg()
    result = run(args.trades, args.repeats)
    section = markdown_section(result, command.strip(), load_before)
    publish(section, write=not args.no_append)
    return result


if __name__ == "__main__":
    main()
