"""BCE of the fused click probability, computed in log space (DESIGN §4.4).

The fusion P(click | x) = Σ_k σ(b_k + τ(x)) · p_k is a mixture; the fusion
layer hands its two log-probabilities to the loss:

    log_p_click    = logsumexp_k(log σ(b_k + τ)  + log p_k)
    log_p_no_click = logsumexp_k(log σ(-b_k - τ) + log p_k)

and the loss is -[y · log P(click) + (1 - y) · log P(no click)], without ever
forming P itself, so saturated logits give finite losses and gradients.
"""

import keras
from keras import ops

from prectr_tf.losses.masked_loss import MaskedLoss, flatten_rows


def split_click_log_probs(y_pred):
    """`(log_p_click [B], log_p_no_click [B])` from the loss input.

    Args:
        y_pred: dict with `"log_p_click"` and `"log_p_no_click"`, or a tensor
            `[B, 2]` of the log-probabilities of the classes
            `(no click, click)`, in that order.
    """
    if isinstance(y_pred, dict):
        return flatten_rows(y_pred["log_p_click"]), flatten_rows(y_pred["log_p_no_click"])
    if len(y_pred.shape) < 1 or y_pred.shape[-1] != 2:
        raise ValueError(
            "y_pred must be a dict with 'log_p_click'/'log_p_no_click' or a "
            f"[B, 2] tensor (log P(no click), log P(click)); got shape {y_pred.shape}")
    y_pred = ops.reshape(y_pred, (-1, 2))
    return y_pred[:, 1], y_pred[:, 0]


def fused_click_bce(labels, log_p_click, log_p_no_click):
    """Per-row BCE of the fused click probability, and the label mask.

    The two log-probabilities are renormalised (`log p - logaddexp(...)`);
    for the fusion's outputs, which already sum to one, this changes neither
    the value nor the gradient with respect to the model's parameters.

    Args:
        labels: `[B]` or `[B, 1]`: 1 click, 0 no click, -1 unknown (masked).
        log_p_click: `[B]` log P(click).
        log_p_no_click: `[B]` log P(no click).

    Returns:
        `(losses [B], mask [B] bool)`; masked rows hold 0.

    Example:
    >>> import numpy as np
    >>> p = np.array([0.8, 0.3, 0.5], "float32")
    >>> losses, mask = fused_click_bce([1, 0, -1], np.log(p), np.log1p(-p))
    >>> [round(float(v), 4) for v in losses], np.asarray(mask).tolist()
    ([0.2231, 0.3567, 0.0], [True, True, False])
    """
    log_p_click = flatten_rows(log_p_click)
    log_p_no_click = flatten_rows(log_p_no_click, log_p_click.dtype)
    labels = flatten_rows(labels, log_p_click.dtype)
    mask = ops.greater_equal(labels, 0.0)
    log_z = ops.logaddexp(log_p_click, log_p_no_click)
    # `where`, not y*a + (1-y)*b: 0 * -inf would be NaN.
    log_p_label = ops.where(ops.greater(labels, 0.5), log_p_click, log_p_no_click)
    losses = ops.where(mask, log_z - log_p_label, ops.zeros_like(log_z))
    return losses, mask


@keras.saving.register_keras_serializable(package="prectr_tf")
class FusedClickLoss(MaskedLoss):
    """Binary cross-entropy of the fused click probability (log space).

    Rows with `click == -1` are masked: they count in neither the numerator
    nor the denominator (a batch without a labelled row gives 0).

    Args:
        reduction: default `"sum_over_batch_size"` = (sample-weighted) mean
            over labelled rows; see `masked_loss.reduce_masked`.
        name: loss name, default `"click_loss"`.
        dtype: computation dtype.

    Call args:
        y_true: click labels `[B]` or `[B, 1]` in {1, 0, -1}.
        y_pred: dict `{"log_p_click": [B], "log_p_no_click": [B]}` or a
            `[B, 2]` tensor `(log P(no click), log P(click))`.
        sample_weight: optional `[B]` weights.

    Returns:
        Scalar loss (`[B]` with `reduction="none"`).

    Example:
    >>> import numpy as np
    >>> loss = FusedClickLoss()
    >>> p = np.array([0.8, 0.3, 0.5], "float32")
    >>> y_pred = {"log_p_click": np.log(p), "log_p_no_click": np.log1p(-p)}
    >>> round(float(loss([1, 0, -1], y_pred)), 4)  # mean of 0.2231, 0.3567
    0.2899
    """

    def __init__(self, reduction="sum_over_batch_size", name="click_loss", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def compute_unreduced_loss(self, y_true, y_pred):
        log_p_click, log_p_no_click = split_click_log_probs(y_pred)
        return fused_click_bce(y_true, log_p_click, log_p_no_click)
