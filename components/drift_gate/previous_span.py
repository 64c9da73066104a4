"""Resolves the previous span's Examples and statistics from ML Metadata (never from folders).

PreviousSpanStrategy runs inside a tfx.dsl.Resolver: it receives every artifact the named
producers recorded and keeps, per input, the newest artifact of the latest span before the
current one. The first span has none, so the gate's optional inputs stay empty.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

from tfx import types
from tfx.dsl.components.common import resolver

SPAN_PROPERTY = "span"


def artifact_span(artifact: types.Artifact) -> Optional[int]:
    """The span recorded on an artifact: ExampleGen writes a custom property, StatisticsGen
    copies it into the type's `span` property; None when it has neither."""
    if artifact.has_custom_property(SPAN_PROPERTY):
        return int(artifact.get_int_custom_property(SPAN_PROPERTY))
    if SPAN_PROPERTY in (artifact.PROPERTIES or {}) and artifact.has_property(SPAN_PROPERTY):
        return int(artifact.span)
    return None


def previous_span_artifacts(artifacts: Sequence[types.Artifact],
                            current_span: int) -> List[types.Artifact]:
    """[the newest artifact of the latest span below current_span], or [] when there is none."""
    earlier = [a for a in artifacts
               if artifact_span(a) is not None and artifact_span(a) < current_span]
    if not earlier:
        return []
    span = max(artifact_span(a) for a in earlier)
    return [max((a for a in earlier if artifact_span(a) == span), key=lambda a: a.id)]


class PreviousSpanStrategy(resolver.ResolverStrategy):
    """Keeps the latest earlier span of every input; empty inputs when there is none."""

    def __init__(self, current_span: int):
        # int(): an orchestrator that renders the span per run (Airflow) passes its text.
        if int(current_span) < 0:
            raise ValueError(f"current_span must be >= 0, got {current_span}")
        self._current_span = int(current_span)

    def resolve_artifacts(self, store, input_dict: Dict[str, List[types.Artifact]]
                          ) -> Optional[Dict[str, List[types.Artifact]]]:
        return {key: previous_span_artifacts(artifacts, self._current_span)
                for key, artifacts in input_dict.items()}
