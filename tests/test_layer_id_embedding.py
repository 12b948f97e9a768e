import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from prectr_tf.layers.id_embedding import (  # noqa: E402
    IdEmbedding, get_id_embedding, load_vocabulary)

VOCAB = ["u1", "u2", "u3"]


def table(layer):
    return layer.table.embeddings.numpy()


def test_vocabulary_index_layout_and_cold_start():
    layer = IdEmbedding(4, vocabulary=VOCAB, num_oov_indices=3)
    ids = tf.constant([["u1", "u3", ""], ["never-seen", "other-new", "u2"]])
    index = layer.lookup(ids).numpy()
    # 0 padding, 1..3 OOV buckets, vocabulary from 4 on in file order.
    assert index[0].tolist() == [4, 6, 0]
    assert index[1, 2] == 5
    assert 1 <= index[1, 0] <= 3 and 1 <= index[1, 1] <= 3
    assert layer.input_dim == 1 + 3 + 3
    # An unseen id is deterministic: the same cold user, the same bucket.
    assert layer.lookup(tf.constant(["never-seen"])).numpy()[0] == index[1, 0]


def test_vectors_are_table_rows_and_padding_is_exact_zero():
    layer = IdEmbedding(5, vocabulary=VOCAB, embeddings_initializer="random_normal")
    ids = tf.constant(["u2", "", "zzz", "u1"])
    out = layer(ids).numpy()
    rows = table(layer)
    np.testing.assert_allclose(out[0], rows[3])
    np.testing.assert_allclose(out[2], rows[1])  # the single OOV bucket
    np.testing.assert_allclose(out[3], rows[2])
    assert np.all(out[1] == 0.0)
    # Padding stays zero even if row 0 of the table is not zero.
    layer.table.embeddings.assign(np.ones_like(rows))
    assert np.all(layer(ids).numpy()[1] == 0.0)


def test_padding_gets_no_gradient():
    layer = IdEmbedding(3, vocabulary=VOCAB)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(tf.constant(["", "u1", ""])) * 2.0)
    grad = tf.convert_to_tensor(tape.gradient(loss, layer.table.embeddings)).numpy()
    assert np.all(grad[0] == 0.0)
    np.testing.assert_allclose(grad[2], 2.0)


def test_vocabulary_file_is_read_into_the_config(tmp_path):
    path = tmp_path / "user_id.txt"
    path.write_text("u1\nu2\n\nu1\n[UNK]\nu3\n", encoding="utf-8")
    assert load_vocabulary(path) == ["u1", "u2", "", "u1", "[UNK]", "u3"]
    layer = IdEmbedding(4, vocabulary=str(path))
    # "", duplicates and the OOV token are dropped; order kept.
    assert layer.vocabulary == VOCAB
    config = layer.get_config()
    path.unlink()  # the config alone must rebuild the layer
    clone = IdEmbedding.from_config(config)
    ids = tf.constant(["u3", "x", ""])
    np.testing.assert_array_equal(clone.lookup(ids).numpy(), layer.lookup(ids).numpy())


def test_int64_hashing_reference():
    layer = IdEmbedding(4, num_buckets=7, id_dtype="int64")
    ids = np.array([[0, 6, 7, -1], [2**62 + 5, 13, -1, 1]], dtype=np.int64)
    expected = np.where(ids < 0, 0, ids % 7 + 1)
    np.testing.assert_array_equal(layer.lookup(tf.constant(ids)).numpy(), expected)
    out = layer(tf.constant(ids)).numpy()
    assert out.shape == (2, 4, 4)
    assert np.all(out[ids < 0] == 0.0)
    np.testing.assert_allclose(out[0, 2], table(layer)[1])


def test_string_hashing_mode():
    layer = IdEmbedding(4, num_buckets=10)
    index = layer.lookup(tf.constant(["a", "", "b", "a"])).numpy()
    assert index[1] == 0 and index[0] == index[3]
    assert np.all((index[[0, 2]] >= 1) & (index[[0, 2]] <= 10))


def test_bad_arguments():
    with pytest.raises(ValueError, match="vocabulary.*num_buckets"):
        IdEmbedding(4)
    with pytest.raises(ValueError, match="string ids only"):
        IdEmbedding(4, vocabulary=["a"], id_dtype="int64")
    with pytest.raises(ValueError, match="num_oov_indices"):
        IdEmbedding(4, vocabulary=["a"], num_oov_indices=0)
    with pytest.raises(TypeError):
        get_id_embedding(3)


def test_get_id_embedding_shares_or_owns():
    shared = IdEmbedding(4, vocabulary=VOCAB)
    assert get_id_embedding(shared) is shared
    owned = get_id_embedding({"output_dim": 2, "num_buckets": 5}, name="q")
    assert owned.name == "q" and owned.output_dim == 2
    restored = get_id_embedding(keras.saving.serialize_keras_object(shared))
    assert isinstance(restored, IdEmbedding) and restored.vocabulary == VOCAB


def test_config_round_trip():
    layer = IdEmbedding(6, vocabulary=VOCAB, num_oov_indices=2, name="users")
    clone = IdEmbedding.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


def _model():
    users = keras.Input(shape=(), dtype="string", name="user_id")
    queries = keras.Input(shape=(2,), dtype="int64", name="query_ids")
    user_vec = IdEmbedding(4, vocabulary=VOCAB, name="users")(users)
    query_vec = IdEmbedding(4, num_buckets=50, id_dtype="int64", name="queries")(queries)
    out = keras.layers.Dense(1)(keras.ops.concatenate(
        [user_vec, keras.ops.sum(query_vec, axis=1)], axis=-1))
    return keras.Model({"user_id": users, "query_ids": queries}, out)


def _inputs():
    return {"user_id": tf.constant(["u1", "cold", "", "u3"]),
            "query_ids": tf.constant([[3, -1], [123456789012, 5], [-1, -1], [7, 7]],
                                     dtype=tf.int64)}


def test_keras_save_load_and_saved_model_export(tmp_path):
    model = _model()
    expected = model(_inputs()).numpy()
    model.save(tmp_path / "m.keras")
    restored = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(restored(_inputs()).numpy(), expected, rtol=0, atol=0)

    export_dir = str(tmp_path / "export")
    model.export(export_dir, format="tf_saved_model", verbose=False, input_signature=[{
        "user_id": tf.TensorSpec([None], tf.string, name="user_id"),
        "query_ids": tf.TensorSpec([None, 2], tf.int64, name="query_ids")}])
    served = tf.saved_model.load(export_dir)
    np.testing.assert_allclose(served.serve(_inputs()).numpy(), expected, atol=1e-6)


def test_fit_learns_per_user_targets():
    keras.utils.set_random_seed(0)
    users = keras.Input(shape=(), dtype="string")
    out = keras.layers.Dense(1)(IdEmbedding(4, vocabulary=VOCAB)(users))
    model = keras.Model(users, out)
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
    x = tf.constant(["u1", "u2", "u3", "new"] * 16)
    y = tf.constant([1.0, -1.0, 2.0, 0.5] * 16)[:, None]

    def loss():
        return float(tf.reduce_mean((model(x) - y) ** 2))

    before = loss()
    model.fit(tf.data.Dataset.from_tensors((x, y)).repeat(40), epochs=1, verbose=0,
              shuffle=False)
    assert loss() < 0.05 * before


def test_an_empty_vocabulary_sends_every_id_to_the_oov_bucket():
    # Home Depot has no categories: the category vocabulary is empty.
    layer = IdEmbedding(4, vocabulary=[])
    ids = tf.constant([["", "a"], ["b", ""]])
    assert layer.lookup(ids).numpy().tolist() == [[0, 1], [1, 0]]
    out = layer(ids).numpy()
    assert np.all(out[0, 0] == 0) and np.allclose(out[0, 1], out[1, 0])
    again = IdEmbedding.from_config(layer.get_config())
    assert again.lookup(ids).numpy().tolist() == [[0, 1], [1, 0]]


@pytest.mark.parametrize("num_shards", [2, 3, 7])
def test_a_sharded_table_looks_up_what_one_table_holds(num_shards):
    vocabulary = [f"u{i}" for i in range(10)]  # 12 rows: padding, OOV, 10 ids
    one = IdEmbedding(4, vocabulary=vocabulary)
    split = IdEmbedding(4, vocabulary=vocabulary, num_shards=num_shards)
    ids = tf.constant([["u0", "u9", ""], ["new", "u4", "u5"]])
    one(ids), split(ids)
    sizes = [t.embeddings.shape[0] for t in split.shards]
    # "div" layout: contiguous rows, the first 12 % n shards one row longer.
    assert sum(sizes) == 12 and max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes)[::-1]
    table = one.table.embeddings.numpy()
    for shard, rows in zip(split.shards, np.split(table, np.cumsum(sizes)[:-1])):
        shard.embeddings.assign(rows)
    np.testing.assert_allclose(split(ids).numpy(), one(ids).numpy(), atol=0)
    assert not split(ids).numpy()[0, 2].any()  # padding stays an exact zero
    # Gradients reach only the shards holding the looked-up rows.
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(split(tf.constant(["u9"])))
    grads = tape.gradient(loss, [t.embeddings for t in split.shards])
    touched = [g is not None and np.abs(tf.convert_to_tensor(g).numpy()).sum() > 0
               for g in grads]
    assert sum(touched) == 1 and touched[-1]
    again = IdEmbedding.from_config(split.get_config())
    assert again.num_shards == num_shards and len(again.shards) == num_shards


def test_shards_are_at_most_the_rows_and_at_least_one():
    assert IdEmbedding(2, vocabulary=["a"], num_shards=8).num_shards == 3
    with pytest.raises(ValueError, match="num_shards must be >= 1"):
        IdEmbedding(2, vocabulary=["a"], num_shards=0)
