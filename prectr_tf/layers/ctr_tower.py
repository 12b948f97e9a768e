"""`BaseCTRTower`: the click logits b_k given each relevance level (DESIGN §4.3).

PRECTR scores P(click | x) = sum_k sigma(b_k + tau(x)) * p_k: the tower does
not predict one click logit but K of them, b_k = logit P(click | x, rel = k),
so the relevance head's distribution p decides how much each counts.
"""

import keras
from keras import ops

from prectr_tf.layers.event_encoder import per_row
from prectr_tf.layers.id_embedding import get_id_embedding
from prectr_tf.layers.target_attention import TargetAttention, apply_mlp, lengths_to_mask, mlp

_EMBEDDINGS = ("user_embedding", "item_embedding", "category_embedding", "query_embedding")


@keras.saving.register_keras_serializable(package="prectr_tf")
class BaseCTRTower(keras.layers.Layer):
    """Id embeddings + DIN attention over the user's history + r -> K logits.

    Input vector of the MLP, in order: embeddings of `user_id`, `item_id`,
    `item_category` and `query_id`; the target attention of the current
    (item, category) over the `user_history` (item, category) pairs; the
    relevance vector r; the dense `item_features` when enabled.

    The id embeddings are usually shared with `EventEncoder`; see its
    docstring for how to keep sharing through a `.keras` round trip.

    Args:
        num_relevance_levels: K, the number of logits.
        user_embedding: `IdEmbedding` (shared) or dict of its arguments
            (owned), for `user_id` (OOV bucket = cold-start user).
        item_embedding: same, for `item_id` and `user_history_item_id`.
        category_embedding: same, for `item_category` and
            `user_history_item_category`.
        query_embedding: same, for the int64 `query_id`.
        hidden_units: MLP layer sizes.
        activation: MLP activation.
        dropout: dropout after each MLP layer.
        attention_score: `"mlp"` (DIN) or `"dot"`, see `TargetAttention`.
        attention_hidden_units: score-MLP sizes of the attention.
        stop_gradient_relevance: if True, the click loss does not flow back
            into r through this tower (the encoder then learns relevance only
            from the relevance head and the fusion). Default False: in
            `finetune` mode the CTR signal is allowed to shape r (PRECTR-V2's
            joint training); in `frozen` mode the encoder does not train
            anyway.
        use_item_features: read `item_features` `[B, F]`.
        interaction_dim: int, 0 (default) or the width d of a user–item
            factor term added to every logit: ⟨W_u·[user, history
            attention], W_i·[item, category]⟩, each projection d wide. An MLP
            over concatenated embeddings approximates such a dot product
            poorly (Rendle et al., 2020); the simulator's interests are one
            (issue 10's diagnostic: without it no model weighs them).
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        features: example feature dict (`user_id`, `item_id`,
            `item_category` `[B]` string; `query_id` `[B]` int64;
            `user_history_item_id`, `user_history_item_category` `[B, L]`;
            `user_history_length` `[B]`; `item_features` `[B, F]` if used).
        relevance_vector: r `[B, d]`, or `None` for a tower without text
            relevance (the `dnn` baseline).
        training: Python bool, for dropout.

    Returns:
        `[B, K]` logits b_k.

    Example:
    >>> tower = BaseCTRTower(
    ...     num_relevance_levels=4,
    ...     user_embedding={"output_dim": 8, "vocabulary": ["u1"]},
    ...     item_embedding={"output_dim": 8, "vocabulary": ["i1", "i2"]},
    ...     category_embedding={"output_dim": 4, "vocabulary": ["c1"]},
    ...     query_embedding={"output_dim": 8, "num_buckets": 1000,
    ...                      "id_dtype": "int64"})
    >>> import numpy as np
    >>> r = np.zeros((8, 16), "float32")  # the batch of 8 `features`' r
    >>> tuple(tower(features, relevance_vector=r).shape)
    (8, 4)
    """

    def __init__(self, num_relevance_levels, user_embedding, item_embedding, category_embedding,
                 query_embedding, hidden_units=(128, 64), activation="relu", dropout=0.0,
                 attention_score="mlp", attention_hidden_units=(32, 16),
                 stop_gradient_relevance=False, use_item_features=False, interaction_dim=0,
                 **kwargs):
        super().__init__(**kwargs)
        self.num_relevance_levels = int(num_relevance_levels)
        self.user_embedding = get_id_embedding(user_embedding, name="user_embedding")
        self.item_embedding = get_id_embedding(item_embedding, name="item_embedding")
        self.category_embedding = get_id_embedding(category_embedding,
                                                   name="category_embedding")
        self.query_embedding = get_id_embedding(query_embedding, name="query_embedding")
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.activation = activation
        self.dropout = float(dropout)
        self.attention_score = attention_score
        self.attention_hidden_units = tuple(int(u) for u in attention_hidden_units)
        self.stop_gradient_relevance = bool(stop_gradient_relevance)
        self.use_item_features = bool(use_item_features)
        self.history_attention = TargetAttention(score=attention_score,
                                                 hidden_units=self.attention_hidden_units,
                                                 name="history_attention")
        self.hidden = mlp(self.hidden_units, activation, self.dropout, name="hidden")
        self.logits = keras.layers.Dense(self.num_relevance_levels, name="logits")
        self.interaction_dim = int(interaction_dim)
        if self.interaction_dim < 0:
            raise ValueError(f"interaction_dim must be >= 0, got {interaction_dim}")
        if self.interaction_dim:
            self.user_factor = keras.layers.Dense(self.interaction_dim, name="user_factor")
            self.item_factor = keras.layers.Dense(self.interaction_dim, use_bias=False,
                                                  name="item_factor")

    def build(self, features_shape=None, relevance_vector_shape=None):
        for name in _EMBEDDINGS:
            layer = getattr(self, name)
            if not layer.built:
                layer.build((None,))

    def call(self, features, relevance_vector=None, training=None):
        return self.logits_from_context(self.context(features, training), relevance_vector,
                                        training)

    def context(self, features, training=None):
        """The part of the MLP input that does not depend on r (id embeddings,
        history attention, item features): a dict of `before_r` `[B, D1]` and
        `after_r` `[B, D2]`, the MLP input around r, and `pair` — the (query,
        item) part alone (item, category and query embeddings, item
        features), which the relevance head may read. Computed once, it
        serves several r — the noisy twins of the debias term reuse it."""
        item = self.item_embedding(features["item_id"])
        category = self.category_embedding(features["item_category"])
        target = ops.concatenate([item, category], axis=-1)
        history_items = features["user_history_item_id"]
        history = per_row(ops.concatenate(
            [self.item_embedding(history_items),
             self.category_embedding(features["user_history_item_category"])], axis=-1), features)
        mask = lengths_to_mask(features["user_history_length"], ops.shape(history_items)[1])
        interest = self.history_attention(target, history, padding_mask=mask, training=training)
        query = self.query_embedding(features["query_id"])
        before = ops.concatenate([self.user_embedding(features["user_id"]), item, category,
                                  query, interest], axis=-1)
        after = (ops.cast(features["item_features"], item.dtype) if self.use_item_features
                 else ops.zeros_like(before[:, :0]))
        pair = ops.concatenate([item, category, query, after], axis=-1)
        out = {"before_r": before, "after_r": after, "pair": pair}
        if self.interaction_dim:
            user = ops.concatenate([self.user_embedding(features["user_id"]), interest], axis=-1)
            out["interaction"] = ops.sum(self.user_factor(user) * self.item_factor(target),
                                         axis=-1, keepdims=True)
        return out

    def logits_from_context(self, context, relevance_vector=None, training=None):
        """`[B, K]` logits from `context(...)` and r (`None`: no r input)."""
        before, after = context["before_r"], context["after_r"]
        parts = [before]
        if relevance_vector is not None:
            r = ops.cast(relevance_vector, before.dtype)
            parts.append(ops.stop_gradient(r) if self.stop_gradient_relevance else r)
        x = apply_mlp(self.hidden, ops.concatenate(parts + [after], axis=-1), training)
        logits = self.logits(x)
        return logits + context["interaction"] if self.interaction_dim else logits

    def get_config(self):
        config = super().get_config()
        config.update({name: keras.saving.serialize_keras_object(getattr(self, name))
                       for name in _EMBEDDINGS})
        config.update({
            "num_relevance_levels": self.num_relevance_levels,
            "hidden_units": list(self.hidden_units),
            "activation": self.activation,
            "dropout": self.dropout,
            "attention_score": self.attention_score,
            "attention_hidden_units": list(self.attention_hidden_units),
            "stop_gradient_relevance": self.stop_gradient_relevance,
            "use_item_features": self.use_item_features,
            "interaction_dim": self.interaction_dim,
        })
        return config
