"""WordPiece vocabulary learning and the `PairTokenizer` (DESIGN §4.1).

The relevance encoder reads a (query, item title) pair as
`[CLS] query [SEP] title [SEP]`. `learn_wordpiece_vocabulary` learns the
WordPiece vocabulary from the training corpus (queries and titles, lowercased)
offline with `keras_hub.tokenizers.compute_word_piece_vocabulary`;
`PairTokenizer` turns raw strings into padded token ids with TF ops only, so it
can live inside a SavedModel. Such a SavedModel holds tensorflow-text ops:
`import tensorflow_text` before `tf.saved_model.load` (DESIGN §2).
"""

import keras
import keras_hub
import tensorflow as tf

# Order matters: "[PAD]" must be id 0, the padding id every encoder mask uses.
RESERVED_TOKENS = ("[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]")
PAD_ID = 0
DEFAULT_VOCABULARY_SIZE = 30_000


def learn_wordpiece_vocabulary(texts, vocabulary_size=DEFAULT_VOCABULARY_SIZE, lowercase=True,
                               strip_accents=False, deduplicate=True, batch_size=1024,
                               output_file=None):
    """Learn a WordPiece vocabulary from a text corpus.

    Args:
        texts: an iterable of strings (e.g. the training queries and item
            titles) or a `tf.data.Dataset` of string scalars or batches.
        vocabulary_size: the maximum vocabulary size, reserved tokens
            included; the learner may return fewer on a small corpus (it
            keeps a whole word only if it occurs at least 10 times; rarer
            words are spelled with pieces).
        lowercase: lowercase before splitting (the tokenizer must match).
        strip_accents: strip accents before splitting (must match too).
        deduplicate: count each distinct string once (in-memory `texts`
            only), so an item shown a thousand times does not dominate the
            counts of an item shown once.
        batch_size: strings per batch when counting words.
        output_file: optional path; the vocabulary is written there one
            token per line as well.

    Returns:
        a list of tokens; `RESERVED_TOKENS` come first, `"[PAD]"` is id 0.

    Example:
    >>> vocab = learn_wordpiece_vocabulary(["red shoes", "Blue Shoe"] * 10, 50,
    ...                                    deduplicate=False)
    >>> vocab[:3], "shoe" in vocab
    (['[PAD]', '[CLS]', '[SEP]'], True)
    """
    if isinstance(texts, tf.data.Dataset):
        dataset = texts
        if dataset.element_spec.shape.rank == 0:
            dataset = dataset.batch(batch_size)
    else:
        texts = [t.decode("utf-8") if isinstance(t, bytes) else str(t) for t in texts]
        texts = [t for t in texts if t.strip()]
        if deduplicate:
            texts = list(dict.fromkeys(texts))
        if not texts:
            raise ValueError("learn_wordpiece_vocabulary needs at least one non-empty string")
        dataset = tf.data.Dataset.from_tensor_slices(texts).batch(batch_size)
    vocabulary = keras_hub.tokenizers.compute_word_piece_vocabulary(
        dataset, vocabulary_size, lowercase=lowercase, strip_accents=strip_accents,
        reserved_tokens=list(RESERVED_TOKENS))
    if output_file is not None:
        save_vocabulary(vocabulary, output_file)
    return vocabulary


def save_vocabulary(vocabulary, path):
    """Write `vocabulary` one token per line (the format keras-hub reads)."""
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(token + "\n" for token in vocabulary))


def load_vocabulary(path):
    """Read a vocabulary written by `save_vocabulary`."""
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f if line.rstrip("\n")]


def _offsets(sizes):
    offsets, total = [], 0
    for size in sizes:
        offsets.append(total)
        total = total + size
    return offsets


def _take(values, index):
    """`values[b, index[b, j]]`, index clipped into range (masked later)."""
    index = tf.clip_by_value(index, 0, values.shape[1] - 1)
    index = tf.broadcast_to(index, [tf.shape(values, out_type=tf.int64)[0], index.shape[1]])
    return tf.gather(values, index, batch_dims=1)


def _pack(pieces, lengths, length, start_id, end_id):
    """`[start] pieces[:n] [end] [PAD]...` as `[B, length]` (dense inputs)."""
    offset = 0 if start_id is None else 1
    lengths = tf.minimum(lengths, length - 1 - offset)[:, None]
    j = tf.range(length, dtype=tf.int64)[None, :]
    out = tf.where(j < lengths + offset, _take(pieces, j - offset), PAD_ID)
    out = tf.where(j == lengths + offset, end_id, out)
    if start_id is not None:
        out = tf.where(j == 0, start_id, out)
    return out


@keras.saving.register_keras_serializable(package="prectr_tf")
class PairTokenizer(keras.layers.Layer):
    """Raw (query, title) strings to padded token ids for the relevance encoder.

    Produces three views of each pair, all right-padded with id 0 (`[PAD]`):

    - `token_ids` `[B, S]`: `[CLS] query [SEP] title [SEP]` for the joint
      cross-encoder. The query is first cut to `query_length - 2` word
      pieces (the same query tokens as `query_ids`), then the title is
      truncated to fill the rest ("waterfall": the title is cut first).
      S = `max_length`, or with `pad_to_longest` the batch's longest pair:
      the encoder masks padding, so the shorter S changes no value and saves
      its work on padding (the simulator's pairs are at most 16 tokens).
    - `query_ids` `[B, query_length]`: `[CLS] query [SEP]`.
    - `title_ids` `[B, title_length]`: `title [SEP]`; a function of the title
      alone, so the split encoder's title side can be precomputed per item.

    Only TF / tensorflow-text ops run, so the layer can sit in a SavedModel.
    Called eagerly it traces a `tf.function` per call (keras-hub otherwise
    takes its pure-Python path and returns lists); inside `tf.data`, `fit` or
    an export it runs as plain graph ops.

    Args:
        vocabulary: a list of tokens or the path of a vocabulary file, as made
            by `learn_wordpiece_vocabulary`; must start with `"[PAD]"` and
            contain `"[CLS]"`, `"[SEP]"` and `"[UNK]"`.
        max_length: S, the length of `token_ids`.
        query_length: Sq, the length of `query_ids`.
        title_length: St, the length of `title_ids`.
        lowercase: lowercase the text (match the vocabulary).
        strip_accents: strip accents (match the vocabulary).
        pad_to_longest: cut `token_ids` to the batch's longest pair (True)
            instead of always `max_length`.

    Returns (of `call(query, title)`):
        a dict with int32 `token_ids`, `query_ids` and `title_ids`.

    Example:
    >>> vocab = learn_wordpiece_vocabulary(["red shoes", "nike red shoe"], 60)
    >>> tokenizer = PairTokenizer(vocab, max_length=8, query_length=4, title_length=5,
    ...                           pad_to_longest=False)
    >>> out = tokenizer(tf.constant(["red shoes"]), tf.constant(["Nike red shoe"]))
    >>> [tuple(out[k].shape) for k in ("token_ids", "query_ids", "title_ids")]
    [(1, 8), (1, 4), (1, 5)]
    >>> longest = PairTokenizer(vocab, max_length=16, query_length=4, title_length=5)
    >>> longest(tf.constant(["red"]), tf.constant(["red"]))["token_ids"].shape  # not 16
    TensorShape([1, 8])
    """

    def __init__(self, vocabulary, max_length=32, query_length=10, title_length=22,
                 lowercase=True, strip_accents=False, pad_to_longest=True, **kwargs):
        super().__init__(**kwargs)
        if isinstance(vocabulary, str):
            vocabulary = load_vocabulary(vocabulary)
        vocabulary = list(vocabulary)
        if not vocabulary or vocabulary[0] != "[PAD]":
            raise ValueError("the vocabulary must start with '[PAD]' (padding id 0)")
        missing = [t for t in ("[CLS]", "[SEP]", "[UNK]") if t not in vocabulary]
        if missing:
            raise ValueError(f"the vocabulary lacks the reserved tokens {missing}")
        if query_length < 3 or title_length < 2 or max_length < query_length + 1:
            raise ValueError(
                "need query_length >= 3, title_length >= 2 and max_length > query_length; "
                f"got {max_length=}, {query_length=}, {title_length=}")
        self.vocabulary = vocabulary
        self.max_length = max_length
        self.query_length = query_length
        self.title_length = title_length
        self.lowercase = lowercase
        self.strip_accents = strip_accents
        self.pad_to_longest = bool(pad_to_longest)
        self.cls_id = vocabulary.index("[CLS]")
        self.sep_id = vocabulary.index("[SEP]")
        self._tokenizer = keras_hub.tokenizers.WordPieceTokenizer(
            vocabulary=vocabulary, lowercase=lowercase, strip_accents=strip_accents,
            oov_token="[UNK]", dtype="int32", name="word_piece")
        self.built = True

    @property
    def vocabulary_size(self):
        return len(self.vocabulary)

    def _word_pieces(self, texts):
        """One WordPiece pass over several `[B]` / `[B, 1]` string columns."""
        texts = [tf.reshape(tf.convert_to_tensor(t, dtype=tf.string), [-1]) for t in texts]
        pieces = self._tokenizer(tf.concat(texts, axis=0))
        sizes = [tf.shape(t, out_type=tf.int64)[0] for t in texts]
        return [pieces[start:start + size] for start, size in zip(_offsets(sizes), sizes)]

    def _dense(self, pieces, width):
        """Ragged pieces cut to `width`, as dense `[B, width]` plus lengths."""
        pieces = pieces[:, :width]
        return pieces.to_tensor(default_value=PAD_ID, shape=[None, width]), pieces.row_lengths()

    def _tokenize_graph(self, query, title):
        q_pieces, t_pieces = self._word_pieces([query, title])
        # The query is cut once, here, so the joint and the split views hold
        # the same query tokens ([CLS] and [SEP] take 2 of `query_length`).
        q, q_len = self._dense(q_pieces, self.query_length - 2)
        t, t_len = self._dense(t_pieces, max(self.max_length, self.title_length))
        token_ids = self._pack_pair(q, q_len, t, t_len)
        if self.pad_to_longest:
            # Tokens are contiguous from position 0: the longest row's count
            # (at least 1, so an empty batch, e.g. no hard-negative anchors
            # in a training batch, still has the [CLS] position).
            width = tf.maximum(tf.reduce_max(
                tf.reduce_sum(tf.cast(token_ids != PAD_ID, tf.int32), 1)), 1)
            token_ids = token_ids[:, :width]
        return {
            "token_ids": token_ids,
            "query_ids": _pack(q, q_len, self.query_length, self.cls_id, self.sep_id),
            "title_ids": _pack(t, t_len, self.title_length, None, self.sep_id),
        }

    def _pack_pair(self, q, q_len, t, t_len):
        # Dense index arithmetic, not keras-hub's MultiSegmentPacker: its
        # generic ragged trimmers add ~1,500 ops (seconds of tracing) to every
        # graph. The title keeps what the query leaves ("waterfall").
        t_len = tf.minimum(t_len, self.max_length - 3 - q_len)
        j = tf.range(self.max_length, dtype=tf.int64)[None, :]
        q_len, t_len = q_len[:, None], t_len[:, None]
        title_end = q_len + 2 + t_len
        out = tf.where(j < title_end, _take(t, j - q_len - 2), PAD_ID)
        out = tf.where(j == title_end, self.sep_id, out)
        out = tf.where(j == q_len + 1, self.sep_id, out)
        out = tf.where(j <= q_len, _take(q, j - 1), out)
        return tf.where(j == 0, self.cls_id, out)

    def _run(self, fn, *args):
        if tf.executing_eagerly():
            # keras-hub runs its pure-Python path eagerly; force the TF path.
            return tf.function(fn, autograph=False)(*args)
        return fn(*args)

    def call(self, query, title):
        return self._run(self._tokenize_graph, query, title)

    def title_positions(self, token_ids, split=False):
        """bool `[B, S]`: the title's word pieces in joint `token_ids` (between
        the first and the second `[SEP]`), or with `split=True` in `title_ids`
        (`t [SEP]`: all but the `[SEP]` and the padding)."""
        token_ids = tf.convert_to_tensor(token_ids)
        is_sep = tf.equal(token_ids, self.sep_id)
        if split:
            return tf.logical_and(tf.not_equal(token_ids, PAD_ID), tf.logical_not(is_sep))
        after_first = tf.equal(tf.cumsum(tf.cast(is_sep, tf.int32), axis=1), 1)
        return tf.logical_and(after_first, tf.logical_not(is_sep))

    def tokenize_query(self, query):
        """`query_ids` `[B, query_length]` alone (encoded once per request)."""
        def fn(query):
            q, q_len = self._dense(self._word_pieces([query])[0], self.query_length - 2)
            return _pack(q, q_len, self.query_length, self.cls_id, self.sep_id)
        return self._run(fn, query)

    def tokenize_title(self, title):
        """`title_ids` `[B, title_length]` alone (precomputed per item at export)."""
        def fn(title):
            t, t_len = self._dense(self._word_pieces([title])[0], self.title_length - 1)
            return _pack(t, t_len, self.title_length, None, self.sep_id)
        return self._run(fn, title)

    def compute_output_spec(self, query, title):
        batch = query.shape[0]
        return {
            "token_ids": keras.KerasTensor(
                (batch, None if self.pad_to_longest else self.max_length), dtype="int32"),
            "query_ids": keras.KerasTensor((batch, self.query_length), dtype="int32"),
            "title_ids": keras.KerasTensor((batch, self.title_length), dtype="int32"),
        }

    def get_config(self):
        config = super().get_config()
        config.update({
            "vocabulary": list(self.vocabulary),
            "max_length": self.max_length,
            "query_length": self.query_length,
            "title_length": self.title_length,
            "lowercase": self.lowercase,
            "strip_accents": self.strip_accents,
            "pad_to_longest": self.pad_to_longest,
        })
        return config
