"""WordPiece vocabulary learning and `PairTokenizer` (DESIGN §4.1)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from prectr_tf.layers.text_preprocessing import (
    PAD_ID, RESERVED_TOKENS, PairTokenizer, learn_wordpiece_vocabulary, load_vocabulary,
    save_vocabulary)

QUERIES = ["red running shoes", "Blue Denim Jeans", "cordless drill", "wood screws"]
TITLES = ["Nike Air Max running shoe, red, size 10", "Levi's 501 jeans - blue denim",
          "DeWalt 20V cordless drill driver kit", "Wood screws #8 x 1-1/4 in. (100-pack)"]
MAX_LENGTH, QUERY_LENGTH, TITLE_LENGTH = 12, 5, 8


@pytest.fixture(scope="module")
def vocabulary():
    # The learner keeps a whole word only if it occurs >= 10 times (its
    # lower threshold), so the tiny corpus is repeated.
    return learn_wordpiece_vocabulary((QUERIES + TITLES) * 10, vocabulary_size=300,
                                      deduplicate=False)


@pytest.fixture(scope="module")
def tokenizer(vocabulary):
    return PairTokenizer(vocabulary, max_length=MAX_LENGTH, query_length=QUERY_LENGTH,
                         title_length=TITLE_LENGTH)


# Every layout case in one batch: eager calls trace a graph (~1 s) each.
CASE_QUERIES = QUERIES + ["RED Running SHOES", "a very long query with many many words", "drill"]
CASE_TITLES = TITLES + ["nike AIR max", "short title", ""]


@pytest.fixture(scope="module")
def tokenized(tokenizer):
    out = tokenizer(tf.constant(CASE_QUERIES), tf.constant(CASE_TITLES))
    return {k: v.numpy() for k, v in out.items()}


def test_vocabulary_reserved_tokens_first_and_lowercased(vocabulary):
    assert tuple(vocabulary[:len(RESERVED_TOKENS)]) == RESERVED_TOKENS
    assert vocabulary[PAD_ID] == "[PAD]"
    learned = vocabulary[len(RESERVED_TOKENS):]
    assert all(token == token.lower() for token in learned)
    assert {"running", "jeans", "drill"} <= set(learned)
    assert len(set(vocabulary)) == len(vocabulary)


def test_vocabulary_file_round_trip(vocabulary, tmp_path):
    path = tmp_path / "vocab.txt"
    save_vocabulary(vocabulary, path)
    assert load_vocabulary(path) == vocabulary


def test_vocabulary_deduplicates_by_default(tmp_path):
    # Deduplicated, no word reaches the learner's count threshold: pieces only.
    vocabulary = learn_wordpiece_vocabulary((QUERIES + TITLES) * 10, 300,
                                            output_file=tmp_path / "vocab.txt")
    assert "running" not in vocabulary and "##n" in vocabulary
    assert load_vocabulary(tmp_path / "vocab.txt") == vocabulary


def test_vocabulary_rejects_empty_corpus():
    with pytest.raises(ValueError):
        learn_wordpiece_vocabulary(["", "  "])


def _reference(tokenizer, query, title):
    """The documented layout, built in Python from keras-hub's Python path."""
    pieces = tokenizer._tokenizer  # eager call: keras-hub's pure-Python WordPiece.
    cls, sep = tokenizer.cls_id, tokenizer.sep_id
    q = list(pieces([query])[0])[:QUERY_LENGTH - 2]
    t = list(pieces([title])[0])
    pad = lambda ids, n: ids + [PAD_ID] * (n - len(ids))  # noqa: E731
    pair = [cls] + q + [sep] + t[:MAX_LENGTH - 3 - len(q)] + [sep]
    return (pad(pair, MAX_LENGTH), pad([cls] + q + [sep], QUERY_LENGTH),
            pad(t[:TITLE_LENGTH - 1] + [sep], TITLE_LENGTH))


def test_layout_and_truncation_match_reference(tokenizer, tokenized):
    out = tokenized
    n = len(CASE_QUERIES)
    assert out["token_ids"].shape == (n, MAX_LENGTH)
    assert out["query_ids"].shape == (n, QUERY_LENGTH)
    assert out["title_ids"].shape == (n, TITLE_LENGTH)
    assert out["token_ids"].dtype == np.int32
    for i, (q, t) in enumerate(zip(CASE_QUERIES, CASE_TITLES)):
        pair, query_ids, title_ids = _reference(tokenizer, q, t)
        np.testing.assert_array_equal(out["token_ids"][i], pair, err_msg=f"{q!r} / {t!r}")
        np.testing.assert_array_equal(out["query_ids"][i], query_ids)
        np.testing.assert_array_equal(out["title_ids"][i], title_ids)
    # Lowercasing: the upper-case query tokenizes like the lower-case one.
    np.testing.assert_array_equal(out["query_ids"][4], out["query_ids"][0])
    # The long title was cut to fit, the query kept; the long query was cut
    # to Sq - 2 pieces.
    assert (out["token_ids"][0] != PAD_ID).all()
    np.testing.assert_array_equal(out["token_ids"][0, :QUERY_LENGTH], out["query_ids"][0])
    assert (out["query_ids"][5] != PAD_ID).all()
    # The empty title is just [SEP].
    assert out["title_ids"][6].tolist() == [tokenizer.sep_id] + [PAD_ID] * (TITLE_LENGTH - 1)


def test_query_and_title_views_alone(tokenizer, tokenized):
    titles = tf.constant(CASE_TITLES)[:, None]  # a [B, 1] column works too
    np.testing.assert_array_equal(tokenizer.tokenize_title(titles).numpy(),
                                  tokenized["title_ids"])
    np.testing.assert_array_equal(tokenizer.tokenize_query(tf.constant(CASE_QUERIES)).numpy(),
                                  tokenized["query_ids"])


def test_config_round_trip_and_vocabulary_path(tokenizer, vocabulary, tmp_path):
    config = tokenizer.get_config()
    clone = PairTokenizer.from_config(config)
    assert clone.get_config() == config
    path = tmp_path / "vocab.txt"
    save_vocabulary(vocabulary, path)
    assert PairTokenizer(str(path)).vocabulary == vocabulary


def test_rejects_bad_vocabulary_and_lengths(vocabulary):
    with pytest.raises(ValueError, match="PAD"):
        PairTokenizer(["[CLS]", "[PAD]", "[SEP]", "[UNK]"])
    with pytest.raises(ValueError, match="SEP"):
        PairTokenizer(["[PAD]", "[CLS]", "[UNK]", "a"])
    with pytest.raises(ValueError):
        PairTokenizer(vocabulary, max_length=8, query_length=8)


def test_keras_save_load_in_a_functional_model(tokenizer, tokenized, tmp_path):
    # predict runs the graph path (as tf.data and exports do); it must equal
    # the eager path, before and after a .keras round trip.
    query = keras.Input(shape=(), dtype="string", name="query")
    title = keras.Input(shape=(), dtype="string", name="item_title")
    model = keras.Model([query, title], tokenizer(query, title))
    model.save(tmp_path / "tokenizer.keras")
    loaded = keras.models.load_model(tmp_path / "tokenizer.keras")
    got = loaded.predict([tf.constant(CASE_QUERIES), tf.constant(CASE_TITLES)], verbose=0)
    for key in ("token_ids", "query_ids", "title_ids"):
        np.testing.assert_array_equal(got[key], tokenized[key])


MULTILINGUAL = ["铸铁暖气片 白色", "暖气片", "pâte à modeler", "crème brûlée torch", "Café au lait",
                "cafe au lait mug", "ÉCRAN plat", "écran tactile"]


@pytest.fixture(scope="module")
def multilingual():
    keep = learn_wordpiece_vocabulary(MULTILINGUAL * 10, vocabulary_size=200, deduplicate=False)
    strip = learn_wordpiece_vocabulary(MULTILINGUAL * 10, vocabulary_size=200, deduplicate=False,
                                       strip_accents=True)
    return (PairTokenizer(keep, max_length=16, query_length=8, title_length=10),
            PairTokenizer(strip, max_length=16, query_length=8, title_length=10,
                          strip_accents=True))


def _words(tokenizer, ids):
    """The text of ids: WordPiece pieces joined, reserved tokens dropped."""
    tokens = [tokenizer.vocabulary[i] for i in ids if i > 4]
    return " ".join(tokens).replace(" ##", "")


def test_chinese_accented_and_empty_text_round_trip(multilingual):
    keep, strip = multilingual
    queries = ["暖气片", "Crème Brûlée", "", "écran"]
    titles = ["铸铁暖气片 白色", "crème brûlée torch", "café au lait", ""]
    out = {k: v.numpy() for k, v in keep(tf.constant(queries), tf.constant(titles)).items()}
    # Chinese is split into characters (BERT's CJK rule), each in the vocabulary
    assert _words(keep, out["query_ids"][0]) == "暖 气 片"
    assert _words(keep, out["title_ids"][0]) == "铸 铁 暖 气 片 白 色"
    # accents kept (and lowercased) when the vocabulary keeps them
    assert _words(keep, out["query_ids"][1]) == "crème brûlée"
    assert _words(keep, out["title_ids"][2]) == "café au lait"
    assert keep.vocabulary.index("[UNK]") not in out["token_ids"][:2].ravel()
    # empty text: an empty side is just its markers, the other side intact
    assert out["query_ids"][2].tolist()[:2] == [keep.cls_id, keep.sep_id]
    assert (out["query_ids"][2][2:] == PAD_ID).all()
    assert out["token_ids"][2][:2].tolist() == [keep.cls_id, keep.sep_id]
    assert _words(keep, out["token_ids"][2]) == "café au lait"
    assert out["title_ids"][3].tolist() == [keep.sep_id] + [PAD_ID] * 9
    # strip_accents maps accented and plain spellings to the same ids
    stripped = strip(tf.constant(["Café au lait", "ÉCRAN"]), tf.constant(["x", "y"]))
    plain = strip(tf.constant(["cafe au lait", "ecran"]), tf.constant(["x", "y"]))
    np.testing.assert_array_equal(stripped["query_ids"].numpy(), plain["query_ids"].numpy())
    assert _words(strip, stripped["query_ids"].numpy()[0]) == "cafe au lait"


def test_pad_to_longest_cuts_only_padding(vocabulary):
    """`token_ids` of a batch are the fixed-length ones cut to the batch's
    longest pair; a batch of short pairs is shorter than `max_length`."""
    queries = tf.constant(["red shoes", "drill", "a very long query about cordless drills"])
    titles = tf.constant(["nike red shoe", "drill bits", "cordless drill kit with two batteries"])
    fixed = PairTokenizer(vocabulary, max_length=32, pad_to_longest=False)
    longest = PairTokenizer(vocabulary, max_length=32)
    full = fixed(queries, titles)["token_ids"].numpy()
    cut = longest(queries, titles)["token_ids"].numpy()
    width = int((full != 0).sum(axis=1).max())
    assert cut.shape == (3, width) and width < 32
    np.testing.assert_array_equal(cut, full[:, :width])
    assert (full[:, width:] == 0).all()
    short = longest(queries[:2], titles[:2])["token_ids"]
    assert short.shape[1] == int((full[:2] != 0).sum(axis=1).max()) < width
    restored = PairTokenizer.from_config(longest.get_config())
    assert restored.pad_to_longest and not PairTokenizer.from_config(
        fixed.get_config()).pad_to_longest


def test_empty_batch_keeps_the_cls_position(vocabulary):
    """An empty batch (a training batch without hard-negative anchors) is cut
    to width 1, not 0, so the encoder's [CLS] slice exists; its r is `[0, d]`."""
    from prectr_tf.layers.text_encoder import RelevanceTextEncoder  # noqa: PLC0415

    tokenizer = PairTokenizer(vocabulary, max_length=32)
    empty = tf.constant([], dtype=tf.string)
    token_ids = tokenizer(empty, empty)["token_ids"]
    assert token_ids.shape == (0, 1)
    encoder = RelevanceTextEncoder(vocabulary_size=300, sequence_length=32, num_layers=1,
                                   hidden_dim=16, num_heads=2, intermediate_dim=32)
    encoder.build()
    assert tuple(encoder.encode_pair(token_ids).shape) == (0, encoder.hidden_dim)
