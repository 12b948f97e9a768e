"""Metrics of PRECTR-V2 (DESIGN §8), in two kinds.

Streaming Keras metrics — constant memory, sum-reduced state (right under
`tf.distribute`), XLA-safe — updated on every train and test step:
`masked_auc`, `log_loss`, `relevance_accuracy`, `RelevanceMacroF1`,
`MaskedMetric`. Each takes `(y_true, y_pred, sample_weight)`, `y_true` a
labels tensor or a dict with `"labels"`; labels of -1 are missing and leave
the metric.

Exact metrics of collected predictions, in numpy
(`prectr_tf.metrics.predictions`): GAUC by user and by query, NDCG@k, MRR,
per activity bucket, and the exact AUC and log loss. `model.evaluate`
computes them once from the rows it collected (`prectr_tf.models.
evaluation_rows`); `evaluate_predictions` does it for any table of scores.

Example:
>>> m = masked_auc()
>>> m.update_state([1, 0, -1, 1], [0.9, 0.2, 0.95, 0.1])
>>> round(float(m.result()), 2), evaluate_predictions({"click": [1, 0, -1, 1],
...     "score": [0.9, 0.2, 0.95, 0.1]})["auc"]
(0.5, 0.5)
"""

from prectr_tf.metrics.auc import masked_auc
from prectr_tf.metrics.classification import RelevanceMacroF1, log_loss, relevance_accuracy
from prectr_tf.metrics.masked import MaskedMetric, masked_labels, split_y_true
from prectr_tf.metrics.predictions import evaluate_predictions, rela_impr

__all__ = [
    "MaskedMetric",
    "RelevanceMacroF1",
    "evaluate_predictions",
    "log_loss",
    "masked_auc",
    "masked_labels",
    "rela_impr",
    "relevance_accuracy",
    "split_y_true",
]
