"""`PairwiseDebiasLoss`: the exposure-bias correction of PRECTR-V2 (DESIGN §4.8).

Each anchor impression x (clicked and relevant) is paired with its hard
negative x̃ (its relevance representation plus noise, relevance label
reconstructed to the lowest level). The fused score must rank the anchor
above its negative by a margin m:

    loss(x) = w(x) · min(max(0, m - (s(x) - s(x̃))), max_loss)

with, per batch:

* **margin clipping**: a pair's hinge is capped at `max_loss`, so a pair the
  model places far on the wrong side (often a noise negative that is in fact
  relevant) adds a bounded loss and no gradient;
* **dynamic truncation**: pairs already separated by m (hinge 0) are dropped,
  and of the remaining pairs only the hardest `keep_fraction` (the
  ceil(keep_fraction · n) largest unclipped hinges; ties at the cut are all
  kept) enter the loss;
* **w(x)**: per-anchor weights, passed as `sample_weight` (default 1).

Structure after keras-rs's `PairwiseLoss`: a subclass may override
`pairwise_loss(score_diff)` (e.g. a logistic instead of a hinge); clipping and
truncation then act on what it returns.
"""

import math

import keras
from keras import ops

from prectr_tf.losses.masked_loss import MaskedLoss, flatten_rows


def split_pair_scores(y_pred):
    """`(anchor_scores [B], negative_scores [B])` from a dict with `"anchor"`
    and `"negative"` or a `[B, 2]` tensor `(s(x), s(x̃))`."""
    if isinstance(y_pred, dict):
        return flatten_rows(y_pred["anchor"]), flatten_rows(y_pred["negative"])
    if len(y_pred.shape) < 1 or y_pred.shape[-1] != 2:
        raise ValueError(
            "y_pred must be a dict with 'anchor'/'negative' scores or a [B, 2] "
            f"tensor (s(x), s(x_neg)); got shape {y_pred.shape}")
    y_pred = ops.reshape(y_pred, (-1, 2))
    return y_pred[:, 0], y_pred[:, 1]


def truncation_mask(pair_losses, active, keep_fraction):
    """The hardest `keep_fraction` of the `active` pairs (by `pair_losses`).

    Keeps the pairs whose loss is at least the k-th largest active loss,
    k = max(1, ceil(keep_fraction · n_active)); static shapes only (XLA-safe).

    Args:
        pair_losses: `[P]` per-pair losses.
        active: `[P]` bool, the candidates (anchor and loss > 0).
        keep_fraction: float in (0, 1].

    Returns:
        `[P]` bool mask, a subset of `active` (no gradient flows through it).
    """
    pair_losses = ops.stop_gradient(pair_losses)
    if keep_fraction >= 1.0:
        return active
    n_active = ops.sum(ops.cast(active, "int32"))
    k = ops.cast(ops.ceil(ops.cast(n_active, "float32") * keep_fraction), "int32")
    k = ops.maximum(k, 1)
    ranked = ops.where(active, pair_losses, -ops.ones_like(pair_losses))
    descending = ops.flip(ops.sort(ranked), axis=0)
    threshold = ops.take(descending, k - 1)
    return ops.logical_and(active, ops.greater_equal(pair_losses, threshold))


@keras.saving.register_keras_serializable(package="prectr_tf")
class PairwiseDebiasLoss(MaskedLoss):
    """Weighted, clipped, truncated pairwise hinge between anchors and their
    hard negatives.

    Args:
        margin: m, the required score gap s(x) - s(x̃) (**[ours]** default 1.0,
            for logit scores; use a smaller one for probability scores).
        max_loss: cap of a pair's hinge (margin clipping); `None` disables it.
            Default `2 * margin`.
        keep_fraction: share of the violating pairs kept by dynamic
            truncation, in (0, 1]; 1.0 keeps every pair with hinge > 0.
            Default 0.5 **[ours]**.
        reduction: default `"sum_over_batch_size"` = (w-weighted) sum over the
            kept pairs divided by their number; `"sum"` to normalise yourself
            (e.g. by the number of anchors); see `masked_loss.reduce_masked`.
        name: loss name, default `"debias_loss"`.
        dtype: computation dtype.

    Call args:
        y_true: anchor mask `[B]` (bool or 0/1): which rows are anchors with a
            hard negative; `None` means every row.
        y_pred: dict `{"anchor": s(x) [B], "negative": s(x̃) [B]}` or a
            `[B, 2]` tensor `(s(x), s(x̃))`.
        sample_weight: w(x), `[B]` per-anchor weights (default 1).

    Returns:
        Scalar loss (`[B]` with `reduction="none"`, 0 on dropped pairs). A
        batch with no anchor, or with every pair separated, gives 0.

    Example:
    >>> import numpy as np
    >>> loss = PairwiseDebiasLoss(margin=1.0, max_loss=2.0, keep_fraction=0.5)
    >>> scores = np.array([[2.0, 0.5], [0.0, 0.5], [0.0, 0.8], [0.0, 3.0]], "float32")
    >>> # hinges 0 (dropped), 1.5, 1.8, 4.0 -> hardest ceil(1.5)=2: 4.0, 1.8
    >>> # clipped to 2.0, 1.8 -> mean 1.9
    >>> round(float(loss([1, 1, 1, 1], scores)), 4)
    1.9
    """

    def __init__(self, margin=1.0, max_loss="default", keep_fraction=0.5,
                 reduction="sum_over_batch_size", name="debias_loss", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if margin <= 0:
            raise ValueError(f"margin must be > 0, got {margin}")
        if max_loss == "default":
            max_loss = 2.0 * margin
        if max_loss is not None and max_loss <= 0:
            raise ValueError(f"max_loss must be > 0 or None, got {max_loss}")
        if not 0.0 < keep_fraction <= 1.0 or math.isnan(keep_fraction):
            raise ValueError(f"keep_fraction must be in (0, 1], got {keep_fraction}")
        self.margin = float(margin)
        self.max_loss = None if max_loss is None else float(max_loss)
        self.keep_fraction = float(keep_fraction)

    def pairwise_loss(self, score_diff):
        """Per-pair loss of s(x) - s(x̃); the hinge max(0, m - diff)."""
        return ops.relu(self.margin - score_diff)

    def compute_unreduced_loss(self, y_true, y_pred):
        anchor, negative = split_pair_scores(y_pred)
        if y_true is None:
            is_anchor = ops.ones_like(anchor, dtype="bool")
        else:
            is_anchor = ops.greater(flatten_rows(y_true, anchor.dtype), 0.0)
        pair_losses = self.pairwise_loss(anchor - negative)
        active = ops.logical_and(is_anchor, ops.greater(pair_losses, 0.0))
        keep = truncation_mask(pair_losses, active, self.keep_fraction)
        if self.max_loss is not None:
            pair_losses = ops.minimum(pair_losses, self.max_loss)
        return ops.where(keep, pair_losses, ops.zeros_like(pair_losses)), keep

    def get_config(self):
        config = super().get_config()
        config.update({"margin": self.margin, "max_loss": self.max_loss,
                       "keep_fraction": self.keep_fraction})
        return config
