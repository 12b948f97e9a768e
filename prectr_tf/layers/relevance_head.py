"""`RelevanceHead`: the relevance (RSL) head, r → K relevance logits (DESIGN §4.2).

p = softmax(logits) is the distribution over the K relevance levels that the
click fusion (`ConditionalClickFusion`) weighs the per-level click
probabilities with, and that the masked relevance cross-entropy trains.
"""

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="prectr_tf")
class RelevanceHead(keras.layers.Layer):
    """MLP over the relevance representation r (plus optional features) → K logits.

    In PRECTR v1 (frozen encoder) this MLP is the only trainable part of the
    relevance path ("Emb+MLP"), so it carries the whole adaptation; keep at
    least one hidden layer there.

    Args:
        num_levels: K, the number of relevance levels (paper: 4).
        hidden_units: widths of the hidden layers (`()` for a linear head).
        activation: activation of the hidden layers.
        dropout: dropout rate after each hidden layer.

    Call arguments:
        r: float `[B, d]`, the encoder's `[CLS]` vector.
        features: optional float `[B, f]` extra relevance features,
            concatenated to r. Give it on every call or on none: the first
            call fixes the MLP's input width.
        training: Python bool.

    Returns:
        relevance logits, float `[B, num_levels]`.

    Example:
    >>> head = RelevanceHead(num_levels=4)
    >>> tuple(head(ops.ones((2, 64))).shape)
    (2, 4)
    """

    def __init__(self, num_levels=4, hidden_units=(64,), activation="relu", dropout=0.0,
                 **kwargs):
        super().__init__(**kwargs)
        if num_levels < 2:
            raise ValueError(f"num_levels must be >= 2, got {num_levels}")
        self.num_levels = num_levels
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.activation = keras.activations.get(activation)
        self.dropout = dropout
        self.hidden_layers = [keras.layers.Dense(units, activation=self.activation,
                                                 name=f"hidden_{i}")
                              for i, units in enumerate(self.hidden_units)]
        self.dropout_layers = [keras.layers.Dropout(dropout, name=f"dropout_{i}")
                               for i in range(len(self.hidden_units))]
        self.output_layer = keras.layers.Dense(num_levels, name="logits")

    def build(self, r_shape, features_shape=None):
        width = r_shape[-1] + (features_shape[-1] if features_shape is not None else 0)
        for layer in self.hidden_layers:
            layer.build((None, width))
            width = layer.units
        self.output_layer.build((None, width))
        self.built = True

    def load_head(self, other):
        """Take the weights of `other`, a head of the same widths over r
        alone; this head's extra feature inputs get zero weights, so both
        compute the same logits until training moves them.

        Example:
        >>> small, wide = RelevanceHead(), RelevanceHead()
        >>> r, extra = ops.ones((2, 8)), ops.ones((2, 3))
        >>> _ = small(r), wide(r, extra)
        >>> wide.load_head(small)
        >>> bool(ops.all(ops.isclose(wide(r, extra), small(r))))
        True
        """
        weights = other.get_weights()
        mine = self.get_weights()
        if len(weights) != len(mine) or any(
                a.shape[1:] != b.shape[1:] for a, b in zip(weights, mine)):
            raise ValueError(f"{other.name} and {self.name} differ in widths: "
                             f"{[w.shape for w in weights]} vs {[w.shape for w in mine]}")
        kernel = np.zeros_like(mine[0])
        if weights[0].shape[0] > kernel.shape[0]:
            raise ValueError(f"{other.name} reads more inputs than {self.name}")
        kernel[:weights[0].shape[0]] = weights[0]
        self.set_weights([kernel] + weights[1:])

    def call(self, r, features=None, training=None):
        x = r if features is None else ops.concatenate(
            [r, ops.cast(features, r.dtype)], axis=-1)
        for dense, dropout in zip(self.hidden_layers, self.dropout_layers):
            x = dropout(dense(x), training=training)
        return self.output_layer(x)

    def compute_output_shape(self, r_shape, features_shape=None):
        return (r_shape[0], self.num_levels)

    def get_config(self):
        config = super().get_config()
        config.update({
            "num_levels": self.num_levels,
            "hidden_units": list(self.hidden_units),
            "activation": keras.activations.serialize(self.activation),
            "dropout": self.dropout,
        })
        return config
