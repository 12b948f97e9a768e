"""`RelevanceCache`: a frozen encoder's r, computed once per distinct pair (DESIGN §4.1).

PRECTR v1 keeps its encoder frozen, so r(query, title) never changes while
the rest of the model trains: the paper's Emb+MLP paradigm, where the BERT
output is a precomputed feature. Cross-encoding every impression again each
epoch is wasted work. The cache encodes each distinct (query, title) pair of
a split once, and `attach` adds r to every batch of a `tf.data` pipeline as
the feature `relevance_representation`, which `PRECTRModel` reads instead of
running its tokenizer and encoder whenever the encoder is frozen. A
fine-tuned encoder ignores the feature (it must see the text to learn).

The cached r is exactly the frozen encoder's (a frozen encoder has no
dropout in training either), so a model trained on the cache predicts what
the same model predicts without it.

Example:
>>> from prectr_tf.data.pipeline import make_dataset
>>> cache = RelevanceCache.from_dataset(frozen_model, data_dir)  # a prectr_v1: frozen
>>> frozen_model.compile(optimizer="adam")
>>> history = frozen_model.fit(cache.attach(make_dataset(data_dir)), epochs=1, verbose=0)
"""

import numpy as np
import tensorflow as tf

from prectr_tf.data.pipeline import read_split_columns

FEATURE = "relevance_representation"
_SEPARATOR = "\x1f"  # cannot occur in validated text


def _keys(queries, titles):
    return tf.strings.join([queries, titles], separator=_SEPARATOR)


class RelevanceCache:
    """r per distinct (query, title) pair, with a lookup for `tf.data`.

    Args:
        queries, titles: the N distinct pairs (str sequences).
        vectors: float32 `[N, d]`, r of each pair.
    """

    def __init__(self, queries, titles, vectors):
        self.vectors = np.asarray(vectors, np.float32)
        if len(self.vectors) != len(queries) or len(queries) != len(titles):
            raise ValueError("need one vector per (query, title) pair")
        keys = _keys(tf.constant(list(queries), tf.string), tf.constant(list(titles), tf.string))
        self._table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(keys, tf.range(len(queries), dtype=tf.int64)),
            default_value=-1)
        self._vectors = tf.constant(self.vectors)

    def __len__(self):
        return len(self.vectors)

    @classmethod
    def compute(cls, model, queries, titles, batch_size=4096):
        """Encode distinct pairs with `model`'s tokenizer and frozen encoder."""
        pairs = dict.fromkeys(zip(queries, titles))
        queries, titles = [q for q, _ in pairs], [t for _, t in pairs]

        @tf.function(reduce_retracing=True)
        def encode(q, t):
            return model.encoder(model.tokenizer(q, t), training=False)

        parts = [encode(tf.constant(queries[i:i + batch_size]), tf.constant(titles[i:i + batch_size]))
                 for i in range(0, len(queries), batch_size)]
        vectors = (np.concatenate([p.numpy() for p in parts]) if parts
                   else np.zeros((0, model.encoder.hidden_dim), np.float32))
        return cls(queries, titles, vectors)

    @classmethod
    def from_dataset(cls, model, data_dir, splits=("train",), batch_size=4096):
        """`compute` over the distinct pairs of a built dataset's splits."""
        queries, titles = [], []
        for split in splits:
            columns = read_split_columns(data_dir, split, ("query", "item_title"))
            queries += columns["query"].tolist()
            titles += columns["item_title"].tolist()
        return cls.compute(model, queries, titles, batch_size)

    def lookup(self, queries, titles):
        """r of `[B]` pairs; fails naming the first pair not in the cache."""
        rows = self._table.lookup(_keys(queries, titles))
        missing = tf.reduce_any(rows < 0)
        first = tf.argmax(tf.cast(rows < 0, tf.int32))
        with tf.control_dependencies([tf.debugging.Assert(
                tf.logical_not(missing),
                ["pair not in the relevance cache: query", queries[first], "title",
                 titles[first]])]):
            return tf.gather(self._vectors, rows)

    def attach(self, dataset):
        """`dataset` of `(features, labels)` with `features[FEATURE]` added."""
        def add(features, labels):
            return {**features, FEATURE: self.lookup(features["query"], features["item_title"])}, labels
        return dataset.map(add, num_parallel_calls=tf.data.AUTOTUNE)
