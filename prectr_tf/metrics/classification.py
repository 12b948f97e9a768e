"""Masked pointwise metrics: click log loss, relevance accuracy and macro-F1.

Rows whose label is -1 are left out (`masked.masked_labels`). All three are
streaming with constant memory and run under XLA.
"""

import keras
from keras import ops

from prectr_tf.metrics.masked import MaskedMetric, masked_labels, split_y_true


def log_loss(name="log_loss", label_key="labels"):
    """Mean binary cross-entropy of P(click) over labelled rows.

    `y_pred` are probabilities `[B]`, clipped to [1e-7, 1 - 1e-7] (Keras'
    epsilon). Returns a `MaskedMetric` around `keras.metrics.BinaryCrossentropy`.

    Example:
    >>> m = log_loss()
    >>> m.update_state([1, 0, -1], [0.8, 0.3, 0.5])
    >>> round(float(m.result()), 4)  # (-log .8 - log .7) / 2
    0.2899
    """
    return MaskedMetric(keras.metrics.BinaryCrossentropy(name=name), label_key=label_key, name=name)


def relevance_accuracy(name="relevance_accuracy", label_key="labels"):
    """Share of labelled rows whose argmax relevance level is the label.

    `y_pred`: `[B, K]` probabilities or logits. Returns a `MaskedMetric`
    around `keras.metrics.SparseCategoricalAccuracy`.

    Example:
    >>> m = relevance_accuracy()
    >>> m.update_state([2, 0, -1], [[0.1, 0.2, 0.7], [0.1, 0.8, 0.1], [0.9, 0.0, 0.1]])
    >>> float(m.result())
    0.5
    """
    return MaskedMetric(keras.metrics.SparseCategoricalAccuracy(name=name),
                        label_key=label_key, name=name)


@keras.saving.register_keras_serializable(package="prectr_tf")
class RelevanceMacroF1(keras.metrics.Metric):
    """Macro-F1 over the K relevance levels, unlabelled rows masked.

    Keeps a weighted K×K confusion matrix (streaming, exact). F1 of level c =
    2·TP / (2·TP + FP + FN); the macro average runs over the levels that occur
    in the labels or the predictions — sklearn's `f1_score(average="macro")`
    with its default `labels`. 0 before any labelled row.

    Args:
        num_levels: K.
        label_key: key of the relevance labels when `y_true` is a dict.
        name: default `"relevance_macro_f1"`.
        dtype: dtype of the state and result.

    Call args (`update_state`):
        y_true: `[B]` levels in [0, K), -1 unlabelled (or a dict).
        y_pred: `[B, K]` probabilities or logits (argmax is the prediction).
        sample_weight: optional `[B]`.

    Example:
    >>> m = RelevanceMacroF1(num_levels=3)
    >>> m.update_state([0, 1, 1, -1], [[.9, .1, 0], [.2, .7, .1], [.6, .3, .1], [0, 0, 1]])
    >>> round(float(m.result()), 4)  # F1: level 0 2/3, level 1 2/3; level 2 absent
    0.6667
    """

    def __init__(self, num_levels=4, label_key="labels", name="relevance_macro_f1", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.num_levels = int(num_levels)
        self.label_key = label_key
        self.confusion = self.add_variable(
            shape=(self.num_levels, self.num_levels), initializer="zeros", name="confusion")

    def update_state(self, y_true, y_pred, sample_weight=None):
        labels, _ = split_y_true(y_true, self.label_key)
        labels, weights = masked_labels(labels, sample_weight, self.dtype)
        y_pred = ops.reshape(ops.convert_to_tensor(y_pred), (-1, self.num_levels))
        truth = ops.one_hot(ops.cast(labels, "int32"), self.num_levels, dtype=self.dtype)
        predicted = ops.one_hot(ops.argmax(y_pred, axis=-1), self.num_levels, dtype=self.dtype)
        self.confusion.assign_add(ops.matmul(ops.transpose(truth * weights[:, None]), predicted))

    def result(self):
        tp = ops.diagonal(self.confusion)
        support = ops.sum(self.confusion, axis=1)
        predicted = ops.sum(self.confusion, axis=0)
        f1 = ops.divide_no_nan(2.0 * tp, support + predicted)
        present = ops.cast(ops.greater(support + predicted, 0.0), self.dtype)
        return ops.divide_no_nan(ops.sum(f1 * present), ops.sum(present))

    def get_config(self):
        return {"num_levels": self.num_levels, "label_key": self.label_key,
                "name": self.name, "dtype": self.dtype}
