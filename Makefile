# Every target bootstraps .venv first, so `make run` and `make test` work on a fresh machine.
export TF_USE_LEGACY_KERAS := 1
export TF_CPP_MIN_LOG_LEVEL := 2
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: setup run test test-unit test-e2e bench drift-baselines lock clean kubeflow-spec

setup:
	@bash scripts/bootstrap.sh

run: setup
	$(PY) run_local.py $(RUN_ARGS)

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

test-unit: setup
	$(PY) -m pytest -m "not e2e" $(PYTEST_ARGS)

test-e2e: setup
	$(PY) -m pytest -m e2e $(PYTEST_ARGS)

bench: setup
	$(PY) -m benchmarks.run_all $(BENCH_ARGS)

# Alibi Detect and Evidently for benchmarks/bench_drift.py, in .venv-drift-baselines (they do not
# install beside TFX); the benchmark reports them as not measured without it.
drift-baselines: setup
	bash scripts/drift_baselines_venv.sh

# The Kubeflow Pipelines V2 spec: make kubeflow-spec KFP_ARGS="--model risk --pipeline-root gs://bucket/etrm"
kubeflow-spec: setup
	$(PY) scripts/compile_kubeflow.py $(KFP_ARGS)

lock:
	$(VENV)/bin/uv pip compile --python-version 3.10 --no-header requirements/requirements.in -o requirements/lock.txt

clean:
	rm -rf .etrm build *.egg-info
