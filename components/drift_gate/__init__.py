"""DriftGate: span-to-span drift and training/serving skew checks between validation and Transform."""
