"""Beam pipeline arguments for the DirectRunner, shared by pipeline runs and standalone executors."""
from __future__ import annotations

import os
from typing import List

# Below this many records per span, DirectRunner's multi-processing mode loses: each worker
# process re-imports TensorFlow (tens of seconds) before it does any work (see BENCHMARKS.md).
MULTI_PROCESSING_MIN_RECORDS = 250_000


def default_beam_workers(records_per_span: int) -> int:
    """All cores for big spans, in-process otherwise."""
    return (os.cpu_count() or 2) if records_per_span >= MULTI_PROCESSING_MIN_RECORDS else 1


def beam_args(workers: int) -> List[str]:
    """DirectRunner on all cores (multi-processing) or in-process for one worker."""
    if workers <= 1:
        return ["--direct_running_mode=in_memory", "--direct_num_workers=1"]
    return ["--direct_running_mode=multi_processing", f"--direct_num_workers={workers}"]
