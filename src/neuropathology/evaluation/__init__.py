"""Evaluation: metrics, calibration, statistics, uncertainty and ``neuropathology evaluate``.

* :mod:`~neuropathology.evaluation.metrics` - every reported number (scikit-learn underneath;
  ECE / MCE / classwise ECE hand-written).
* :mod:`~neuropathology.evaluation.calibration` - temperature scaling, ``calibration.json``,
  reliability diagrams.
* :mod:`~neuropathology.evaluation.statistics` - bootstrap confidence intervals, McNemar's test.
* :mod:`~neuropathology.evaluation.uncertainty` - entropy, MC dropout, risk-coverage / AURC,
  test-time augmentation.
* :mod:`~neuropathology.evaluation.evaluate` - the ``evaluate`` pipeline and its report.

Only the light metric functions are imported here; the others load TensorFlow or SciPy on use.
"""

from neuropathology.evaluation.metrics import (
    classification_metrics,
    classwise_ece,
    evaluation_metrics,
    expected_calibration_error,
    maximum_calibration_error,
    metrics_table,
    reliability_bins,
)

__all__ = ["classification_metrics", "classwise_ece", "evaluation_metrics",
           "expected_calibration_error", "maximum_calibration_error", "metrics_table",
           "reliability_bins"]
