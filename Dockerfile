# The image every task of the compiled Kubeflow Pipelines V2 spec runs (pipeline/orchestrators.py
# DEFAULT_IMAGE): the project and its pinned lock on Python 3.10.
#   docker build -t etrm-ml-platform:latest .
FROM python:3.10-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TF_USE_LEGACY_KERAS=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    ETRM_HOME=/etrm \
    PYTHONPATH=/opt/etrm

WORKDIR /opt/etrm

# The lock first, so a code change does not reinstall the dependencies.
COPY requirements/lock.txt requirements/lock.txt
RUN pip install --no-cache-dir "$(grep -E '^uv==' requirements/lock.txt)" \
    && uv pip install --system --no-cache -r requirements/lock.txt

COPY . .
RUN uv pip install --system --no-cache --no-deps -e .

# KubeflowV2DagRunner's container spec sets the command itself
# (python -m tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor --executor_class_path ...);
# the same entry point is the default for `docker run` with those arguments.
ENTRYPOINT ["python", "-m", "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"]
