"""ETRMExampleGen throughput: end to end (Beam, encoding, writing) against the bare encoder.

    .venv/bin/python -m benchmarks.bench_example_gen --trades 1000000

Baselines measured in the same run on the same records: tfx-bsl's C++ RecordBatch-to-tf.Example
encoder alone, and tf.Examples built in Python. ExampleGen is timed through its executor's Do()
with the DirectRunner in-process and in multi-processing mode (all cores); the span's generation
time, measured separately, is subtracted so the rate covers Beam, encoding and writing.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time


from benchmarks.sections import heading, machine_line, progress, publish, timed_runs  # noqa: E402

PYTHON_BASELINE_ROWS = 100_000


def python_examples(table) -> list:
    """The slow way: one tf.train.Example per row, built field by field in Python."""
    import numpy as np
    import tensorflow as tf

    columns = {name: table[name].to_numpy() for name in table.columns}
    out = []
    for row in range(len(table)):
        feature = {}
        for name, values in columns.items():
            value = values[row]
            if isinstance(value, (np.floating, float)):
                feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=[value]))
            elif isinstance(value, (np.integer, int)):
                feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
            else:
                feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[str(value).encode()]))
        out.append(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trades", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print only, don't touch BENCHMARKS.md")
    args = parser.parse_args(argv)
    machine = machine_line()

    from components.etrm_example_gen import span_data
    from ml.synthetic import spans
    from components.etrm_example_gen.standalone import run_executor

    request = spans.SpanRequest(dataset="trades", span=0, records_per_span=args.trades)
    progress(f"generating {args.trades:,} trades")
    generation_s, _ = timed_runs(lambda: spans.generate_table(request), args.repeats)
    table = spans.generate_table(request)
    batches = list(span_data.table_to_record_batches(table))
    conversion_s, _ = timed_runs(lambda: list(span_data.table_to_record_batches(table)), args.repeats)
    progress(f"tf.Examples built in Python for {min(PYTHON_BASELINE_ROWS, len(table)):,} rows")
    subset = table.iloc[:min(PYTHON_BASELINE_ROWS, len(table))]
    python_s, _ = timed_runs(lambda: python_examples(subset), 1)
    python_rate = len(subset) / python_s

    # Interleaved, one round per repeat: load on a shared machine changes within minutes, so the
    # encoder and ExampleGen are measured side by side rather than one after the other.
    paths = {"in-process": 1, f"multi-processing ({os.cpu_count()} workers)": os.cpu_count() or 2}
    encoder_runs, walls = [], {label: [] for label in paths}
    for round_index in range(args.repeats):
        progress(f"round {round_index + 1}/{args.repeats}: bare encoder")
        encoder_runs.append(timed_runs(lambda: [span_data.encode_record_batch(b) for b in batches], 1)[0])
        for label, workers in paths.items():
            progress(f"round {round_index + 1}/{args.repeats}: ExampleGen Do(), {label}")
            workdir = tempfile.mkdtemp(prefix="bench_example_gen_")
            try:
                started = time.perf_counter()
                run_executor(request, workdir, workers)
                walls[label].append(time.perf_counter() - started)
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
    encoder_s = statistics.median(encoder_runs)
    rates = {}
    for label, runs in walls.items():
        wall = statistics.median(runs)
        rates[label] = (wall, args.trades / max(wall - generation_s, 1e-9), runs)

    encoder_rate = args.trades / encoder_s
    lines = [heading("ETRMExampleGen throughput"), "",
             f"- Command: `.venv/bin/python -m benchmarks.bench_example_gen --trades {args.trades} --repeats {args.repeats}`",
             f"- Machine: {machine}",
             f"- Records: {args.trades:,} trades x {table.shape[1]} columns, one span; medians of {args.repeats} runs",
             f"- Span generation alone (subtracted from ExampleGen's wall time): {generation_s:.2f} s",
             "",
             "| path | wall (s) | examples/s | vs bare encoder |",
             "| --- | ---: | ---: | ---: |",
             f"| bare C++ encoder (tfx-bsl), RecordBatches ready | {encoder_s:.2f} | {encoder_rate:,.0f} | 1.00x |",
             f"| DataFrame -> Arrow conversion | {conversion_s:.2f} | {args.trades / conversion_s:,.0f} | |",
             f"| tf.Example built in Python ({len(subset):,} rows) | {python_s:.2f} | {python_rate:,.0f} | {encoder_rate / python_rate:.1f}x slower |"]
    for label, (wall, rate, _) in rates.items():
        lines.append(f"| ExampleGen Do(), DirectRunner {label}: Beam + encode + write | {wall:.2f} "
                     f"| {rate:,.0f} | {encoder_rate / rate:.2f}x slower |")
    best = max(rate for _, rate, _ in rates.values())
    lines += ["", f"Best ExampleGen rate is **{encoder_rate / best:.2f}x** the bare encoder's time "
              f"(target: within 3x); the Python-built baseline is {encoder_rate / python_rate:.1f}x slower "
              "than the encoder."]
    text = "\n".join(lines)
    publish(text, write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
