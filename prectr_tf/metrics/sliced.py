"""`SlicedMetric`: any metric of the package per user-activity bucket.

The buckets are `prectr_tf.data.activity`'s (cold: no earlier impression,
low: 1..low_max, high: more), read from `user_event_count`. A row outside a
bucket gets sample weight 0 in that bucket's copy of the metric, which every
metric here treats as "not seen". Results are reported as `<metric>/<bucket>`.
"""

import keras
from keras import ops

from prectr_tf.data.activity import ACTIVITY_BUCKETS, DEFAULT_LOW_MAX


def activity_bucket_tensor(event_count, low_max=DEFAULT_LOW_MAX):
    """`activity.activity_bucket` on tensors: 0 cold, 1 low, 2 high (int32).

    Example:
    >>> activity_bucket_tensor([0, 1, 50, 51]).numpy().tolist()
    [0, 1, 1, 2]
    """
    counts = ops.reshape(ops.convert_to_tensor(event_count), (-1,))
    zero = ops.cast(0, counts.dtype)
    return ops.where(ops.equal(counts, zero), 0,
                     ops.where(ops.less_equal(counts, ops.cast(low_max, counts.dtype)), 1, 2))


@keras.saving.register_keras_serializable(package="prectr_tf")
class SlicedMetric(keras.metrics.Metric):
    """Evaluates a copy of `metric` on each user-activity bucket.

    Args:
        metric: a metric of this package or any Keras metric taking
            `(y_true, y_pred, sample_weight)` (or its serialized config); it
            must accept the `y_true` dict (wrap Keras metrics in
            `MaskedMetric`).
        count_key: key of `user_event_count` in the `y_true` dict.
        buckets: bucket names, a subset of `ACTIVITY_BUCKETS`.
        low_max: the largest count still called `low`.
        name: default `"<metric>_by_activity"`.

    Call args (`update_state`):
        y_true: dict with the wrapped metric's entries and `count_key`.
        y_pred, sample_weight: passed through.

    Returns (`result`): dict `{"<metric>/<bucket>": value}`; `model.evaluate`
    and `fit` log each entry.

    Example:
    >>> from prectr_tf.metrics.classification import log_loss
    >>> m = SlicedMetric(log_loss(), buckets=("cold", "high"))
    >>> m.update_state({"labels": [1, 1, 0], "user_event_count": [0, 99, 0]},
    ...                [0.5, 0.9, 0.5])
    >>> {k: round(float(v), 4) for k, v in m.result().items()}
    {'log_loss/cold': 0.6931, 'log_loss/high': 0.1054}
    """

    def __init__(self, metric, count_key="user_event_count", buckets=ACTIVITY_BUCKETS,
                 low_max=DEFAULT_LOW_MAX, name=None, dtype=None):
        if isinstance(metric, dict):
            metric = keras.metrics.deserialize(metric)
        unknown = set(buckets) - set(ACTIVITY_BUCKETS)
        if unknown or not buckets:
            raise ValueError(f"buckets must be a non-empty subset of {ACTIVITY_BUCKETS}, got {buckets}")
        super().__init__(name=name or f"{metric.name}_by_activity", dtype=dtype or metric.dtype)
        self._template = keras.metrics.serialize(metric)
        self.base_name = metric.name
        self.count_key = count_key
        self.buckets = tuple(buckets)
        self.low_max = int(low_max)
        self.sliced = [self._copy(metric, f"{metric.name}/{b}") for b in self.buckets]

    @property
    def supports_jit(self):
        return all(getattr(m, "supports_jit", True) for m in self.sliced)

    @staticmethod
    def _copy(metric, name):
        config = dict(metric.get_config())
        config["name"] = name
        return metric.__class__.from_config(config)

    def update_state(self, y_true, y_pred, sample_weight=None):
        if not isinstance(y_true, dict) or self.count_key not in y_true:
            raise ValueError(f"{self.name} needs a y_true dict with {self.count_key!r}")
        bucket = activity_bucket_tensor(y_true[self.count_key], self.low_max)
        weights = ops.ones_like(bucket, dtype="float32")
        if sample_weight is not None:
            weights = weights * ops.reshape(ops.convert_to_tensor(sample_weight, "float32"), (-1,))
        for name, metric in zip(self.buckets, self.sliced):
            in_bucket = ops.equal(bucket, ACTIVITY_BUCKETS.index(name))
            metric.update_state(y_true, y_pred, sample_weight=weights * ops.cast(in_bucket, "float32"))

    def result(self):
        return {metric.name: metric.result() for metric in self.sliced}

    def reset_state(self):
        for metric in self.sliced:
            metric.reset_state()

    def get_config(self):
        return {"metric": self._template, "count_key": self.count_key,
                "buckets": list(self.buckets), "low_max": self.low_max,
                "name": self.name, "dtype": self.dtype}
