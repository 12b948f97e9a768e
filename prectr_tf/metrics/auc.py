"""Streaming AUC with missing clicks masked: `keras.metrics.AUC` behind
`MaskedMetric` — constant memory, XLA-compatible, approximate (threshold
interpolation). The exact AUC (sklearn's `roc_auc_score`, ties 1/2) of
collected predictions is `prectr_tf.metrics.predictions.auc`.
"""

import keras

from prectr_tf.metrics.masked import MaskedMetric


def masked_auc(name="auc", num_thresholds=1000, label_key="labels"):
    """`keras.metrics.AUC` (ROC, interpolated) ignoring rows with label -1.

    Args:
        name: metric name.
        num_thresholds: thresholds of the streaming approximation; 1000 keeps
            the error around 1e-3 for probability scores.
        label_key: key of the labels when `y_true` is a dict.

    Returns:
        A `MaskedMetric`; `update_state(y_true, y_pred [B] probabilities,
        sample_weight)`.

    Example:
    >>> m = masked_auc()
    >>> m.update_state([1, 0, -1, 1], [0.9, 0.2, 0.95, 0.1])
    >>> round(float(m.result()), 2)
    0.5
    """
    return MaskedMetric(keras.metrics.AUC(num_thresholds=num_thresholds, name=name),
                        label_key=label_key, name=name)
