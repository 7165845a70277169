"""Production tooling for served models: GDNProductionMonitor (metrics, alerts, anomalies, reports)."""
from .monitor import Alert, GDNProductionMonitor, robust_z_scores

__all__ = ["Alert", "GDNProductionMonitor", "robust_z_scores"]
