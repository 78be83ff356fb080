"""Evaluation: the one place classification metrics are computed."""

from neuropathology.evaluation.metrics import classification_metrics, metrics_table

__all__ = ["classification_metrics", "metrics_table"]
