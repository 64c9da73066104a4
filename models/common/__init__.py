"""Layers shared by the risk model and the report language model."""
