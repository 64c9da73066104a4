"""Local TensorFlow-Serving-compatible model server and its configuration helpers.

Importing this package is cheap: TensorFlow is imported only by the modules that serve.
"""

