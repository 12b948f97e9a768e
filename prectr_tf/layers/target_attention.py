"""`TargetAttention`: DIN-style attention of one target vector over a sequence.

Used by the base CTR tower (current item over the user's history items,
DESIGN §4.3). Also home of `masked_softmax` and `lengths_to_mask`, which every
attention over padded history lists in the package shares, so all of them
treat padding and empty lists the same way.
"""

import math

import keras
from keras import ops

SCORES = ("mlp", "dot")


def lengths_to_mask(lengths, max_length):
    """Boolean `[B, max_length]` mask, True for the first `lengths[b]` slots.

    Example:
    >>> lengths_to_mask([2, 0], 3).numpy().tolist()
    [[True, True, False], [False, False, False]]
    """
    positions = ops.arange(max_length, dtype="int64")
    return ops.expand_dims(positions, 0) < ops.expand_dims(ops.cast(lengths, "int64"), -1)


def masked_softmax(scores, mask, axis=-1):
    """Softmax over `axis` that gives masked slots weight exactly 0.

    A row whose slots are all masked gets all-zero weights (not NaN, not
    uniform), so attention over an empty history returns a zero vector.
    Computed in float32 so the large negative fill is safe under mixed
    precision.

    Args:
        scores: float tensor.
        mask: bool tensor broadcastable to `scores`; `None` means no mask.
        axis: the axis normalised over.

    Returns:
        weights, same shape and dtype as `scores`.

    Example:
    >>> w = masked_softmax([[0.0, 0.0, 5.0], [1.0, 2.0, 3.0]],
    ...                    [[True, True, False], [False, False, False]])
    >>> w.numpy().tolist()
    [[0.5, 0.5, 0.0], [0.0, 0.0, 0.0]]
    """
    scores = ops.convert_to_tensor(scores)
    dtype = scores.dtype
    scores = ops.cast(scores, "float32")
    if mask is None:
        return ops.cast(ops.softmax(scores, axis=axis), dtype)
    mask = ops.broadcast_to(ops.cast(mask, "bool"), ops.shape(scores))
    weights = ops.softmax(ops.where(mask, scores, ops.full_like(scores, -1e9)), axis=axis)
    # All-masked rows came out uniform; zero them (other rows already have
    # exp(-1e9 - max) == 0 on masked slots).
    return ops.cast(weights * ops.cast(mask, "float32"), dtype)


def mlp(hidden_units, activation, dropout=0.0, name="mlp"):
    """A stack of `Dense(units, activation)` (+ dropout) layers as a list, to
    be applied in order with `apply_mlp`; a plain list keeps the sublayer
    names short and the weights tracked by the owning layer."""
    layers = []
    for i, units in enumerate(hidden_units):
        layers.append(keras.layers.Dense(units, activation=activation, name=f"{name}_{i}"))
        if dropout:
            layers.append(keras.layers.Dropout(dropout, name=f"{name}_dropout_{i}"))
    return layers


def apply_mlp(layers, x, training=None):
    for layer in layers:
        x = layer(x, training=training) if isinstance(layer, keras.layers.Dropout) else layer(x)
    return x


@keras.saving.register_keras_serializable(package="prectr_tf")
class TargetAttention(keras.layers.Layer):
    """Attention of a target `[B, d]` over a masked sequence `[B, L, e]`.

    Scores:
    * `"mlp"` (DIN, Zhou et al. 2018): `s_j = MLP([q, k_j, q - k_j, q * k_j])`
      — learns non-linear relevance of each past item to the target;
    * `"dot"`: `s_j = q . k_j / sqrt(e)` — parameter-free when `d == e`.

    When `d != e` the target is first projected to `e` by a bias-free Dense,
    since both score forms compare `q` and `k_j` elementwise.
    Weights are `masked_softmax(s)`; the output is `sum_j w_j v_j`, exactly
    zero for a row with no unmasked slot.

    Args:
        score: `"mlp"` or `"dot"`.
        hidden_units: hidden layer sizes of the score MLP (`"mlp"` only).
        activation: activation of the score MLP.
        dropout: dropout rate inside the score MLP.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        query: `[B, d]` target vector.
        keys: `[B, L, e]` sequence.
        padding_mask: bool `[B, L]`, True for real slots, False for padding;
            `None` for all real. (Not named `mask`: Keras reserves that name
            for implicit mask propagation.)
        values: `[B, L, v]` pooled with the weights (default: `keys`).
        return_attention_scores: also return the `[B, L]` weights.
        training: Python bool, for dropout.

    Returns:
        `[B, v]` pooled vector (and the `[B, L]` weights if asked).

    Example:
    >>> import numpy as np
    >>> attention = TargetAttention(score="dot")
    >>> out = attention(np.ones((2, 4)), np.ones((2, 3, 4)),
    ...                 padding_mask=np.array([[True, False, False], [False] * 3]))
    >>> out.numpy().tolist()
    [[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]]
    """

    def __init__(self, score="mlp", hidden_units=(32, 16), activation="sigmoid", dropout=0.0,
                 **kwargs):
        super().__init__(**kwargs)
        if score not in SCORES:
            raise ValueError(f"score must be one of {SCORES}, got {score!r}")
        self.score = score
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.activation = activation
        self.dropout = float(dropout)
        self.query_projection = None
        self.score_layers = []
        if score == "mlp":
            self.score_layers = mlp(self.hidden_units, activation, dropout, name="score")
            self.score_layers.append(keras.layers.Dense(1, name="score_out"))

    def build(self, query_shape, keys_shape, padding_mask_shape=None, values_shape=None):
        d, e = query_shape[-1], keys_shape[-1]
        if d != e:
            self.query_projection = keras.layers.Dense(e, use_bias=False, name="query_projection")
            self.query_projection.build(tuple(query_shape))

    def call(self, query, keys, padding_mask=None, values=None, return_attention_scores=False,
             training=None):
        if self.query_projection is not None:
            query = self.query_projection(query)
        q = ops.expand_dims(ops.cast(query, keys.dtype), 1)             # [B, 1, e]
        if self.score == "dot":
            scores = ops.sum(q * keys, axis=-1) / math.sqrt(keys.shape[-1])
        else:
            q = ops.broadcast_to(q, ops.shape(keys))
            features = ops.concatenate([q, keys, q - keys, q * keys], axis=-1)
            scores = ops.squeeze(apply_mlp(self.score_layers, features, training), -1)
        weights = masked_softmax(scores, padding_mask)                           # [B, L]
        values = keys if values is None else values
        output = ops.sum(ops.expand_dims(ops.cast(weights, values.dtype), -1) * values, axis=1)
        if return_attention_scores:
            return output, weights
        return output

    def get_config(self):
        config = super().get_config()
        config.update({"score": self.score, "hidden_units": list(self.hidden_units),
                       "activation": self.activation, "dropout": self.dropout})
        return config
