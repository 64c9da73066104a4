"""Drift statistics, alerting and reporting behind ml.drift_detection_service, one job per module."""
