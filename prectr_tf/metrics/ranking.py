"""Per-query ranking metrics: keras-rs NDCG@k and MRR over flat impressions.

keras-rs ranking metrics take padded lists `[num_lists, list_size]`; the
model scores flat impressions. `ListwiseMetric` groups the flat rows by a list
id (request or query, `grouping.pad_lists`) and feeds the lists to the wrapped
keras-rs metric. Conventions:

* rows with label -1 or weight 0 are left out;
* lists without any positive label are skipped by default (their NDCG is
  0/0; keras-rs would count them as 0);
* keras-rs breaks score ties at random (its `sort_by_scores` shuffles ties
  whenever a mask is given), as does the numpy reference;
* NDCG uses keras-rs' gain 2^y - 1 and discount 1/log2(rank + 1); MRR counts
  labels >= 1 as relevant.

`exact=True` (default) accumulates the rows and groups them in `result()`, so
a list may span batches (evaluation only, no XLA); `exact=False` groups each
batch on its own (lists cut at batch boundaries become separate lists).
"""

import keras
import keras_rs
import tensorflow as tf

from prectr_tf.metrics.buffer import RowBuffer
from prectr_tf.metrics.grouping import ids_to_int64, pad_lists
from prectr_tf.metrics.masked import flat_predictions, masked_labels, split_y_true


@keras.saving.register_keras_serializable(package="prectr_tf")
class ListwiseMetric(keras.metrics.Metric):
    """A keras-rs ranking metric over flat impressions grouped into lists.

    Args:
        metric: a named keras-rs ranking metric (e.g.
            `keras_rs.metrics.NDCG(k=10, name="ndcg_at_10")`) or its config.
        list_key: key of the list ids in the `y_true` dict (`"request_id"`
            for the per-request ranking, `"query_id"` per query).
        label_key: key of the graded labels (gains) in the `y_true` dict.
        exact: accumulate across batches (True) or group per batch (False).
        skip_lists_without_positive: leave out lists with no label > 0.
        name: defaults to the wrapped metric's name.
        dtype: result dtype.

    Call args (`update_state`):
        y_true: dict `{label_key: [B] labels >= 0 (-1 missing), list_key: [B]}`.
        y_pred: `[B]` scores.
        sample_weight: optional `[B]` item weights (keras-rs semantics).

    Example:
    >>> m = ndcg(k=2)
    >>> m.update_state({"labels": [0, 1, 1, 0], "request_id": [7, 7, 8, 8]},
    ...                [0.9, 0.1, 0.8, 0.3])
    >>> round(float(m.result()), 4)  # list 7: 1/log2(3); list 8: 1
    0.8155
    """

    # Read by tasks/models deciding on `jit_compile`: this state cannot be XLA-compiled.
    supports_jit = False

    def __init__(self, metric, list_key="request_id", label_key="labels", exact=True,
                 skip_lists_without_positive=True, name=None, dtype=None):
        if isinstance(metric, dict):
            metric = keras.metrics.deserialize(metric)
        super().__init__(name=name or metric.name, dtype=dtype)
        self.metric = metric
        self.list_key = list_key
        self.label_key = label_key
        self.exact = bool(exact)
        self.skip_lists_without_positive = bool(skip_lists_without_positive)
        if self.exact:
            self._rows = RowBuffer({"list": "int64", "label": "float32",
                                    "score": "float32", "weight": "float32"})

    def _rows_of(self, y_true, y_pred, sample_weight):
        labels, side = split_y_true(y_true, self.label_key)
        if self.list_key not in side:
            raise ValueError(f"{self.name} needs y_true[{self.list_key!r}]; got {sorted(side)}")
        labels, weights = masked_labels(labels, sample_weight, "float32")
        keep = weights > 0
        scores = tf.reshape(tf.cast(flat_predictions(y_pred), tf.float32), [-1])
        lists = ids_to_int64(side[self.list_key])
        return [tf.boolean_mask(x, keep) for x in (lists, tf.cast(labels, tf.float32), scores, weights)]

    def _list_inputs(self, lists, labels, scores, weights):
        (labels, scores, weights), mask = pad_lists(lists, [labels, scores, weights])
        if self.skip_lists_without_positive:
            has_positive = tf.reduce_any((labels > 0) & mask, axis=1, keepdims=True)
            weights = weights * tf.cast(has_positive, weights.dtype)
        return {"labels": labels, "mask": mask}, scores, weights

    def update_state(self, y_true, y_pred, sample_weight=None):
        lists, labels, scores, weights = self._rows_of(y_true, y_pred, sample_weight)
        if self.exact:
            self._rows.append(list=lists, label=labels, score=scores, weight=weights)
            return

        def update():
            self.metric.update_state(*self._list_inputs(lists, labels, scores, weights))
            return tf.constant(True)

        tf.cond(tf.size(lists) > 0, update, lambda: tf.constant(False))

    def result(self):
        if not self.exact:
            return tf.cast(self.metric.result(), self.dtype)
        rows = self._rows.read()

        def compute():
            fresh = [tf.zeros_like(v) for v in self.metric.variables]
            state = self.metric.stateless_update_state(fresh, *self._list_inputs(
                rows["list"], rows["label"], rows["score"], rows["weight"]))
            return tf.cast(self.metric.stateless_result(state), self.dtype)

        return tf.cond(self._rows.size() > 0, compute, lambda: tf.zeros([], self.dtype))

    def reset_state(self):
        if self.exact:
            self._rows.reset()
        else:
            self.metric.reset_state()

    def get_config(self):
        return {"metric": keras.metrics.serialize(self.metric), "list_key": self.list_key,
                "label_key": self.label_key, "exact": self.exact,
                "skip_lists_without_positive": self.skip_lists_without_positive,
                "name": self.name, "dtype": self.dtype}


def ndcg(k=10, list_key="request_id", label_key="labels", exact=True, name=None, seed=None):
    """NDCG@k per list, named `ndcg_at_<k>` (keras-rs `NDCG`)."""
    name = name or f"ndcg_at_{k}"
    return ListwiseMetric(keras_rs.metrics.NDCG(k=k, seed=seed, name=name),
                          list_key=list_key, label_key=label_key, exact=exact, name=name)


def mrr(k=None, list_key="request_id", label_key="labels", exact=True, name=None, seed=None):
    """Mean reciprocal rank of the first label >= 1 per list, named `mrr`
    (`mrr_at_<k>` with a cut-off; keras-rs `MeanReciprocalRank`)."""
    name = name or ("mrr" if k is None else f"mrr_at_{k}")
    return ListwiseMetric(keras_rs.metrics.MeanReciprocalRank(k=k, seed=seed, name=name),
                          list_key=list_key, label_key=label_key, exact=exact, name=name)
