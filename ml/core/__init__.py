"""Foundations: the project home, the model registry, ML Metadata questions, codecs and file
formats. Everything else may import these; these import nothing of the platform above them."""
