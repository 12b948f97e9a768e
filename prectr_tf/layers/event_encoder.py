"""`EventEncoder`: a cheap vector per past event of a history list.

DESIGN §4.5: the events of `user_history` and `query_context` are NOT run
through the text encoder again — that would multiply training cost by ~40
(L_u + L_g extra pairs per impression). Each event is represented from what
the builder already logged: its relevance level, click flag, item and
category ids, and how close its query and item are to the current ones.
"""

import keras
from keras import ops

from prectr_tf.layers.id_embedding import get_id_embedding
from prectr_tf.layers.target_attention import lengths_to_mask

LISTS = ("user_history", "query_context")
# Serving sends each request's lists once: `[R, L]` list features plus this
# `[B]` row → request index, so ids are looked up per request, not per row.
REQUEST_INDEX = "request_index"


def per_row(values, features):
    """`values` (computed from list features) gathered to rows when the
    lists come per request (`REQUEST_INDEX` in `features`)."""
    if REQUEST_INDEX not in features:
        return values
    return ops.take(values, features[REQUEST_INDEX], axis=0)


def cosine_similarity(a, b, epsilon=1e-6):
    """Cosine over the last axis; 0 (not NaN) when either vector is zero,
    which is what a padding id embeds to."""
    dot = ops.sum(a * b, axis=-1)
    # Clamp before the sqrt: sqrt's gradient at 0 is infinite, and 0 * inf
    # would turn the (masked) padding slots' gradients into NaN.
    squared_norms = ops.sum(a * a, axis=-1) * ops.sum(b * b, axis=-1)
    return dot / ops.sqrt(ops.maximum(squared_norms, epsilon * epsilon))


@keras.saving.register_keras_serializable(package="prectr_tf")
class EventEncoder(keras.layers.Layer):
    """Encodes the padded events of one history list into `[B, L, e]`.

    Per event `j`, the vector is the concatenation of
    * an embedding of the logged relevance level, with its own slot for
      "unlabelled" (-1): most logged events have no human grade, and that is
      information, not level 0;
    * an embedding of the click flag, with a slot for "unknown" (-1);
    * the item and category embeddings (`IdEmbedding`s, usually shared with
      the CTR tower so history items and candidates live in one space);
    * `query_similarity`: cosine of the event's and the current query-id
      embeddings (1 for the same query);
    * `item_similarity`: cosine of the event's and the current item's
      embeddings.
    Padding slots (beyond `<list>_length`) are zero vectors.

    `e = relevance_dim + click_dim + item_dim + category_dim + 2`, also
    available as `output_dim`.

    Sharing: pass the same `IdEmbedding` instance to several layers (this
    encoder, `BaseCTRTower`) to share it. For a `.keras` round trip, create
    the shared instance in a subclassed model's `__init__` from the model's
    own config: a functional model rebuilds each layer from its own config,
    i.e. with a private copy, and Keras saved the shared variables only once,
    so loading such a functional model fails.

    Args:
        num_relevance_levels: K.
        item_embedding: `IdEmbedding` (shared) or a dict of its arguments
            (owned), for `item_id`.
        category_embedding: same, for `item_category`.
        query_embedding: same, for the int64 `query_id`
            (`id_dtype="int64"`, `num_buckets=...`).
        relevance_dim: width of the relevance-level embedding.
        click_dim: width of the click-flag embedding.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        features: the example feature dict of `prectr_tf.data.pipeline`
            (extra keys are ignored). Reads `<list>_{query_id, item_id,
            item_category, relevance, click}` `[B, L]`, `<list>_length`
            `[B]`, and the current `query_id` and `item_id` `[B]`.
        list_name: `"user_history"` or `"query_context"`.

    Returns:
        dict with `events` float `[B, L, e]`, `padding_mask` bool `[B, L]`,
        `query_similarity` and `item_similarity` float `[B, L]` (0 on
        padding).

    Example:
    >>> encoder = EventEncoder(
    ...     num_relevance_levels=4,
    ...     item_embedding={"output_dim": 8, "vocabulary": ["i1", "i2"]},
    ...     category_embedding={"output_dim": 4, "vocabulary": ["c1"]},
    ...     query_embedding={"output_dim": 8, "num_buckets": 100,
    ...                      "id_dtype": "int64"})
    >>> encoded = encoder(features, list_name="user_history")
    >>> tuple(encoded["events"].shape)  # 8 impressions, L_u = 5 events, 26 wide
    (8, 5, 26)
    """

    def __init__(self, num_relevance_levels, item_embedding, category_embedding,
                 query_embedding, relevance_dim=8, click_dim=4, **kwargs):
        super().__init__(**kwargs)
        self.num_relevance_levels = int(num_relevance_levels)
        self.relevance_dim = int(relevance_dim)
        self.click_dim = int(click_dim)
        self.item_embedding = get_id_embedding(item_embedding, name="item_embedding")
        self.category_embedding = get_id_embedding(category_embedding,
                                                   name="category_embedding")
        self.query_embedding = get_id_embedding(query_embedding, name="query_embedding")
        # Index 0 = unlabelled / unknown (-1), then the K levels / 0 / 1.
        self.relevance_table = keras.layers.Embedding(self.num_relevance_levels + 1,
                                                      self.relevance_dim, name="relevance_table")
        self.click_table = keras.layers.Embedding(3, self.click_dim, name="click_table")

    @property
    def output_dim(self):
        return (self.relevance_dim + self.click_dim + self.item_embedding.output_dim
                + self.category_embedding.output_dim + 2)

    def build(self, features_shape=None):
        # Build every table here (not lazily in `call`) so a standalone layer
        # restored by `build_from_config` has its variables before weights load.
        for table in (self.relevance_table, self.click_table, self.item_embedding,
                      self.category_embedding, self.query_embedding):
            if not table.built:
                table.build((None,))

    def call(self, features, list_name="user_history"):
        if list_name not in LISTS:
            raise ValueError(f"list_name must be one of {LISTS}, got {list_name!r}")

        def field(name):
            return features[f"{list_name}_{name}"]

        item_ids = field("item_id")
        mask = lengths_to_mask(field("length"), ops.shape(item_ids)[1])
        relevance = ops.clip(ops.cast(field("relevance"), "int64"), -1,
                             self.num_relevance_levels - 1) + 1
        click = ops.clip(ops.cast(field("click"), "int64"), -1, 1) + 1
        item = per_row(self.item_embedding(item_ids), features)
        event_query = per_row(self.query_embedding(field("query_id")), features)
        query_similarity = cosine_similarity(
            event_query, ops.expand_dims(self.query_embedding(features["query_id"]), 1))
        item_similarity = cosine_similarity(
            item, ops.expand_dims(self.item_embedding(features["item_id"]), 1))
        keep = ops.cast(mask, item.dtype)
        query_similarity = query_similarity * keep
        item_similarity = item_similarity * keep
        events = ops.concatenate([
            per_row(self.relevance_table(relevance), features),
            per_row(self.click_table(click), features),
            item,
            per_row(self.category_embedding(field("item_category")), features),
            ops.expand_dims(query_similarity, -1),
            ops.expand_dims(item_similarity, -1),
        ], axis=-1)
        return {"events": events * ops.expand_dims(keep, -1), "padding_mask": mask,
                "query_similarity": query_similarity, "item_similarity": item_similarity}

    def get_config(self):
        config = super().get_config()
        config.update({
            "num_relevance_levels": self.num_relevance_levels,
            "item_embedding": keras.saving.serialize_keras_object(self.item_embedding),
            "category_embedding": keras.saving.serialize_keras_object(self.category_embedding),
            "query_embedding": keras.saving.serialize_keras_object(self.query_embedding),
            "relevance_dim": self.relevance_dim,
            "click_dim": self.click_dim,
        })
        return config
