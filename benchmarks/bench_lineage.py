"""Lineage of a served version: p95 time of `etrm lineage`'s full lineage on a home's ML
Metadata, against the naive walk (one ML Metadata call per node) and ML Metadata's own
get_lineage_subgraph, measured in the same run.

ML Metadata is the home's (SQLite) or `--metadata mysql://...` (MariaDB/MySQL, the password
from $ETRM_METADATA_PASSWORD or $ETRM_METADATA_PASSWORD_FILE), read only. `--build-runs N`
first writes a hand-built store of N pipeline runs into an empty target
(tests/lineage_fixtures.StoreBuilder: the types, properties and events TFX and the retraining
jobs leave), one ingest run per span and, from the third span on, a training run on the last
three spans warm-started from the version before: 26 spans make 50 runs.

The naive walk follows the same rules as ml.core.lineage.walk and must reach the same nodes
(checked before timing). get_lineage_subgraph (upstream from the push) is timed for
reference: it cannot stop at the warm-start parent or reach the data checks, so its node set
differs and the section says by how much.

    python benchmarks/bench_lineage.py --home /path/to/home [--metadata URL] [--build-runs 50]
        [--version N] [--repeats 50] [--no-append]
"""
from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable, List, Set, Tuple

from benchmarks.sections import heading, machine_line, progress, publish


def p95(samples: List[float]) -> float:
    return statistics.quantiles(samples, n=20, method="inclusive")[-1] if len(samples) > 1 else samples[0]


def timed(function: Callable[[], object], repeats: int) -> List[float]:
    function()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        samples.append(time.perf_counter() - started)
    return samples


def naive_walk(store, start_id: int) -> Tuple[Set[int], Set[int], int]:
    """ml.core.lineage.walk's rules, one call per node: artifact ids, execution ids, calls."""
    from ml.core.lineage import (CONSUMED, DATA_CHECKS, NOT_WALKED_INPUTS, PRODUCED, event_key,
                                 short_type)

    calls, artifacts, executions, rejected = 1, {start_id}, set(), set()
    store.get_artifacts_by_id([start_id])
    pending = [start_id]
    walked = set()
    while pending:
        artifact_id = pending.pop()
        if artifact_id in walked:
            continue
        walked.add(artifact_id)
        calls += 1
        for event in store.get_events_by_artifact_ids([artifact_id]):
            execution_id = event.execution_id
            produced = event.type in PRODUCED
            if execution_id in executions or (execution_id in rejected and not produced):
                continue
            if not (produced or (event.type in CONSUMED
                                 and event_key(event) not in NOT_WALKED_INPUTS)):
                continue
            calls += 1
            [execution] = store.get_executions_by_id([execution_id])
            if not (produced or short_type(execution) in DATA_CHECKS):
                rejected.add(execution_id)
                continue
            executions.add(execution_id)
            calls += 1
            for edge in store.get_events_by_execution_ids([execution_id]):
                if edge.type not in PRODUCED + CONSUMED:
                    continue
                if edge.artifact_id not in artifacts:
                    calls += 1
                    store.get_artifacts_by_id([edge.artifact_id])
                    artifacts.add(edge.artifact_id)
                if edge.type in CONSUMED and event_key(edge) in NOT_WALKED_INPUTS:
                    continue
                pending.append(edge.artifact_id)
    return artifacts, executions, calls


class CountingStore:
    """Counts the ML Metadata calls made through it."""

    def __init__(self, store):
        self.store, self.calls = store, 0

    def __getattr__(self, name):
        method = getattr(self.store, name)

        def counted(*args, **kwargs):
            self.calls += 1
            return method(*args, **kwargs)
        return counted


def subgraph(store, start_id: int):
    from ml_metadata.proto import metadata_store_pb2

    options = metadata_store_pb2.LineageSubgraphQueryOptions()
    options.starting_artifacts.filter_query = f"id = {start_id}"
    options.max_num_hops = 100
    options.direction = metadata_store_pb2.LineageSubgraphQueryOptions.UPSTREAM
    return store.get_lineage_subgraph(options)


def build_store(home, runs: int) -> None:
    """`runs` pipeline runs (at least 4) written into the home's empty ML Metadata."""
    from ml.core import metadata
    from tests.lineage_fixtures import MODEL, StoreBuilder

    if metadata.has_store(home):
        from ml.lifecycle.run_history import pipeline_runs

        if pipeline_runs(metadata.store_for(home)):
            raise SystemExit(f"error: --build-runs needs an empty store; "
                             f"{home.metadata.describe()} already holds pipeline runs")
    home.root.mkdir(parents=True, exist_ok=True)
    builder = StoreBuilder(home.root, metadata.connection_for(home))
    ingested, previous, stable, version, span = {}, None, None, 0, 0
    while builder.runs < runs:
        span += 1
        previous = ingested[span] = builder.ingest(span, previous)
        if span >= 3 and builder.runs < runs:
            version += 1
            window = [ingested[s]["examples"] for s in range(span - 2, span + 1)]
            stable = builder.train(window, stable, version, f"{MODEL}@span{span}")["model"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", required=True, help="project home with ML Metadata (read only)")
    parser.add_argument("--metadata", metavar="URL", help="ML Metadata other than the home's "
                        "SQLite, e.g. mysql://etrm@127.0.0.1:3306/etrm_bench (as `etrm --metadata`)")
    parser.add_argument("--build-runs", type=int, metavar="N",
                        help="first write a hand-built store of N pipeline runs (empty target)")
    parser.add_argument("--model", default="etrm_risk_model")
    parser.add_argument("--version", type=int, help="pushed version (default: the newest)")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--no-append", action="store_true", help="do not write BENCHMARKS.md")
    args = parser.parse_args(argv)

    from ml.cli.home_args import home_of
    from ml.core import lineage, metadata
    from ml.lifecycle.run_history import pipeline_runs

    machine = machine_line()
    home = home_of(args)
    if args.build_runs is not None and args.build_runs < 4:
        raise SystemExit(f"error: --build-runs must be at least 4, got {args.build_runs}")
    try:
        if args.build_runs is not None:
            progress(f"writing {args.build_runs} pipeline runs into {home.metadata.describe()}")
            build_store(home, args.build_runs)
        store = metadata.existing_store(home)
    except (LookupError, metadata.StoreUnavailable) as exc:
        raise SystemExit(f"error: {exc}") from None
    backend = "SQLite" if home.metadata.is_sqlite else "MySQL/MariaDB"
    runs = len(pipeline_runs(store))
    pushes = metadata.pushed_models(store, args.model)
    if not pushes:
        raise SystemExit(f"error: {args.model} has no pushed version in {home.metadata.describe()}")
    version = args.version or int(pushes[-1].custom_properties["pushed_version"].string_value)
    pushed = lineage.find_push(store, args.model, version)
    progress(f"{runs} pipeline runs; lineage of {args.model} v{version} (PushedModel #{pushed.id})")

    graph = lineage.walk(store, [pushed.id])
    naive_artifacts, naive_executions, naive_calls = naive_walk(store, pushed.id)
    if (naive_artifacts, naive_executions) != (set(graph.artifacts), set(graph.executions)):
        raise SystemExit("error: the naive walk reached other nodes than ml.core.lineage.walk")
    nodes = len(graph.artifacts) + len(graph.executions)
    whole = subgraph(store, pushed.id)
    sub_nodes = len(whole.artifacts) + len(whole.executions)

    counting = CountingStore(store)
    lineage.describe_push(counting, args.model, version)
    progress(f"timing {args.repeats} repeats of each")
    full = timed(lambda: lineage.describe_push(store, args.model, version), args.repeats)
    batched = timed(lambda: lineage.walk(store, [pushed.id]), args.repeats)
    naive = timed(lambda: naive_walk(store, pushed.id), args.repeats)
    sub = timed(lambda: subgraph(store, pushed.id), args.repeats)

    def row(name, samples, calls, node_count):
        return (f"| {name} | {calls} | {node_count} | {statistics.median(samples) * 1000:.1f} | "
                f"{p95(samples) * 1000:.1f} |")

    options = (f" --metadata {args.metadata}" if args.metadata else "") + (
        f" --build-runs {args.build_runs}" if args.build_runs is not None else "")
    enough = "" if runs >= 50 else (f" **Fewer than the 50 runs asked for**: the home holds "
                                    f"{runs}; figures are reported anyway.")
    text = "\n".join([
        heading(f"Lineage of a served version, ML Metadata on {backend}"),
        "",
        f"`python benchmarks/bench_lineage.py --home {home.root}{options} --version {version} "
        f"--repeats {args.repeats}{' --no-append' if args.no_append else ''}`",
        "",
        f"{machine}. ML Metadata on {backend} ({home.metadata.describe()}), read only, {runs} "
        f"pipeline runs ({len(pushes)} pushed versions of {args.model}"
        f"{', a hand-built store' if args.build_runs else ''}); lineage of v{version}.{enough}"
        + ("" if home.metadata.is_sqlite else
           " The password comes from $ETRM_METADATA_PASSWORD(_FILE); `eval \"$(python "
           "scripts/mariadb_server.py start DATADIR)\"` starts a throwaway MariaDB on 127.0.0.1 "
           "and exports both."),
        "",
        "| method | ML Metadata calls | nodes reached | median ms | p95 ms |",
        "| --- | ---: | ---: | ---: | ---: |",
        row("full lineage (`etrm lineage`: batched walk, metrics read, structure built)", full,
            counting.calls, nodes),
        row("batched walk alone (ml.core.lineage.walk)", batched, graph.calls, nodes),
        row("naive walk, one call per node (same nodes)", naive, naive_calls, nodes),
        row("get_lineage_subgraph upstream from the push (other nodes, see below)", sub, 1, sub_nodes),
        "",
        f"The batched walk is {statistics.median(naive) / statistics.median(batched):.1f}x faster "
        f"than the naive one at the median ({p95(naive) / p95(batched):.1f}x at p95); the rest "
        f"of a full lineage (about {(statistics.median(full) - statistics.median(batched)) * 1000:.0f} ms "
        f"at the median: the evaluator's metrics file, the structure) costs the same whichever "
        f"walk found the nodes. "
        f"get_lineage_subgraph works in this ML Metadata build, but upstream from the push it "
        f"reaches {sub_nodes} nodes against the walk's {nodes}: it follows the warm-start parent "
        f"into every earlier version's lineage and resolver executions, and never reaches the "
        f"data checks (statistics, ExampleValidator, ValidationGate, drift), which are "
        f"downstream of the Examples.",
    ])
    publish(text, write=not args.no_append)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
