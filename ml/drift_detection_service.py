"""Model monitoring as the spec documents it: register a reference, then check new windows for
drift and raise alerts.

A facade, so every documented snippet (`from ml.drift_detection_service import
ModelMonitoringService`) keeps working; the implementation is ml.monitoring.service.
"""
from ml.monitoring.service import (DEFAULT_DRIFT_THRESHOLDS, DriftAlert, DriftType,
                                   ModelMonitoringService, MonitoringResult, default_state_dir)

__all__ = ["ModelMonitoringService", "DriftType", "DriftAlert", "MonitoringResult",
           "DEFAULT_DRIFT_THRESHOLDS", "default_state_dir"]
