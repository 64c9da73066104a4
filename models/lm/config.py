"""ModelConfig of the report language model (the spec's fields and defaults) and named presets.

The spec's defaults are the reference size. `PRESETS["run"]` is the size `make run` trains so a
run stays a few minutes on two CPU cores; `PRESETS["tiny"]` is for tests.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Dict, Mapping, Optional


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Sizes and training settings; the first nine fields are the documented API."""

    vocab_size: int = 10000           # Vocabulary size (upper bound; reserved tokens included)
    embedding_dim: int = 128          # Embedding dimensions
    max_length: int = 512             # Maximum sequence length (tokens, start token included)
    batch_size: int = 32              # Training batch size
    epochs: int = 10                  # Training epochs
    learning_rate: float = 0.001      # Learning rate
    hidden_dim: int = 256             # Hidden layer size (feed-forward width of each block)
    num_heads: int = 8                # Attention heads
    num_layers: int = 4               # Transformer layers
    dropout: float = 0.1              # Dropout in attention and feed-forward
    steps_per_epoch: Optional[int] = None  # None: one full pass over the training split
    early_stopping_patience: int = 2  # Epochs without eval-loss improvement before stopping
    kind_sampling_exponent: float = 0.5  # Kinds drawn in proportion to count ** exponent

    def __post_init__(self):
        for name in ("vocab_size", "embedding_dim", "max_length", "batch_size", "epochs",
                     "hidden_dim", "num_heads", "num_layers", "early_stopping_patience"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"ModelConfig.{name} must be a positive integer, got {value!r}")
        if self.steps_per_epoch is not None and (
                isinstance(self.steps_per_epoch, bool) or not isinstance(self.steps_per_epoch, int)
                or self.steps_per_epoch <= 0):
            raise ValueError(f"ModelConfig.steps_per_epoch must be None or a positive integer, "
                             f"got {self.steps_per_epoch!r}")
        if self.embedding_dim % self.num_heads:
            raise ValueError(f"ModelConfig.embedding_dim ({self.embedding_dim}) must be divisible "
                             f"by num_heads ({self.num_heads})")
        if (isinstance(self.learning_rate, bool) or not isinstance(self.learning_rate, (int, float))
                or not math.isfinite(self.learning_rate) or self.learning_rate <= 0):
            raise ValueError(f"ModelConfig.learning_rate must be a positive number, "
                             f"got {self.learning_rate!r}")
        if not 0.0 <= self.kind_sampling_exponent <= 1.0:
            raise ValueError(f"ModelConfig.kind_sampling_exponent must be in [0, 1], "
                             f"got {self.kind_sampling_exponent!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"ModelConfig.dropout must be in [0, 1), got {self.dropout!r}")
        if self.max_length < 2:
            raise ValueError(f"ModelConfig.max_length must be at least 2, got {self.max_length}")

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Optional[Mapping[str, Any]]) -> "ModelConfig":
        """Builds a config from a mapping; unknown names are rejected, naming them."""
        values = dict(values or {})
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown ModelConfig fields {unknown}; known: {sorted(known)}")
        return cls(**values)


PRESETS: Dict[str, ModelConfig] = {
    "spec": ModelConfig(),
    # 1,600 steps of 8 texts: the same tokens and time as 400 steps of 32, but four times the
    # updates, which is what the report structure needs (BENCHMARKS.md, "Report language model").
    "run": ModelConfig(vocab_size=4000, embedding_dim=96, max_length=320, batch_size=8,
                       epochs=4, learning_rate=0.003, hidden_dim=192, num_heads=4,
                       num_layers=3, dropout=0.0, steps_per_epoch=400, kind_sampling_exponent=0.0),
    "tiny": ModelConfig(vocab_size=600, embedding_dim=32, max_length=128, batch_size=16,
                        epochs=2, learning_rate=0.003, hidden_dim=64, num_heads=2,
                        num_layers=1, dropout=0.0),
}


def preset(name: str) -> ModelConfig:
    """A named preset; ValueError naming the choices for an unknown name."""
    if name not in PRESETS:
        raise ValueError(f"unknown language-model preset {name!r}; choose from {sorted(PRESETS)}")
    return PRESETS[name]
