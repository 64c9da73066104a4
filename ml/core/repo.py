"""Where the project's own files are (its checkout, or /opt/etrm in the image): schemas,
setup.py, the sources digested by ml.core.code_fingerprint."""
import pathlib

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
