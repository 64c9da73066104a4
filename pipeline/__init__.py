"""pipeline package: legacy Keras is configured before anything here can import TensorFlow."""
from ml.core.process import configure

configure()
