"""`MaskedLoss`: the base of the losses whose rows can be excluded.

A row that is masked (an unlabelled impression, a pair dropped by dynamic
truncation) leaves the numerator **and** the denominator of the reduction; a
batch where every row is masked gives 0, not NaN. Subclasses override one
method, `compute_unreduced_loss`, as keras-rs's `PairwiseLoss` subclasses
override `pairwise_loss`.
"""

import abc

import keras
import tensorflow as tf
from keras import ops


def flatten_rows(x, dtype=None):
    """`[B]`, `[B, 1]` or a scalar -> a rank-1 tensor (`[B]` or `[1]`)."""
    return ops.reshape(ops.convert_to_tensor(x, dtype=dtype), (-1,))


def reduce_masked(losses, mask, sample_weight=None, reduction="sum_over_batch_size"):
    """Reduces per-row `losses` over the rows where `mask` is true.

    Args:
        losses: float tensor `[B]`; values of masked rows are ignored (they may
            be anything finite).
        mask: bool tensor `[B]`.
        sample_weight: optional scalar, `[B]` or `[B, 1]` weights.
        reduction: `"sum_over_batch_size"`/`"mean"` (weighted sum divided by
            the number of unmasked rows), `"mean_with_sample_weight"`
            (divided by the sum of unmasked weights), `"sum"`, or
            `"none"`/`None` (per-row weighted values, 0 on masked rows).

    Returns:
        A scalar, or `[B]` for `reduction="none"`.
    """
    mask_f = ops.cast(mask, losses.dtype)
    weights = mask_f
    if sample_weight is not None:
        weights = weights * flatten_rows(sample_weight, losses.dtype)
    weighted = ops.where(mask, losses, ops.zeros_like(losses)) * weights
    if reduction in (None, "none"):
        return weighted
    total = ops.sum(weighted)
    if reduction == "sum":
        return total
    if reduction == "mean_with_sample_weight":
        denominator = ops.sum(weights)
    else:
        denominator = ops.sum(mask_f)
    return scale_for_distribution(ops.divide_no_nan(total, denominator))


def scale_for_distribution(loss):
    """A mean loss times 1/replicas under `tf.distribute`, as
    `keras.losses.Loss` does: the replicas' gradients are summed, so the sum
    of the scaled per-replica means is their mean."""
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return loss * (1.0 / replicas) if replicas > 1 else loss


def unscale_for_distribution(loss):
    """Undoes `scale_for_distribution`: the replica's mean loss itself,
    for the loss trackers (Keras does the same for its own)."""
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return loss * float(replicas) if replicas > 1 else loss


def track_loss(tracker, loss, rows):
    """Update a loss tracker (`keras.metrics.Mean`) with a batch's mean
    loss, weighted by the batch's rows, as Keras does for its own tracker.

    The weight must come from the batch: an unweighted update adds 1 to the
    count on the step that finds the input exhausted too (that increment
    depends on no input, so graph execution runs it before the end-of-data
    error ends the step), which left every reported loss of a pass low by
    1/(steps + 1).
    """
    tracker.update_state(unscale_for_distribution(loss), sample_weight=rows)


class MaskedLoss(keras.losses.Loss, abc.ABC):
    """Base class of per-row losses with a row mask.

    Override `compute_unreduced_loss(y_true, y_pred) -> (losses [B], mask [B])`.
    `__call__` converts inputs (tensors or dicts of tensors; `y_true` may be
    `None`), computes the per-row losses once and reduces them with
    `reduce_masked`.

    Args:
        reduction: see `reduce_masked`. Defaults to `"sum_over_batch_size"`:
            the (sample-weighted) mean over unmasked rows.
        name: name of the loss.
        dtype: computation dtype (default `keras.backend.floatx()`).
    """

    @abc.abstractmethod
    def compute_unreduced_loss(self, y_true, y_pred):
        """Returns `(losses [B], mask [B] bool)`."""

    def _convert(self, value):
        return keras.tree.map_structure(
            lambda x: ops.convert_to_tensor(x, dtype=self.dtype), value)

    def call(self, y_true, y_pred):
        losses, mask = self.compute_unreduced_loss(y_true, y_pred)
        return ops.where(mask, losses, ops.zeros_like(losses))

    def __call__(self, y_true, y_pred, sample_weight=None):
        with keras.name_scope(self.name):
            y_true = None if y_true is None else self._convert(y_true)
            y_pred = self._convert(y_pred)
            losses, mask = self.compute_unreduced_loss(y_true, y_pred)
            return reduce_masked(losses, mask, sample_weight, self.reduction)
