"""Registered references on disk, so a restarted service still knows every model.

One .npz file per model (no pickle: numbers as float64, categories and labels as text, column
metadata as JSON), written to a temporary file and moved into place with os.replace so a
crash mid-write never leaves a half-written reference.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional

import numpy as np

from ml.core.atomic_files import atomic_write
from ml.monitoring.tables import FeatureTable

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def check_model_name(name) -> str:
    """Model names become file names, so they are limited to letters, digits, '_', '.', '-'."""
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
        raise ValueError(f"model name {name!r} must be 1-128 characters of letters, digits, "
                         "'_', '.' or '-', starting with a letter or digit")
    return name


@dataclass(frozen=True)
class StoredReference:
    """What register_model received, in validated form."""

    table: FeatureTable
    predictions: Optional[np.ndarray] = None
    labels: Optional[np.ndarray] = None


class ReferenceStore:
    """Saves and loads references under one directory."""

    def __init__(self, directory):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def path_for(self, name: str) -> Path:
        return self.directory / f"{check_model_name(name)}.npz"

    def save(self, name: str, reference: StoredReference) -> Path:
        table = reference.table
        meta = {"names": list(table.names), "kinds": list(table.kinds),
                "has_predictions": reference.predictions is not None,
                "has_labels": reference.labels is not None}
        arrays = {"numeric": table.numeric, "categorical": table.categorical,
                  "meta": np.array(json.dumps(meta))}
        if reference.predictions is not None:
            arrays["predictions"] = reference.predictions
        if reference.labels is not None:
            arrays["labels"] = reference.labels
        target = self.path_for(name)
        atomic_write(target, lambda stream: np.savez(stream, **arrays), binary=True)
        return target

    def load(self, name: str) -> StoredReference:
        with np.load(self.path_for(name), allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            table = FeatureTable(names=tuple(meta["names"]), kinds=tuple(meta["kinds"]),
                                 numeric=data["numeric"], categorical=data["categorical"])
            predictions = data["predictions"] if meta["has_predictions"] else None
            labels = data["labels"] if meta["has_labels"] else None
        return StoredReference(table, predictions, labels)

    def load_all(self) -> Dict[str, StoredReference]:
        return {path.stem: self.load(path.stem) for path in sorted(self.directory.glob("*.npz"))
                if _NAME.match(path.stem)}
