"""The run summary, in one place: built from ML Metadata after a run (`build`), written to
runs/latest.json (`write`) and printed for people (`print_summary`)."""
from pipeline.run_summary.build import build, write
from pipeline.run_summary.printing import print_summary

__all__ = ["build", "write", "print_summary"]
