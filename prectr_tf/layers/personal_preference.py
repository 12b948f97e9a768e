"""`PersonalRelevancePreference`: r_user from the user's own history (DESIGN §4.5).

PRECTR v1's personalized relevance preference: how this user trades
relevance against other appeal shows in what they clicked before, and the
most telling past events are those under a similar query and on a similar
item. The result lives in r's space (width d) so the incentive module can
compare it with the current pair's r ([r, r_pref, r - r_pref, r * r_pref]).
"""

import keras
from keras import ops

from prectr_tf.layers.target_attention import apply_mlp, masked_softmax, mlp


@keras.saving.register_keras_serializable(package="prectr_tf")
class PersonalRelevancePreference(keras.layers.Layer):
    """Similarity-weighted attention over encoded history events -> `[B, d]`.

    Score of event j (PRINT-style similarity weighting):
    `s_j = a_q * query_similarity_j + a_i * item_similarity_j + MLP(event_j)`,
    with learned scalars `a_q`, `a_i` (initialised to `similarity_scale`, so
    at the start a past event under the same query outweighs an unrelated one
    by a factor e^scale) and an optional learned per-event term (e.g. clicked
    events matter more). Weights are the masked softmax of s; the pooled
    event vector is projected to d:
    `r_user = W (sum_j w_j event_j) + b`, multiplied by 1[history non-empty],
    so an empty history gives exactly zero (not the bias).

    Args:
        output_dim: d, the width of r.
        similarity_scale: initial value of `a_q` and `a_i`.
        hidden_units: sizes of the per-event score MLP; `()` disables the
            learned term (scores from the two similarities only).
        activation: activation of the score MLP.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        encoded: the `EventEncoder` output for `user_history`, a dict with
            `events` `[B, L, e]`, `padding_mask` bool `[B, L]`,
            `query_similarity` and `item_similarity` `[B, L]`.
        return_attention_scores: also return the `[B, L]` weights.

    Returns:
        r_user `[B, d]` (and the weights if asked).

    Example:
    >>> from prectr_tf.layers.event_encoder import EventEncoder
    >>> encoder = EventEncoder(
    ...     num_relevance_levels=4,
    ...     item_embedding={"output_dim": 8, "vocabulary": ["i1", "i2"]},
    ...     category_embedding={"output_dim": 4, "vocabulary": ["c1"]},
    ...     query_embedding={"output_dim": 8, "num_buckets": 100, "id_dtype": "int64"})
    >>> layer = PersonalRelevancePreference(output_dim=16)
    >>> r_user = layer(encoder(features, list_name="user_history"))
    >>> tuple(r_user.shape)  # a batch of 8
    (8, 16)
    """

    def __init__(self, output_dim, similarity_scale=5.0, hidden_units=(16,), activation="relu",
                 **kwargs):
        super().__init__(**kwargs)
        self.output_dim = int(output_dim)
        self.similarity_scale = float(similarity_scale)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.activation = activation
        self.score_layers = []
        if self.hidden_units:
            self.score_layers = mlp(self.hidden_units, activation, name="score")
            self.score_layers.append(keras.layers.Dense(1, name="score_out"))
        self.projection = keras.layers.Dense(self.output_dim, name="projection")

    def build(self, encoded_shape):
        events_shape = tuple(encoded_shape["events"])
        init = keras.initializers.Constant(self.similarity_scale)
        self.query_weight = self.add_weight(shape=(), initializer=init, name="query_weight")
        self.item_weight = self.add_weight(shape=(), initializer=init, name="item_weight")
        x = events_shape
        for layer in self.score_layers:
            layer.build(x)
            x = x[:-1] + (layer.units,)
        self.projection.build((events_shape[0], events_shape[-1]))

    def call(self, encoded, return_attention_scores=False):
        events = encoded["events"]
        mask = encoded["padding_mask"]
        scores = (self.query_weight * ops.cast(encoded["query_similarity"], events.dtype)
                  + self.item_weight * ops.cast(encoded["item_similarity"], events.dtype))
        if self.score_layers:
            scores = scores + ops.squeeze(apply_mlp(self.score_layers, events), -1)
        weights = masked_softmax(scores, mask)
        pooled = ops.sum(ops.expand_dims(weights, -1) * events, axis=1)
        has_history = ops.cast(ops.any(mask, axis=1, keepdims=True), events.dtype)
        r_user = self.projection(pooled) * has_history
        if return_attention_scores:
            return r_user, weights
        return r_user

    def get_config(self):
        config = super().get_config()
        config.update({"output_dim": self.output_dim,
                       "similarity_scale": self.similarity_scale,
                       "hidden_units": list(self.hidden_units),
                       "activation": self.activation})
        return config
