"""Kubeflow Pipelines V2: a TFX pipeline compiled into the PipelineSpec the KFP client submits.

Every node compiles: the project's resolver strategies become artifact queries
(pipeline/kubeflow_resolvers.py) and the drift result its KFP schema title
(pipeline/kubeflow_types.py). The tasks run the image the Dockerfile builds, where the project
is at IMAGE_PROJECT_DIR and ETRM_HOME is IMAGE_HOME; paths into this checkout are written as
paths into the image.
"""
from __future__ import annotations

import json
import pathlib
import tempfile

from ml.core.repo import REPO_ROOT

IMAGE_PROJECT_DIR = "/opt/etrm"
IMAGE_HOME = "/etrm"


def write_pipeline_spec(tfx_pipeline, output_file: pathlib.Path, image: str,
                        pipeline_root: str) -> pathlib.Path:
    """Compiles with KubeflowV2DagRunner and writes its PipelineSpec (the part
    kfp.Client().create_run_from_pipeline_package loads) with its default pipeline root."""
    from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner as kfp_runner
    from pipeline import kubeflow_resolvers, kubeflow_types

    with tempfile.TemporaryDirectory() as tmp, kubeflow_types.kubeflow_type_titles(), \
            kubeflow_resolvers.as_latest_artifact_resolvers(tfx_pipeline) as compiled:
        kfp_runner.KubeflowV2DagRunner(
            config=kfp_runner.KubeflowV2DagRunnerConfig(default_image=image),
            output_dir=tmp, output_filename="job.json").run(tfx_pipeline)
        job = json.loads((pathlib.Path(tmp) / "job.json").read_text())
    spec = kubeflow_resolvers.apply_queries(job["pipelineSpec"], compiled)
    spec["defaultPipelineRoot"] = pipeline_root
    text = json.dumps(spec, indent=2, sort_keys=True).replace(f"{REPO_ROOT}/", IMAGE_PROJECT_DIR + "/")
    from ml.core.atomic_files import atomic_write_text

    output_file.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(output_file, text)  # a spec half-written by a crash must not be submitted
    return output_file
