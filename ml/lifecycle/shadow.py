"""Shadow scoring: the version a promotion replaced scores the logged requests of the version
that replaced it, in this process.

Why in this process and not through the model server: every request the server answers is
logged and counted as that version's traffic, which monitoring and the next canary analysis
would read as real trades; and the replaced version may already be out of the serving policy.
The version is loaded as the server loads it (`ml.serving.model_manager.load_version`: its
manifest, and its signature when the home has a public key, verified on a private copy), so a
tampered folder is refused here too. TensorFlow is imported on first use.
"""
from __future__ import annotations

import pathlib
import tempfile
from typing import Dict, Sequence, Tuple

import numpy as np

from ml.core.home import Home

SIGNATURE = "serving_default"
SCORE_ALIAS = "risk_score"
BATCH_ROWS = 1000


class ShadowScorer:
    """`scorer(model_name, version, records)`: the version's risk scores for serialized
    tf.Examples (the request log's records; the model's parsing ignores the log's own
    columns). Loaded versions are kept for the next call; `close()` drops them."""

    def __init__(self, home):
        self.home = home if isinstance(home, Home) else Home.resolve(home)
        self._servables: Dict[Tuple[str, int], object] = {}
        self._staging = None

    def _version_dir(self, model_name: str, version: int) -> pathlib.Path:
        from ml.serving.model_config import find_model_config, read_model_server_config

        entry = find_model_config(read_model_server_config(self.home.models_config_path),
                                  model_name)
        return self.home.local_base_path(entry.base_path) / str(int(version))

    def _servable(self, model_name: str, version: int):
        key = (model_name, int(version))
        if key not in self._servables:
            from ml.serving.manifest import load_public_keys
            from ml.serving.model_manager import load_version

            if self._staging is None:
                self._staging = tempfile.TemporaryDirectory(prefix="etrm-shadow-")
            key_path = self.home.model_signing_public_key
            keys = load_public_keys(key_path) if key_path.exists() else None
            self._servables[key] = load_version(model_name, int(version),
                                                self._version_dir(model_name, version),
                                                public_keys=keys,
                                                staging_root=pathlib.Path(self._staging.name))
        return self._servables[key]

    def __call__(self, model_name: str, version: int, records: Sequence[bytes]) -> np.ndarray:
        servable = self._servable(model_name, version)
        inputs = servable.signature(SIGNATURE).inputs
        if len(inputs) != 1:
            raise ValueError(f"version {version} of {model_name}: signature {SIGNATURE} takes "
                             f"{sorted(inputs)}, not one serialized tf.Example input")
        alias = next(iter(inputs))
        scores = [np.asarray(servable.run(SIGNATURE, {alias: np.array(
            list(records[start:start + BATCH_ROWS]), dtype=object)})[SCORE_ALIAS],
            dtype=float).reshape(-1) for start in range(0, len(records), BATCH_ROWS)]
        return np.concatenate(scores) if scores else np.zeros(0)

    def close(self) -> None:
        self._servables.clear()
        if self._staging is not None:
            self._staging.cleanup()
            self._staging = None
