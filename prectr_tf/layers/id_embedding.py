"""`IdEmbedding`: categorical ids (user, item, category, query) -> vectors.

One layer for every id feature of the data contract (DESIGN §3), so that the
CTR tower, the event encoder and the serving graph all map ids the same way:

* string ids with a vocabulary (`vocab/{user_id,item_id,item_category}.txt`
  written by `prectr build`) go through `keras.layers.StringLookup`; ids not in
  the vocabulary — users unseen at training time, i.e. cold start — land in
  learned OOV buckets instead of failing;
* ids without a vocabulary (the int64 `query_id` fingerprints, or strings
  when a vocabulary would be too large) are hashed into `num_buckets`.

Index 0 is reserved for padding (`""` for strings, negative, i.e. -1, for
ints) and always embeds to an exact zero vector, so padded history slots add
nothing to sums and get no gradient.
"""

import keras
import tensorflow as tf
from keras import ops

STRING = "string"
INT64 = "int64"
OOV_TOKEN = "[UNK]"


def load_vocabulary(path):
    """Tokens of a vocabulary file, one per line, in file order.

    Split on "\\n" only (not `str.splitlines`, which also splits on \\r, \\v,
    \\x1c, ...), so a token is exactly one line as `prectr build` wrote it.
    """
    with open(path, encoding="utf-8") as fh:
        tokens = fh.read().split("\n")
    while tokens and tokens[-1] == "":
        tokens.pop()
    return tokens


def _clean_vocabulary(vocabulary):
    # "" is the padding token and the OOV token is StringLookup's own; either
    # inside the vocabulary would shift or clash with the reserved indices.
    # Duplicates make StringLookup raise; keep the first (most frequent).
    tokens = load_vocabulary(vocabulary) if isinstance(vocabulary, str) else vocabulary
    return list(dict.fromkeys(str(t) for t in tokens if t not in ("", OOV_TOKEN)))


@keras.saving.register_keras_serializable(package="prectr_tf")
class IdEmbedding(keras.layers.Layer):
    """Embeds string or int64 ids, with OOV buckets and a zero padding vector.

    Index layout (`lookup`): 0 padding, `1..num_oov_indices` OOV buckets, then
    the vocabulary in order (vocabulary mode); or 0 padding, `1..num_buckets`
    hash buckets (hashing mode).

    The vocabulary is kept as a list in `get_config`, so a `.keras` file and a
    SavedModel carry it (the lookup table becomes a graph constant); no path
    outside the archive is needed to load.

    Args:
        output_dim: embedding width.
        vocabulary: list of string ids, or the path of a vocabulary file (one
            id per line; read once here). `None` selects hashing mode.
        num_oov_indices: OOV buckets in vocabulary mode; unseen ids are
            hashed over them (1: all cold-start ids share one learned vector).
        num_buckets: hash buckets in hashing mode (required without a
            vocabulary).
        id_dtype: `"string"` or `"int64"`. Int ids are hashed by modulo —
            `query_id` is already a uniform 63-bit fingerprint, so re-hashing
            its decimal string would only cost time.
        embeddings_initializer: initializer of the table.
        embeddings_regularizer: regularizer of the table.
        num_shards: int (default 1). Split the table into this many
            variables of contiguous rows (the "div" layout of
            `tf.nn.embedding_lookup`; the first `rows % num_shards` shards
            hold one row more; a table of fewer rows gets one shard a row).
            Under `ParameterServerStrategy` each is placed on a parameter
            server in turn, so a table larger than one server is spread over
            several (`PRECTRConfig.embedding_shards`); the lookup is the same.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: ids of any shape `S` (`string` or `int64`).

    Returns:
        float tensor `S + [output_dim]`; exactly zero where the id is padding.

    Example:
    >>> import tensorflow as tf
    >>> users = IdEmbedding(4, vocabulary=["u1", "u2"])
    >>> ids = tf.constant(["u1", "new-user", ""])
    >>> users(ids).shape
    TensorShape([3, 4])
    >>> users.lookup(ids).numpy().tolist()
    [2, 1, 0]
    >>> queries = IdEmbedding(4, num_buckets=1000, id_dtype="int64")
    >>> float(abs(queries(tf.constant([[7, -1]]))[0, 1]).numpy().sum())
    0.0
    """

    def __init__(self, output_dim, vocabulary=None, num_oov_indices=1, num_buckets=None,
                 id_dtype=STRING, embeddings_initializer="uniform",
                 embeddings_regularizer=None, num_shards=1, **kwargs):
        super().__init__(**kwargs)
        if id_dtype not in (STRING, INT64):
            raise ValueError(f"id_dtype must be 'string' or 'int64', got {id_dtype!r}")
        if vocabulary is None and not num_buckets:
            raise ValueError("IdEmbedding needs a `vocabulary` or `num_buckets`")
        if vocabulary is not None and id_dtype != STRING:
            raise ValueError("a vocabulary is supported for string ids only; "
                             "int64 ids are hashed into `num_buckets`")
        if vocabulary is not None and num_oov_indices < 1:
            raise ValueError("num_oov_indices must be >= 1 so unseen (cold-start) ids "
                             f"map to a bucket, got {num_oov_indices}")
        self.output_dim = int(output_dim)
        self.vocabulary = None if vocabulary is None else _clean_vocabulary(vocabulary)
        self.num_oov_indices = int(num_oov_indices)
        self.num_buckets = None if num_buckets is None else int(num_buckets)
        self.id_dtype = id_dtype
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)
        self.embeddings_regularizer = keras.regularizers.get(embeddings_regularizer)

        if self.vocabulary is not None:
            if self.vocabulary:
                self.index = keras.layers.StringLookup(
                    vocabulary=self.vocabulary, mask_token="", oov_token=OOV_TOKEN,
                    num_oov_indices=self.num_oov_indices, name="lookup")
            else:
                # No known id (e.g. a catalogue without categories): StringLookup
                # refuses an empty vocabulary; the same indices without it are
                # padding 0 and every id hashed over the OOV buckets 1..n.
                self.index = keras.layers.Hashing(num_bins=self.num_oov_indices + 1,
                                                  mask_value="", name="lookup")
            self.input_dim = 1 + self.num_oov_indices + len(self.vocabulary)
        else:
            self.index = None
            if id_dtype == STRING:
                # mask_value="" sends padding to bin 0 and the rest to
                # [1, num_bins): num_buckets real buckets after the pad bin.
                self.index = keras.layers.Hashing(num_bins=self.num_buckets + 1,
                                                  mask_value="", name="hashing")
            self.input_dim = 1 + self.num_buckets
        if int(num_shards) < 1:
            raise ValueError(f"num_shards must be >= 1, got {num_shards}")
        self.num_shards = min(int(num_shards), self.input_dim)
        size, extra = divmod(self.input_dim, self.num_shards)
        tables = [keras.layers.Embedding(
            size + (s < extra), self.output_dim,
            embeddings_initializer=self.embeddings_initializer,
            embeddings_regularizer=self.embeddings_regularizer,
            name="table" if self.num_shards == 1 else f"table_{s}")
            for s in range(self.num_shards)]
        # One shard stays the `table` attribute that checkpoints written
        # before sharding existed hold.
        if self.num_shards == 1:
            self.table = tables[0]
        else:
            self.shards = tables

    def build(self, input_shape):
        for table in self._tables():
            table.build(tuple(input_shape))

    def _tables(self):
        return [self.table] if self.num_shards == 1 else self.shards

    def lookup(self, inputs):
        """Row index of each id (int64, same shape); 0 for padding."""
        if self.index is not None:
            return ops.cast(self.index(inputs), "int64")
        ids = ops.cast(inputs, "int64")
        return ops.where(ids < 0, ops.zeros_like(ids), ops.mod(ids, self.num_buckets) + 1)

    def call(self, inputs):
        index = self.lookup(inputs)
        if self.num_shards == 1:
            vectors = self.table(index)
        else:
            vectors = tf.nn.embedding_lookup([t.embeddings.value for t in self.shards], index)
        # Multiplying (rather than relying on row 0 being zero) keeps padding
        # exactly zero after training and blocks its gradient.
        keep = ops.cast(ops.expand_dims(index > 0, -1), vectors.dtype)
        return vectors * keep

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.output_dim,)

    def get_config(self):
        config = super().get_config()
        config.update({
            "output_dim": self.output_dim,
            "vocabulary": self.vocabulary,
            "num_oov_indices": self.num_oov_indices,
            "num_buckets": self.num_buckets,
            "id_dtype": self.id_dtype,
            "embeddings_initializer": keras.initializers.serialize(self.embeddings_initializer),
            "embeddings_regularizer": keras.regularizers.serialize(self.embeddings_regularizer),
            "num_shards": self.num_shards,
        })
        return config


def get_id_embedding(spec, name=None):
    """An `IdEmbedding` from an instance (shared, returned as is), a config
    dict of `IdEmbedding` arguments (a new, owned layer), or a serialized
    layer (`keras.saving.serialize_keras_object` output, as `get_config` of the
    layers that hold one writes it)."""
    if isinstance(spec, IdEmbedding):
        return spec
    if isinstance(spec, dict):
        if "class_name" in spec and "config" in spec:
            return keras.saving.deserialize_keras_object(spec)
        spec = dict(spec)
        if name is not None:
            spec.setdefault("name", name)
        return IdEmbedding(**spec)
    raise TypeError(f"expected an IdEmbedding or a dict of its arguments, got {type(spec)}")
