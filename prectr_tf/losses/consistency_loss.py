"""Semantic consistency regularisation (DESIGN §4.9).

The click tower predicts one click logit b_k per relevance level k. The fused
score must not promote an irrelevant item because its click logit is high, so
the click probability given relevance should not fall as relevance rises.
Default penalty **[ours]**: Σ_k relu(σ(b_k) - σ(b_{k+1})) per impression.
"""

import keras
from keras import ops


def monotonicity_penalty(click_logits):
    """Per-row Σ_{k<K-1} relu(σ(b_k) - σ(b_{k+1})).

    Args:
        click_logits: `[B, K]` (or `[K]`) click logits per relevance level,
            levels in increasing order. Add τ(x) first if the penalty should
            see the fused logits b_k + τ.

    Returns:
        `[B]` (or scalar) penalties, 0 where σ(b_k) is non-decreasing in k.

    Example:
    >>> import numpy as np
    >>> round(float(monotonicity_penalty(np.array([0.0, 1.0, 0.0], "float32"))), 4)
    0.2311
    """
    probs = ops.sigmoid(ops.convert_to_tensor(click_logits))
    return ops.sum(ops.relu(probs[..., :-1] - probs[..., 1:]), axis=-1)


@keras.saving.register_keras_serializable(package="prectr_tf")
class ConsistencyLoss(keras.losses.Loss):
    """Monotonicity penalty on the per-level click probabilities.

    A label-free regulariser: `y_true` is ignored (pass `None`).

    Args:
        reduction: Keras reduction over rows (default mean over the batch).
        name: loss name, default `"consistency_loss"`.
        dtype: computation dtype.

    Call args:
        y_true: ignored.
        y_pred: `[B, K]` click logits b_k, one per relevance level.
        sample_weight: optional `[B]` weights.

    Returns:
        Scalar loss (`[B]` with `reduction="none"`).

    Example:
    >>> import numpy as np
    >>> b = np.array([[0.0, 1.0, 2.0], [0.0, 1.0, 0.0]], "float32")
    >>> round(float(ConsistencyLoss()(None, b)), 4)  # (0 + 0.2311) / 2
    0.1155
    """

    def __init__(self, reduction="sum_over_batch_size", name="consistency_loss", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def __call__(self, y_true, y_pred, sample_weight=None):
        # The penalty is label-free; Keras' __call__ cannot convert None.
        y_true = y_pred if y_true is None else y_true
        return super().__call__(y_true, y_pred, sample_weight=sample_weight)

    def call(self, y_true, y_pred):
        return monotonicity_penalty(y_pred)
