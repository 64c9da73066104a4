"""The Dockerfile builds the image the Kubeflow spec names: Python 3.10, the pinned lock, the
project, legacy Keras, and the entry point KubeflowV2DagRunner's container spec runs. Docker is
not needed: the file is parsed."""
import pathlib
import re
import shlex
from typing import List, Tuple

ROOT = pathlib.Path(__file__).resolve().parents[1]


def instructions() -> List[Tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            result.append((word.upper(), rest.strip()))
    return result


def values(name: str) -> List[str]:
    return [rest for word, rest in instructions() if word == name]


def env() -> dict:
    pairs = {}
    for rest in values("ENV"):
        for item in shlex.split(rest):
            key, _, value = item.partition("=")
            pairs[key] = value
    return pairs


def test_base_image_is_python_310_slim():
    assert instructions()[0] == ("FROM", "python:3.10-slim")


def test_the_lock_is_installed_before_the_project_is_copied():
    steps = instructions()
    copy_lock = steps.index(("COPY", "requirements/lock.txt requirements/lock.txt"))
    [install] = [i for i, (word, rest) in enumerate(steps)
                 if word == "RUN" and "-r requirements/lock.txt" in rest]
    copy_all = steps.index(("COPY", ". ."))
    assert copy_lock < install < copy_all
    assert "uv pip install --system" in steps[install][1]
    assert any("--no-deps -e ." in rest for word, rest in steps[copy_all:] if word == "RUN")


def test_environment_matches_the_compiled_spec():
    from pipeline.kubeflow import IMAGE_HOME, IMAGE_PROJECT_DIR

    variables = env()
    assert variables["TF_USE_LEGACY_KERAS"] == "1"
    assert variables["ETRM_HOME"] == IMAGE_HOME
    assert variables["PYTHONPATH"] == IMAGE_PROJECT_DIR
    assert values("WORKDIR") == [IMAGE_PROJECT_DIR]


def test_entry_point_is_the_kubeflow_v2_executor_runner():
    [entrypoint] = values("ENTRYPOINT")
    assert entrypoint == ('["python", "-m", '
                          '"tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"]')


def test_documented_tag_is_the_specs_default_image():
    from pipeline.orchestrators import DEFAULT_IMAGE

    assert f"docker build -t {DEFAULT_IMAGE} ." in (ROOT / "Dockerfile").read_text()
    assert f"docker build -t {DEFAULT_IMAGE} ." in (ROOT / "README.md").read_text()


def test_dockerignore_keeps_environments_and_homes_out():
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", ".etrm"} <= ignored
