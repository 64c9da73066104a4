"""models package."""
import os

# TFX 1.16 does not support Keras 3: every process importing TensorFlow needs this first.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
