"""`GroupAUC`: exact group AUC (GAUC) by user or by query, streaming.

Definition (DESIGN §8; FuxiCTR's gAUC, with weights):

    GAUC = Σ_g n_g · AUC_g / Σ_g n_g   over the groups g with both classes,

n_g the impressions of group g (the sum of their sample weights), AUC_g the
ROC AUC of the group's rows — sklearn's `roc_auc_score`: P(s_pos > s_neg) with
a tie counted 1/2 (equivalently, average ranks), pairs weighted by
w_pos · w_neg. Groups with one class only have no AUC and are left out of
numerator and denominator. With no group key, the one group is the whole
stream: the exact AUC.
"""

import keras
import tensorflow as tf

from prectr_tf.metrics.buffer import RowBuffer
from prectr_tf.metrics.grouping import group_index, ids_to_int64
from prectr_tf.metrics.masked import flat_predictions, masked_labels, split_y_true


def grouped_auc(groups, labels, scores, weights=None):
    """GAUC of flat rows (float64 arithmetic).

    Args:
        groups: `[N]` group ids (strings or ints).
        labels: `[N]` 0/1 (positive: > 0).
        scores: `[N]` scores; equal scores in a group are ties.
        weights: optional `[N]` non-negative weights.

    Returns:
        `(gauc, num_groups_used)`; gauc is 0 when no group has both classes.

    Example:
    >>> gauc, used = grouped_auc(["u", "u", "u", "v", "w", "w"],
    ...                          [1, 0, 0, 1, 1, 0], [0.9, 0.5, 0.9, 0.3, 0.2, 0.8])
    >>> round(float(gauc), 4), int(used)  # u: (1 + .5) / 2, w: 0 -> (3·.75 + 0) / 5
    (0.45, 2)
    """
    index, num_groups = group_index(groups)
    labels = tf.cast(tf.reshape(labels, [-1]) > 0, tf.float64)
    scores = tf.cast(tf.reshape(scores, [-1]), tf.float64)
    weights = tf.ones_like(scores) if weights is None else tf.cast(tf.reshape(weights, [-1]), tf.float64)
    # Sort by (group, score): a stable sort on the score, then on the group.
    order = tf.argsort(scores, stable=True)
    order = tf.gather(order, tf.argsort(tf.gather(index, order), stable=True))
    g, s = tf.gather(index, order), tf.gather(scores, order)
    pos_w = tf.gather(weights * labels, order)
    neg_w = tf.gather(weights * (1.0 - labels), order)
    # Runs of equal (group, score): the ties.
    new_run = tf.concat([[True], (g[1:] != g[:-1]) | (s[1:] != s[:-1])], 0)[:tf.size(g)]
    run = tf.cumsum(tf.cast(new_run, tf.int32)) - 1
    run_pos = tf.math.segment_sum(pos_w, run)
    run_neg = tf.math.segment_sum(neg_w, run)
    run_group = tf.math.segment_max(g, run)
    # Negative weight strictly below each run, within its group.
    below = tf.cumsum(run_neg, exclusive=True)
    below -= tf.gather(tf.math.unsorted_segment_min(below, run_group, num_groups), run_group)
    pairs = tf.math.unsorted_segment_sum(run_pos * (below + 0.5 * run_neg), run_group, num_groups)
    group_pos = tf.math.unsorted_segment_sum(run_pos, run_group, num_groups)
    group_neg = tf.math.unsorted_segment_sum(run_neg, run_group, num_groups)
    both = (group_pos > 0) & (group_neg > 0)
    auc = tf.math.divide_no_nan(pairs, group_pos * group_neg)
    size = tf.where(both, group_pos + group_neg, tf.zeros_like(group_pos))
    return tf.math.divide_no_nan(tf.reduce_sum(auc * size), tf.reduce_sum(size)), \
        tf.reduce_sum(tf.cast(both, tf.int32))


@keras.saving.register_keras_serializable(package="prectr_tf")
class GroupAUC(keras.metrics.Metric):
    """Exact streaming GAUC (impression-weighted mean of per-group AUC).

    GAUC = Σ_g n_g · AUC_g / Σ_g n_g over the groups with both a positive and
    a negative labelled row; n_g = the group's labelled impressions (sum of
    sample weights); AUC_g as sklearn's `roc_auc_score` (ties: average rank).

    Every labelled row with positive weight is accumulated (group, label,
    score, weight — 32 bytes a row) and `result()` sorts them, so the value is
    exact across batches and groups may span batches. Evaluation only: the
    state grows with the data, `result()` costs O(N log N), and it does not
    run under XLA (compile the evaluating model with `jit_compile=False`).

    Args:
        group_key: key of the group ids in the `y_true` dict (e.g.
            `"user_id"` or `"query_id"`); `None`: one group (exact AUC).
        label_key: key of the click labels in the `y_true` dict.
        name: default `"gauc_<group_key>"` (`"auc"` without a group key).
        dtype: result dtype.

    Call args (`update_state`):
        y_true: dict `{label_key: [B] 0/1/-1, group_key: [B] ids}`
            (a plain labels tensor when `group_key` is None).
        y_pred: `[B]` scores.
        sample_weight: optional `[B]`.

    Returns (`result`): scalar GAUC; 0 when no group has both classes.

    Example:
    >>> m = GroupAUC(group_key="user_id", name="gauc_user")
    >>> m.update_state({"labels": [1, 0, -1], "user_id": ["a", "a", "a"]}, [0.9, 0.1, 0.5])
    >>> m.update_state({"labels": [0, 1], "user_id": ["a", "b"]}, [0.95, 0.4])
    >>> round(float(m.result()), 4)  # user a: (1 + 0) / 2; user b: one class
    0.5
    """

    # Read by tasks/models deciding on `jit_compile`: this state cannot be XLA-compiled.
    supports_jit = False

    def __init__(self, group_key="user_id", label_key="labels", name=None, dtype=None):
        super().__init__(name=name or ("auc" if group_key is None else f"gauc_{group_key}"),
                         dtype=dtype)
        self.group_key = group_key
        self.label_key = label_key
        self._rows = RowBuffer({"group": "int64", "label": "float64",
                                "score": "float64", "weight": "float64"})

    def update_state(self, y_true, y_pred, sample_weight=None):
        labels, side = split_y_true(y_true, self.label_key)
        labels, weights = masked_labels(labels, sample_weight, "float64")
        scores = tf.reshape(flat_predictions(y_pred), [-1])
        if self.group_key is None:
            groups = tf.zeros_like(labels, dtype=tf.int64)
        else:
            if self.group_key not in side:
                raise ValueError(f"GroupAUC needs y_true[{self.group_key!r}]; got {sorted(side)}")
            groups = ids_to_int64(side[self.group_key])
        keep = weights > 0
        self._rows.append(group=tf.boolean_mask(groups, keep),
                          label=tf.boolean_mask(labels, keep),
                          score=tf.boolean_mask(scores, keep),
                          weight=tf.boolean_mask(weights, keep))

    def result(self):
        rows = self._rows.read()
        gauc, _ = grouped_auc(rows["group"], rows["label"], rows["score"], rows["weight"])
        return tf.cast(gauc, self.dtype)

    def reset_state(self):
        self._rows.reset()

    def get_config(self):
        return {"group_key": self.group_key, "label_key": self.label_key,
                "name": self.name, "dtype": self.dtype}
