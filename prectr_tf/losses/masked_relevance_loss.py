"""Softmax cross-entropy over the K relevance levels, unlabelled rows masked.

An impression without a relevance label (`relevance == -1`) is *missing*, not
level 0 (DESIGN §3): it leaves the numerator and the denominator.
"""

import keras
from keras import ops

from prectr_tf.losses.masked_loss import MaskedLoss, flatten_rows


def masked_relevance_cross_entropy(labels, logits):
    """Per-row softmax cross-entropy and the label mask.

    Args:
        labels: `[B]` or `[B, 1]` int levels in `[0, K)`; -1 (any negative
            value) is unlabelled. Levels `>= K` are treated as unlabelled too
            (the log validator rejects them upstream).
        logits: `[B, K]` relevance logits (log-probabilities work as well).

    Returns:
        `(losses [B], mask [B] bool)`; masked rows hold 0.

    Example:
    >>> import numpy as np
    >>> logits = np.log(np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], "float32"))
    >>> losses, mask = masked_relevance_cross_entropy([0, -1], logits)
    >>> [round(float(v), 4) for v in losses], np.asarray(mask).tolist()
    ([0.3567, 0.0], [True, False])
    """
    logits = ops.convert_to_tensor(logits)
    num_levels = logits.shape[-1]
    logits = ops.reshape(logits, (-1, num_levels))
    labels = ops.cast(flatten_rows(labels), "int32")
    mask = ops.logical_and(ops.greater_equal(labels, 0), ops.less(labels, num_levels))
    safe = ops.where(mask, labels, ops.zeros_like(labels))
    log_probs = ops.log_softmax(logits, axis=-1)
    picked = ops.take_along_axis(log_probs, ops.expand_dims(safe, -1), axis=-1)[:, 0]
    losses = ops.where(mask, -picked, ops.zeros_like(picked))
    return losses, mask


@keras.saving.register_keras_serializable(package="prectr_tf")
class MaskedRelevanceLoss(MaskedLoss):
    """Masked sparse softmax cross-entropy over K relevance logits.

    Args:
        reduction: default `"sum_over_batch_size"` = (sample-weighted) mean
            over labelled rows; a batch with no labelled row gives 0.
        name: loss name, default `"relevance_loss"`.
        dtype: computation dtype.

    Call args:
        y_true: relevance levels `[B]` or `[B, 1]`, -1 unlabelled.
        y_pred: logits `[B, K]`.
        sample_weight: optional `[B]` weights.

    Returns:
        Scalar loss (`[B]` with `reduction="none"`).

    Example:
    >>> import numpy as np
    >>> logits = np.log(np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], "float32"))
    >>> round(float(MaskedRelevanceLoss()([0, -1], logits)), 4)
    0.3567
    >>> float(MaskedRelevanceLoss()([-1, -1], logits))
    0.0
    """

    def __init__(self, reduction="sum_over_batch_size", name="relevance_loss", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def compute_unreduced_loss(self, y_true, y_pred):
        return masked_relevance_cross_entropy(y_true, y_pred)
