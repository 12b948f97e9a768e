"""`GlobalPreferenceAggregator`: cross-user preference mining (DESIGN §4.6).

PRECTR-V2's answer to cold start: a user with no history has no personal
relevance preference, but the query has a population of earlier searchers.
Attending from the current pair's r over what those users did under this
query (`query_context`, encoded like the user's own history) gives
r_cross, the query's population-level preference; a gate on the user's
activity decides how much to trust the personal r_user against it.
"""

import math

import keras
from keras import ops

from prectr_tf.layers.target_attention import apply_mlp, masked_softmax, mlp


def activity_features(history_length, user_event_count, context_length):
    """Gate inputs `[B, 4]`: log1p(history length), log1p(user_event_count),
    1[history empty], log1p(context length). Logs because activity is
    heavy-tailed; the explicit empty flag lets the gate separate cold users
    (r_user is exactly 0 for them) from users with one event."""
    def log1p(x):
        return ops.log1p(ops.cast(ops.maximum(x, 0), "float32"))

    history_length = ops.reshape(history_length, (-1,))
    return ops.stack([log1p(history_length),
                      log1p(ops.reshape(user_event_count, (-1,))),
                      ops.cast(history_length <= 0, "float32"),
                      log1p(ops.reshape(context_length, (-1,)))], axis=-1)


@keras.saving.register_keras_serializable(package="prectr_tf")
class GlobalPreferenceAggregator(keras.layers.Layer):
    """Multi-head target attention over the query context, fused by a gate.

    With H heads of width k, the current pair's r `[B, d]` as the query and
    the context events `[B, L, e]` as keys and values:
    `q_h = r W_q^h`, `K_h = E W_k^h + b_k^h`, `V_h = E W_v^h + b_v^h`,
    `A_h = masked_softmax(q_h K_h^T / sqrt(k))`,
    `r_cross = (concat_h A_h V_h) W_o + b_o`, times 1[context non-empty]
    (an empty context gives exactly 0, not the bias).
    Fusion: `g = sigmoid(MLP(activity_features(...)))`,
    `r_pref = g * r_user + (1 - g) * r_cross`.

    The gate is **[ours]** (DESIGN §4.6; the paper's figure sums r_user and
    the cross-user term): a learned g lets an active user's own history win
    and a cold user fall back on the population.

    Args:
        num_heads: H.
        key_dim: k, the per-head width (default: `d // num_heads`, at least
            1).
        output_dim: width of r_cross and r_pref (default: d, r's width,
            which the fusion with r_user requires).
        gate_hidden_units: sizes of the gate MLP.
        gate_activation: activation of the gate MLP.
        dropout: dropout on the attention weights while training.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        relevance_vector: r `[B, d]` of the current (query, item) pair.
        context: the `EventEncoder` output for `query_context` (dict with
            `events` `[B, L, e]` and `padding_mask` bool `[B, L]`).
        user_preference: r_user `[B, d]`, or `None` (treated as 0).
        history_length: `user_history_length` `[B]` int.
        user_event_count: `user_event_count` `[B]` int.
        return_attention_scores: also return the `[B, H, L]` weights under
            `"attention"`.
        training: Python bool, for dropout.

    Returns:
        dict with `preference` (r_pref `[B, d]`), `cross_preference`
        (r_cross `[B, d]`) and `gate` (g `[B, 1]`, in (0, 1)).

    Example:
    >>> from prectr_tf.layers.event_encoder import EventEncoder
    >>> encoder = EventEncoder(
    ...     num_relevance_levels=4,
    ...     item_embedding={"output_dim": 8, "vocabulary": ["i1", "i2"]},
    ...     category_embedding={"output_dim": 4, "vocabulary": ["c1"]},
    ...     query_embedding={"output_dim": 8, "num_buckets": 100, "id_dtype": "int64"})
    >>> import numpy as np
    >>> r, r_user = np.random.default_rng(0).normal(size=(2, 8, 16)).astype("float32")
    >>> layer = GlobalPreferenceAggregator(num_heads=2)
    >>> out = layer(r, encoder(features, list_name="query_context"), r_user,
    ...             features["user_history_length"], features["user_event_count"])
    >>> tuple(out["preference"].shape), tuple(out["gate"].shape)  # a batch of 8
    ((8, 16), (8, 1))
    """

    def __init__(self, num_heads=4, key_dim=None, output_dim=None, gate_hidden_units=(16,),
                 gate_activation="relu", dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = int(num_heads)
        self.key_dim = None if key_dim is None else int(key_dim)
        self.output_dim = None if output_dim is None else int(output_dim)
        self.gate_hidden_units = tuple(int(u) for u in gate_hidden_units)
        self.gate_activation = gate_activation
        self.dropout = float(dropout)
        self.attention_dropout = keras.layers.Dropout(self.dropout, name="attention_dropout")
        self.gate_layers = mlp(self.gate_hidden_units, gate_activation, name="gate")
        self.gate_layers.append(keras.layers.Dense(1, activation="sigmoid", name="gate_out"))

    def build(self, relevance_vector_shape, context_shape, user_preference_shape=None,
              history_length_shape=None, user_event_count_shape=None):
        d = relevance_vector_shape[-1]
        e = context_shape["events"][-1]
        self._output_dim = self.output_dim or d
        self._key_dim = self.key_dim or max(1, d // self.num_heads)
        width = self.num_heads * self._key_dim
        # No bias on the query: a bias would add the same q_h . b to every
        # score of a row, which the softmax cancels anyway.
        self.query_dense = keras.layers.Dense(width, use_bias=False, name="query")
        self.key_dense = keras.layers.Dense(width, name="key")
        self.value_dense = keras.layers.Dense(width, name="value")
        self.output_dense = keras.layers.Dense(self._output_dim, name="output")
        self.query_dense.build((None, d))
        self.key_dense.build((None, None, e))
        self.value_dense.build((None, None, e))
        self.output_dense.build((None, width))
        x = (None, 4)
        for layer in self.gate_layers:
            layer.build(x)
            x = (None, layer.units)

    def call(self, relevance_vector, context, user_preference=None, history_length=None,
             user_event_count=None, return_attention_scores=False, training=None):
        if history_length is None:
            raise ValueError("GlobalPreferenceAggregator needs `history_length` for its gate")
        if user_event_count is None:
            raise ValueError("GlobalPreferenceAggregator needs `user_event_count` for its gate")
        events, mask = context["events"], context["padding_mask"]
        r = ops.cast(relevance_vector, events.dtype)
        heads, k = self.num_heads, self._key_dim
        q = ops.reshape(self.query_dense(r), (-1, heads, k))                  # [B, H, k]
        length = ops.shape(events)[1]
        keys = ops.reshape(self.key_dense(events), (-1, length, heads, k))    # [B, L, H, k]
        values = ops.reshape(self.value_dense(events), (-1, length, heads, k))
        scores = ops.einsum("bhk,blhk->bhl", q, keys) / math.sqrt(k)
        weights = masked_softmax(scores, ops.expand_dims(mask, 1))             # [B, H, L]
        dropped = self.attention_dropout(weights, training=training)
        pooled = ops.reshape(ops.einsum("bhl,blhk->bhk", dropped, values), (-1, heads * k))
        has_context = ops.cast(ops.any(mask, axis=1, keepdims=True), events.dtype)
        r_cross = self.output_dense(pooled) * has_context

        context_length = ops.sum(ops.cast(mask, "int32"), axis=1)
        gate = apply_mlp(self.gate_layers,
                         ops.cast(activity_features(history_length, user_event_count,
                                                    context_length), events.dtype))
        r_user = (ops.zeros_like(r_cross) if user_preference is None
                  else ops.cast(user_preference, events.dtype))
        outputs = {"preference": gate * r_user + (1.0 - gate) * r_cross,
                   "cross_preference": r_cross, "gate": gate}
        if return_attention_scores:
            outputs["attention"] = weights
        return outputs

    def get_config(self):
        config = super().get_config()
        config.update({"num_heads": self.num_heads, "key_dim": self.key_dim,
                       "output_dim": self.output_dim,
                       "gate_hidden_units": list(self.gate_hidden_units),
                       "gate_activation": self.gate_activation, "dropout": self.dropout})
        return config
