"""Exact grouped metrics at evaluation, off the training step.

A model with `GroupedEvaluation` collects, on every test step, the columns
the grouped metrics read — score, click, sample weight, user / query /
request ids (hashed to int64 in the graph) and `user_event_count` — as numpy
arrays on the host (`tf.numpy_function`, one per replica under
`tf.distribute`). At the end of `evaluate` (and of `fit`'s validation) it
computes GAUC by user and by query, NDCG@10 and MRR per request, and each of
them per user-activity bucket, once, with `prectr_tf.metrics.predictions`:
O(N) memory, O(N log N) time, nothing per batch. The train step does none of
this, so it can be XLA-compiled; the test step holds the host call and is
built without XLA.

Under `tf.distribute` the rows of every replica, on every worker, are
gathered (`gathered_rows`) before they reach the host, so the grouped
metrics of a distributed evaluation equal the single-process ones.
"""

import keras
import numpy as np
import tensorflow as tf

from prectr_tf.data.activity import ACTIVITY_BUCKETS
from prectr_tf.metrics.predictions import evaluate_predictions

# The metrics `evaluate` adds from the collected rows, each also per bucket
# as `<name>/<bucket>`.
GROUPED_METRICS = ("gauc_user", "gauc_query", "ndcg_at_10", "mrr")
ID_COLUMNS = ("user_id", "query_id", "request_id")
COLUMNS = ("score", "click", "sample_weight") + ID_COLUMNS + ("user_event_count",)


def ids_to_int64(ids):
    """`[B]` int64 keys of string or integer ids. Strings are hashed
    (`to_hash_bucket_fast` into [0, 2^63 - 1): two distinct ids collide with
    probability ~1e-19), so the host stores 8 bytes per id."""
    ids = tf.reshape(tf.convert_to_tensor(ids), [-1])
    if ids.dtype == tf.string:
        return tf.strings.to_hash_bucket_fast(ids, 2**63 - 1)
    return tf.cast(ids, tf.int64)


class EvaluationRows:
    """Host-side store of one evaluation's rows: a list of per-batch numpy
    arrays per column, concatenated once by `columns()`.

    Example:
    >>> rows = EvaluationRows()
    >>> _ = rows.append(np.array([.9, .1]), np.array([1, 0]), np.ones(2), np.array([7, 7]),
    ...             np.array([1, 1]), np.array([3, 3]), np.array([0, 0]))
    >>> rows.columns()["score"].tolist(), len(rows)
    ([0.9, 0.1], 2)
    """

    def __init__(self):
        self.reset()

    def reset(self):
        self._parts = {name: [] for name in COLUMNS}

    def append(self, *arrays):
        for name, values in zip(COLUMNS, arrays):
            self._parts[name].append(np.asarray(values).reshape(-1))
        return np.zeros((), np.int32)

    def append_if(self, keep, *arrays):
        """`append` when `keep` (see `gathered_rows`)."""
        if keep:
            self.append(*arrays)
        return np.zeros((), np.int32)

    def __len__(self):
        return sum(len(part) for part in self._parts["score"])

    def columns(self):
        """dict `column -> [N]` array of every row appended since `reset`."""
        return {name: np.concatenate(parts) if parts else np.zeros(0)
                for name, parts in self._parts.items()}


def gathered_rows(columns):
    """Under `tf.distribute` with several replicas, in replica context: each
    column gathered from every replica of every worker (`all_gather`), and
    whether this replica is the first of its worker — the one that keeps
    them, so that every worker holds each row once (its grouped metrics are
    the whole evaluation's, as a single process computes them). Otherwise
    the columns as they are, kept.
    """
    strategy = tf.distribute.get_strategy()
    if strategy.num_replicas_in_sync == 1:
        return columns, tf.constant(True)
    context = tf.distribute.get_replica_context()
    local_replicas = len(strategy.extended.worker_devices)
    keep = tf.equal(context.replica_id_in_sync_group % local_replicas, 0)
    return [context.all_gather(column, axis=0) for column in columns], keep


def grouped_metrics(columns):
    """The `GROUPED_METRICS` (and per bucket) of collected rows; NaN where
    undefined (no group with both classes, no list with a click)."""
    out = evaluate_predictions(columns, score_key="score", label_key="click",
                               rank_label_key="click", weight_key="sample_weight", k=10)
    names = GROUPED_METRICS + tuple(f"{m}/{b}" for m in GROUPED_METRICS for b in ACTIVITY_BUCKETS)
    return {name: out.get(name, float("nan")) for name in names}


class GroupedEvaluation:
    """Mixin of a `keras.Model` (listed before it) whose call returns
    `{"score": [B]}`, whose labels are the clicks (or a dict with `"click"`) and whose
    features carry `ID_COLUMNS` and `user_event_count`: `evaluate` returns the
    model's streaming metrics plus `grouped_metrics` of every evaluated row.
    """

    @property
    def evaluation_rows(self):
        # Created on first use and kept off Keras' attribute tracking.
        if "_evaluation_rows" not in self.__dict__:
            self.__dict__["_evaluation_rows"] = EvaluationRows()
        return self.__dict__["_evaluation_rows"]

    def test_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        y_pred = self(x, training=False)
        self.compute_loss(x, y, y_pred, sample_weight, training=False)
        score = tf.reshape(tf.cast(y_pred["score"], tf.float64), [-1])
        weight = (tf.ones_like(score) if sample_weight is None else tf.broadcast_to(
            tf.reshape(tf.cast(sample_weight, tf.float64), [-1]), tf.shape(score)))
        clicks = y["click"] if isinstance(y, dict) else y
        columns = ([score, tf.cast(tf.reshape(clicks, [-1]), tf.int64), weight]
                   + [ids_to_int64(x[name]) for name in ID_COLUMNS]
                   + [tf.cast(tf.reshape(x["user_event_count"], [-1]), tf.int64)])
        columns, keep = gathered_rows(columns)
        tf.numpy_function(self.evaluation_rows.append_if, [keep] + columns, tf.int32,
                          stateful=True, name="collect_evaluation_rows")
        return self.compute_metrics(x, y, y_pred, sample_weight)

    def make_test_function(self, force=False):
        # The host call cannot be XLA-compiled; only the train step is.
        jit_compile = self.jit_compile
        self.jit_compile = False
        try:
            return super().make_test_function(force)
        finally:
            self.jit_compile = jit_compile

    def evaluate(self, *args, return_dict=False, **kwargs):
        """Keras `evaluate`; the result also holds `grouped_metrics`."""
        self.evaluation_rows.reset()
        try:
            logs = super().evaluate(*args, return_dict=True, **kwargs)
            logs.update(grouped_metrics(self.evaluation_rows.columns()))
        finally:
            self.evaluation_rows.reset()
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values
