"""Label masking shared by every metric: a missing label (-1) drops the row.

Every metric of the package takes `y_true` either as a labels tensor or as a
dict of row-aligned tensors: `"labels"` plus the side columns a metric needs
(`"user_id"`, `"query_id"`, `"request_id"`, `"user_event_count"`, ... — the
metric is told which key to read). `split_y_true` and `masked_labels` are the
one place where the dict is read and where rows with a negative label are
turned into weight 0; `MaskedMetric` applies them in front of any Keras metric.
"""

import keras
from keras import ops


def split_y_true(y_true, label_key="labels"):
    """`(labels, side_columns)` from a labels tensor or a dict of columns."""
    if isinstance(y_true, dict):
        if label_key not in y_true:
            raise ValueError(f"y_true has no {label_key!r} entry; keys: {sorted(y_true)}")
        side = {k: v for k, v in y_true.items() if k != label_key}
        return y_true[label_key], side
    return y_true, {}


def masked_labels(labels, sample_weight=None, dtype="float32"):
    """Flattens labels to `[B]` and folds the label mask into the weights.

    Args:
        labels: `[B]` or `[B, 1]`; negative values (-1) mean "missing".
        sample_weight: optional scalar, `[B]` or `[B, 1]`.
        dtype: dtype of the returned weights.

    Returns:
        `(labels [B], weights [B])`: missing labels replaced by 0 (a valid
        class, so no metric sees -1) and their weight set to 0.

    Example:
    >>> labels, weights = masked_labels([1, -1, 0], [2.0, 2.0, 2.0])
    >>> labels.numpy().tolist(), weights.numpy().tolist()
    ([1, 0, 0], [2.0, 0.0, 2.0])
    """
    labels = ops.reshape(ops.convert_to_tensor(labels), (-1,))
    valid = ops.greater_equal(labels, ops.cast(0, labels.dtype))
    weights = ops.cast(valid, dtype)
    if sample_weight is not None:
        sample_weight = ops.reshape(ops.convert_to_tensor(sample_weight, dtype), (-1,))
        weights = weights * sample_weight
    labels = ops.where(valid, labels, ops.zeros_like(labels))
    return labels, weights


def flat_predictions(y_pred):
    """`[B]` for `[B]`/`[B, 1]` scores; `[B, K]` class scores unchanged."""
    y_pred = ops.convert_to_tensor(y_pred)
    if len(y_pred.shape) == 2 and y_pred.shape[-1] == 1 or len(y_pred.shape) == 0:
        return ops.reshape(y_pred, (-1,))
    return y_pred


@keras.saving.register_keras_serializable(package="prectr_tf")
class MaskedMetric(keras.metrics.Metric):
    """Any Keras metric, with rows whose label is -1 left out.

    Masked rows get sample weight 0 (their label is replaced by 0, so the
    wrapped metric never sees -1); they count in neither numerator nor
    denominator. Binary scores are passed as `[B, 1]` with labels `[B, 1]`,
    class scores `[B, K]` with labels `[B, 1]`, weights as `[B]`.

    Args:
        metric: a `keras.metrics.Metric` instance (or its serialized config).
        label_key: key of the labels when `y_true` is a dict.
        name: defaults to the wrapped metric's name.
        dtype: defaults to the wrapped metric's dtype.

    Call args (`update_state`):
        y_true: labels `[B]` (-1 missing) or a dict holding them under
            `label_key`.
        y_pred: `[B]` scores or `[B, K]` class scores.
        sample_weight: optional `[B]`.

    Example:
    >>> m = MaskedMetric(keras.metrics.BinaryAccuracy(name="acc"))
    >>> m.update_state({"labels": [1, 0, -1]}, [0.9, 0.8, 0.1])
    >>> float(m.result()), m.name
    (0.5, 'acc')
    """

    def __init__(self, metric, label_key="labels", name=None, dtype=None):
        if isinstance(metric, dict):
            metric = keras.metrics.deserialize(metric)
        if not isinstance(metric, keras.metrics.Metric):
            raise TypeError(f"metric must be a keras.metrics.Metric, got {metric!r}")
        super().__init__(name=name or metric.name, dtype=dtype or metric.dtype)
        self.metric = metric
        self.label_key = label_key

    def update_state(self, y_true, y_pred, sample_weight=None):
        labels, _ = split_y_true(y_true, self.label_key)
        labels, weights = masked_labels(labels, sample_weight, self.dtype)
        y_pred = flat_predictions(y_pred)
        if len(y_pred.shape) == 1:
            y_pred = ops.expand_dims(y_pred, -1)
        self.metric.update_state(ops.expand_dims(labels, -1), y_pred, sample_weight=weights)

    def result(self):
        return self.metric.result()

    def reset_state(self):
        self.metric.reset_state()

    def get_config(self):
        return {"metric": keras.metrics.serialize(self.metric), "label_key": self.label_key,
                "name": self.name, "dtype": self.dtype}
