"""Beam pipeline arguments: the DirectRunner by default, any runner's options passed through.

`--beam-arg` options (Dataflow, Flink, Spark: see README "Beam at scale") are appended to the
DirectRunner defaults; once they name another runner, the DirectRunner's own options are left
out so that runner sees only what the user gave."""
from __future__ import annotations

import os
import re
from typing import List, Sequence

from ml.core.repo import REPO_ROOT

# Below this many records per span, DirectRunner's multi-processing mode loses: each worker
# process re-imports TensorFlow (tens of seconds) before it does any work. Measured on two
# cores (BENCHMARKS.md): two workers lose at 20,000-250,000 records (the whole pipeline 10%
# slower at 250,000, where only the Evaluator gains); the per-stage trend passes break-even
# by about 500,000.
MULTI_PROCESSING_MIN_RECORDS = 500_000

# `--name=value` or `--flag`, the only forms Beam's PipelineOptions parses reliably.
_OPTION = re.compile(r"^--[A-Za-z][A-Za-z0-9_]*(=.*)?$")
_RUNNER = re.compile(r"^--runner=(.+)$")
# TFX builds a throwaway source package of itself for the Beam workers before every Beam
# component (3-11 s each on this machine) unless the options name the dependencies. The
# DirectRunner stages nothing, so naming the project's setup.py skips that build and changes
# nothing that runs; other runners get only the user's options, and TFX's package with them.
SETUP_FILE = REPO_ROOT / "setup.py"


def default_beam_workers(records_per_span: int) -> int:
    """All cores for big spans, in-process otherwise."""
    return (os.cpu_count() or 2) if records_per_span >= MULTI_PROCESSING_MIN_RECORDS else 1


def check_beam_options(options: Sequence[str]) -> List[str]:
    """The user's Beam options, refused with the offending one named unless each is
    `--name=value` or `--flag`."""
    for option in options:
        if not isinstance(option, str) or not _OPTION.match(option):
            raise ValueError(f"--beam-arg {option!r} is not a Beam pipeline option: expected "
                             "--name=value or --flag, e.g. --runner=FlinkRunner")
    return list(options)


def beam_runner(options: Sequence[str]) -> str:
    """The runner the options ask for (the last --runner wins, as in Beam); DirectRunner
    when none is named."""
    runners = [match.group(1) for match in map(_RUNNER.match, options) if match]
    return runners[-1] if runners else "DirectRunner"


def beam_args(workers: int, extra: Sequence[str] = ()) -> List[str]:
    """DirectRunner on all cores (multi-processing) or in-process for one worker, then the
    user's options; only the user's options when they choose another runner."""
    extra = check_beam_options(extra)
    if beam_runner(extra) not in ("DirectRunner", "direct"):
        return extra
    if workers <= 1:
        direct = ["--direct_running_mode=in_memory", "--direct_num_workers=1"]
    else:
        direct = ["--direct_running_mode=multi_processing", f"--direct_num_workers={workers}"]
    if SETUP_FILE.is_file():
        direct.append(f"--setup_file={SETUP_FILE}")
    return direct + extra
