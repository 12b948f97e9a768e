"""`RelevanceTextEncoder`: joint and split arrangements, modes, masks, serialization."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from prectr_tf.layers.text_encoder import RelevanceTextEncoder

TINY = dict(vocabulary_size=50, sequence_length=16, num_layers=3, hidden_dim=16, num_heads=2,
            intermediate_dim=32, dropout=0.2)
# [CLS]=1, [SEP]=2, padding 0.
PAIRS = np.array([[1, 5, 6, 2, 7, 8, 9, 2, 0, 0],
                  [1, 11, 2, 12, 13, 2, 0, 0, 0, 0],
                  [1, 5, 6, 2, 7, 8, 30, 2, 0, 0]], dtype="int32")
QUERIES = np.array([[1, 5, 6, 2, 0], [1, 11, 2, 0, 0], [1, 5, 6, 2, 0]], dtype="int32")
TITLES = np.array([[7, 8, 9, 2, 0, 0], [12, 13, 2, 0, 0, 0], [7, 8, 30, 2, 0, 0]],
                  dtype="int32")


def _split_inputs(pad=0):
    return {"query_ids": np.pad(QUERIES, [[0, 0], [0, pad]]),
            "title_ids": np.pad(TITLES, [[0, 0], [0, pad]])}


def test_default_encoder_has_about_2m_parameters():
    encoder = RelevanceTextEncoder()
    encoder.build()
    count = encoder.count_params()
    print(f"default RelevanceTextEncoder: {count:,} parameters")
    # 30k x 64 token + 32 x 64 position embeddings + 3 x 49,984 per layer
    # + the embedding layer norm.
    assert count == 30_000 * 64 + 32 * 64 + 128 + 3 * 49_984 == 2_072_128
    split = RelevanceTextEncoder(num_split_layers=2)
    split.build()
    assert split.count_params() == count + 2 * 64  # + the segment embedding


def test_joint_shape_padding_and_content():
    encoder = RelevanceTextEncoder(**TINY)
    r = encoder(PAIRS)
    assert r.shape == (3, TINY["hidden_dim"])
    # Appended padding is masked out: r is unchanged.
    np.testing.assert_allclose(encoder(np.pad(PAIRS, [[0, 0], [0, 6]])), r, atol=1e-6)
    np.testing.assert_allclose(encoder({"token_ids": PAIRS}), r, atol=1e-6)
    np.testing.assert_allclose(encoder.encode_pair(PAIRS), r, atol=1e-6)
    # ... while a real token does change it (rows 0 and 2 differ in one title token).
    assert np.abs(r[0] - r[2]).max() > 1e-4  # well above the 1e-6 float noise


@pytest.mark.parametrize("num_split_layers", [1, 2])
def test_split_title_cache_gives_exactly_the_full_r(num_split_layers):
    """Two joint layers cache lower-layer states; one joint layer (the
    default split) caches the top layer's keys and values."""
    encoder = RelevanceTextEncoder(num_split_layers=num_split_layers, **TINY)
    r = encoder(_split_inputs())
    assert r.shape == (3, TINY["hidden_dim"])
    # Export-style: a title's cache computed alone (e.g. per item, once),
    # then combined with any query.
    cache = encoder.encode_title_cache(TITLES)
    width = TINY["hidden_dim"] * (2 if num_split_layers == 2 else 1)
    assert encoder.title_cache_dim == width
    assert cache.shape == (3, TITLES.shape[1], width)
    np.testing.assert_allclose(encoder.call_with_title_cache(QUERIES, cache, TITLES != 0), r,
                               atol=1e-5)
    # A title's cache does not depend on the batch or query it came with.
    np.testing.assert_allclose(encoder.encode_title_cache(TITLES[::-1])[::-1], cache,
                               atol=1e-6)
    # The query side once per request, broadcast over candidates: request 0
    # (QUERIES[0] == QUERIES[2]) against all three titles.
    broadcast = encoder.call_with_title_cache(QUERIES[:2], cache, TITLES != 0,
                                              request_index=np.array([0, 1, 0]))
    np.testing.assert_allclose(broadcast, r, atol=1e-5)
    swapped = encoder.call_with_title_cache(QUERIES[:2], cache, TITLES != 0,
                                            request_index=np.array([1, 1, 0]))
    assert np.abs(swapped[0] - r[0]).max() > 1e-4  # another query, another r
    np.testing.assert_allclose(swapped[1:], r[1:], atol=1e-5)
    # Padding on either side is masked; a changed title token is not.
    np.testing.assert_allclose(encoder(_split_inputs(pad=4)), r, atol=1e-5)
    assert np.abs(r[0] - r[2]).max() > 1e-4  # well above the 1e-6 float noise
    with pytest.raises(ValueError):
        encoder.encode_pair(PAIRS)
    with pytest.raises(ValueError):
        encoder(PAIRS)
    with pytest.raises(ValueError):
        RelevanceTextEncoder(num_split_layers=3, **TINY)


def _gradients(encoder):
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(encoder(PAIRS, training=True)))
    return tape.gradient(loss, encoder.weights)


def test_frozen_mode_blocks_gradients_and_dropout():
    frozen = RelevanceTextEncoder(mode="frozen", **TINY)
    frozen.build()
    assert frozen.trainable_weights == [] and not frozen.trainable
    assert not any(w.trainable for w in frozen.weights)
    assert all(g is None for g in _gradients(frozen))
    # Dropout is off in frozen mode even when training.
    np.testing.assert_allclose(frozen(PAIRS, training=True), frozen(PAIRS), atol=1e-6)

    finetune = RelevanceTextEncoder(mode="finetune", **TINY)
    finetune.build()
    assert len(finetune.trainable_weights) == len(finetune.weights)
    grads = _gradients(finetune)
    assert all(g is not None for g in grads)
    assert not np.allclose(finetune(PAIRS, training=True), finetune(PAIRS))

    finetune.mode = "frozen"
    assert not any(w.trainable for w in finetune.weights)
    finetune.mode = "finetune"
    assert all(w.trainable for w in finetune.weights)
    with pytest.raises(ValueError):
        finetune.mode = "sft"


def test_fit_updates_the_encoder_only_in_finetune_mode():
    # One model holding a frozen and a fine-tuned encoder: one train graph.
    # One layer and SGD: the same property, a much smaller graph.
    keras.utils.set_random_seed(0)
    ids = keras.Input(shape=(None,), dtype="int32")
    frozen = RelevanceTextEncoder(mode="frozen", **{**TINY, "num_layers": 1})
    finetune = RelevanceTextEncoder(mode="finetune", **{**TINY, "num_layers": 1})
    head = keras.layers.Dense(1)
    model = keras.Model(ids, head(keras.layers.Concatenate()([frozen(ids), finetune(ids)])))
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse", jit_compile=False)
    before = {id(w): w.numpy().copy() for w in model.weights}
    model.fit(PAIRS, np.array([1.0, -1.0, 0.5]), epochs=2, verbose=0)

    def changed(layer):
        return [not np.array_equal(before[id(w)], w.numpy()) for w in layer.weights]

    assert not any(changed(frozen))
    assert all(changed(finetune))
    assert all(changed(head))


def test_config_round_trip():
    encoder = RelevanceTextEncoder(num_split_layers=1, mode="frozen", **TINY)
    config = encoder.get_config()
    clone = RelevanceTextEncoder.from_config(config)
    assert clone.get_config() == config
    assert clone.mode == "frozen" and not clone.trainable


@pytest.mark.parametrize("num_split_layers", [0, 2])
def test_keras_save_load(num_split_layers, tmp_path):
    encoder = RelevanceTextEncoder(num_split_layers=num_split_layers, **TINY)
    if num_split_layers:
        inputs = {"query_ids": keras.Input(shape=(None,), dtype="int32", name="query_ids"),
                  "title_ids": keras.Input(shape=(None,), dtype="int32", name="title_ids")}
        data = _split_inputs()
    else:
        inputs = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        data = PAIRS
    model = keras.Model(inputs, encoder(inputs))
    expected = model(data)
    path = tmp_path / "encoder.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded(data), expected, atol=1e-6)
    assert loaded.layers[-1].get_config() == encoder.get_config()


def test_reads_pair_tokenizer_output_in_both_arrangements():
    from prectr_tf.layers.text_preprocessing import RESERVED_TOKENS, PairTokenizer

    vocabulary = list(RESERVED_TOKENS) + ["red", "shoe", "##s", "nike", "blue", "jeans"]
    tokenizer = PairTokenizer(vocabulary, max_length=12, query_length=5, title_length=8)
    ids = tokenizer(tf.constant(["red shoes", "blue jeans"]),
                    tf.constant(["Nike red shoe", "blue jeans jeans"]))
    config = {**TINY, "vocabulary_size": tokenizer.vocabulary_size, "sequence_length": 12}
    joint = RelevanceTextEncoder(**config)
    split = RelevanceTextEncoder(num_split_layers=1, **config)
    assert joint(ids).shape == split(ids).shape == (2, TINY["hidden_dim"])
    np.testing.assert_allclose(joint(ids), joint(ids["token_ids"]), atol=1e-6)
    np.testing.assert_allclose(
        split.call_with_title_cache(ids["query_ids"],
                                    split.encode_title_cache(ids["title_ids"]),
                                    ids["title_ids"] != 0),
        split(ids), atol=1e-5)


@pytest.mark.parametrize("num_split_layers", [0, 2])
def test_the_cls_only_top_layer_equals_running_every_position(num_split_layers):
    """r computes the top layer at [CLS] only; the full stack of keras-hub
    layers over every position must give the same [CLS] vector."""
    encoder = RelevanceTextEncoder(num_split_layers=num_split_layers, **TINY)
    if num_split_layers:
        inputs = _split_inputs(pad=2)
        r = encoder(inputs)
        q = encoder.encode_query_states(inputs["query_ids"])
        t = encoder.encode_title_states(inputs["title_ids"])
        x = keras.ops.concatenate([q, t], axis=1)
        mask = np.concatenate([inputs["query_ids"] != 0, inputs["title_ids"] != 0], axis=1)
    else:
        ids = np.pad(PAIRS, [[0, 0], [0, 3]])
        r = encoder(ids)
        x = encoder._embed(ids, None, False)
        mask = ids != 0
    for layer in encoder.transformer_layers[num_split_layers:]:
        x = layer(x, padding_mask=mask, training=False)
    np.testing.assert_allclose(r, x[:, 0, :], atol=1e-5)
