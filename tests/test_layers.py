"""The import graph follows the layers (README, "Layers"): nothing imports from a layer above its
own, and no modules import each other in a cycle. Read from the source with ast, so the check
costs no TensorFlow import and sees imports inside functions too."""
import ast
import pathlib
from typing import Dict, List, Set

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("ml", "components", "models", "pipeline", "benchmarks")

# Bottom up; a module belongs to the layer of the longest prefix that names it.
LAYERS = {
    "ml.core": 0,                                   # foundations
    "ml.synthetic": 1, "ml.monitoring": 1, "ml.serving": 1, "ml.serving_client": 1,
    "ml.reports": 1, "models": 1,                   # libraries
    "components": 2,                                # TFX components
    "pipeline": 3,                                  # pipeline assembly and runners
    "ml.lifecycle": 4,                              # continuous learning, registry views
    "ml.cli": 5, "ml.dashboard": 5, "ml.serving.__main__": 5, "run_local": 5, "benchmarks": 5,
    "ml.synthetic_data_generator": 5, "ml.model_fine_tuning": 5,
    "ml.drift_detection_service": 5, "ml.tensorflow_serving_client": 5,
    "ml.continuous_learning_pipeline": 5,
    "pipeline.airflow_dag": 5,                      # the DAG file Airflow imports           # entry points and the spec's facades
    "ml": 0,                                        # the package itself only configures the process
}
LAYER_NAMES = ["foundations", "libraries", "components", "pipeline", "lifecycle", "entry points"]


def module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> int:
    candidates = [prefix for prefix in LAYERS
                  if module == prefix or module.startswith(prefix + ".")]
    if not candidates:
        raise KeyError(f"module {module} is in no layer: add its package to LAYERS")
    return LAYERS[max(candidates, key=len)]


def project_modules() -> Dict[str, pathlib.Path]:
    files = [ROOT / "run_local.py"]
    for package in PACKAGES:
        files += [path for path in (ROOT / package).rglob("*.py")
                  if not path.name.endswith("_test.py")]
    return {module_name(path): path for path in files}


def imports_of(path: pathlib.Path, known: Set[str]) -> Set[str]:
    """The project modules a file imports (a `from package import module` counts as the module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def import_graph() -> Dict[str, Set[str]]:
    modules = project_modules()
    known = set(modules)
    return {name: imports_of(path, known) - {name} for name, path in modules.items()}


def upward_imports(graph: Dict[str, Set[str]]) -> List[str]:
    return sorted(f"{source} ({LAYER_NAMES[layer_of(source)]}) imports {target} "
                  f"({LAYER_NAMES[layer_of(target)]})"
                  for source, targets in graph.items() for target in targets
                  if layer_of(target) > layer_of(source) and not _is_parent_package(target, source))


def _is_parent_package(target: str, source: str) -> bool:
    """`import ml` from ml.core.x runs ml/__init__ (process setup), not a higher layer's code."""
    return source.startswith(target + ".")


def cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """Strongly connected groups of more than one module (Tarjan), packages' __init__ excluded
    from being a cycle with their own submodules."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    groups: List[List[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if _is_parent_package(target, node) or _is_parent_package(node, target):
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_every_module_is_in_a_layer():
    for name in project_modules():
        layer_of(name)


def test_no_module_imports_from_a_higher_layer():
    assert upward_imports(import_graph()) == []


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_the_check_catches_an_upward_import_and_a_cycle():
    graph = {"ml.core.home": {"pipeline.create"}, "pipeline.create": {"ml.core.home"}}
    assert upward_imports(graph) == [
        "ml.core.home (foundations) imports pipeline.create (pipeline)"]
    assert cycles(graph) == [["ml.core.home", "pipeline.create"]]


@pytest.mark.parametrize("module, layer", [
    ("ml.core.metadata", "foundations"), ("ml.serving.server", "libraries"),
    ("ml.serving.__main__", "entry points"), ("components.drift_gate.checks", "components"),
    ("ml.tensorflow_serving_client", "entry points"), ("run_local", "entry points")])
def test_layer_assignment(module, layer):
    assert LAYER_NAMES[layer_of(module)] == layer
