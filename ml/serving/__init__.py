"""Local TensorFlow-Serving-compatible model server and its configuration helpers.

Importing this package is cheap: TensorFlow is imported only by the modules that serve.
"""
import os

# TFX 1.16 does not support Keras 3: every process importing TensorFlow needs this first.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
