"""Resolver strategies of the continuous-learning training run, answered from ML Metadata.

SpanWindowStrategy gives the training window: for each span in [first_span, last_span], the
newest Examples artifact that passed the validation gate (TFX's SpanRangeStrategy keeps every
artifact of a span, so a span re-ingested after a crash would count twice, and it cannot tell a
span its gate stopped). ServingVersionModelStrategy gives the Model that was pushed as a given
serving version: the continuous job warm-starts from, and is judged against, the version
labelled `stable`, not the highest-id blessed Model that LatestBlessedModelStrategy returns
(after a rollback, that is the bad one).
"""
from __future__ import annotations

from typing import Dict, List, Optional

from tfx import types
from tfx.dsl.components.common import resolver

from ml.core import metadata


class SpanWindowStrategy(resolver.ResolverStrategy):
    """The validated Examples of each span in the window (spans of period_days days from
    history_start), newest span first."""

    def __init__(self, pipeline_name: str, first_span: int, last_span: int,
                 period_days: int = 7, history_start: str = "2024-01-01"):
        if not 0 <= first_span <= last_span:
            raise ValueError(f"the span window must have 0 <= first_span <= last_span, "
                             f"got {first_span}..{last_span}")
        self._pipeline_name = pipeline_name
        self._first, self._last = first_span, last_span
        self._grid = (int(period_days), str(history_start))

    def resolve_artifacts(self, store, input_dict: Dict[str, List[types.Artifact]]
                          ) -> Optional[Dict[str, List[types.Artifact]]]:
        validated = metadata.validated_spans(store, self._pipeline_name, *self._grid)
        wanted = {artifact_id for span, artifact_id in validated.items()
                  if self._first <= span <= self._last}
        return {key: sorted((a for a in artifacts if a.id in wanted),
                            key=lambda a: -a.get_int_custom_property("span"))
                for key, artifacts in input_dict.items()}


class ServingVersionModelStrategy(resolver.ResolverStrategy):
    """The Model pushed as `version` of model_name; empty when version < 0 (nothing serves)."""

    def __init__(self, model_name: str, version: int):
        self._model_name, self._version = model_name, int(version)

    def resolve_artifacts(self, store, input_dict: Dict[str, List[types.Artifact]]
                          ) -> Optional[Dict[str, List[types.Artifact]]]:
        found = (metadata.model_pushed_as(store, self._model_name, self._version)
                 if self._version >= 0 else None)
        return {key: [a for a in artifacts if found is not None and a.id == found.id]
                for key, artifacts in input_dict.items()}
