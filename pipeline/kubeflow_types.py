"""The project's artifact types as Kubeflow Pipelines V2 sees them.

KFP V2 records a custom artifact type under a schema title `<module>.<Class>` (one module name,
lower case), and its container entry point imports the class from that title. ML Metadata
knows the drift result as `ETRMDriftResult`, which is no such title; while compiling, the type
is titled `components.DriftResult` (the components package exports the class under that name),
and the name ML Metadata sees in local runs is left as it is.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

KFP_TITLES = {"DriftResult": "components.DriftResult"}


@contextlib.contextmanager
def kubeflow_type_titles() -> Iterator[None]:
    """While open, custom artifact types carry their KFP schema titles as TYPE_NAME."""
    from components.drift_gate.artifacts import DriftResult

    classes = {"DriftResult": DriftResult}
    saved = {name: cls.TYPE_NAME for name, cls in classes.items()}
    for name, cls in classes.items():
        cls.TYPE_NAME = KFP_TITLES[name]
    try:
        yield
    finally:
        for name, cls in classes.items():
            cls.TYPE_NAME = saved[name]
