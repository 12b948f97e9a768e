import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from test_layer_event_encoder import (  # noqa: E402
    CATEGORIES, ITEMS, USERS, feature_inputs, random_features)

from prectr_tf.layers.ctr_tower import BaseCTRTower  # noqa: E402
from prectr_tf.layers.event_encoder import EventEncoder  # noqa: E402
from prectr_tf.layers.id_embedding import IdEmbedding  # noqa: E402

K = 4
D = 6


def make_tower(**kwargs):
    kwargs.setdefault("hidden_units", (16,))
    return BaseCTRTower(
        K,
        user_embedding={"output_dim": 4, "vocabulary": USERS},
        item_embedding={"output_dim": 8, "vocabulary": ITEMS},
        category_embedding={"output_dim": 4, "vocabulary": CATEGORIES},
        query_embedding={"output_dim": 4, "num_buckets": 16, "id_dtype": "int64"},
        **kwargs)


def relevance(batch, seed=0):
    return tf.constant(np.random.default_rng(seed).normal(size=(batch, D)), tf.float32)


def test_shapes_and_optional_relevance():
    features = random_features()
    tower = make_tower()
    assert tower(features, relevance_vector=relevance(4)).shape == (4, K)
    assert make_tower()(features).shape == (4, K)  # the `dnn` baseline: no r


@pytest.mark.parametrize("stop", [True, False])
def test_stop_gradient_relevance(stop):
    features = random_features()
    tower = make_tower(stop_gradient_relevance=stop)
    r = relevance(4)
    with tf.GradientTape() as tape:
        tape.watch(r)
        logits = tower(features, relevance_vector=r)
        loss = tf.reduce_sum(logits ** 2)
    grad_r, *grad_w = tape.gradient(loss, [r] + tower.trainable_variables)
    if stop:
        assert grad_r is None or np.all(tf.convert_to_tensor(grad_r).numpy() == 0.0)
    else:
        assert np.abs(tf.convert_to_tensor(grad_r).numpy()).sum() > 0
    # The tower itself trains either way, and r still shapes its output.
    assert all(g is not None for g in grad_w)
    other = tower(features, relevance_vector=r + 1.0).numpy()
    assert not np.allclose(other, logits.numpy())


def test_history_padding_does_not_change_logits():
    features = random_features(lengths=[0, 2, 5, 3])
    tower = make_tower(attention_score="dot")
    r = relevance(4)
    base = tower(features, relevance_vector=r).numpy()
    mask = np.arange(5)[None, :] < features["user_history_length"].numpy()[:, None]
    noisy = dict(features)
    for name, value in (("user_history_item_id", "i1"), ("user_history_item_category", "c2")):
        noisy[name] = tf.where(tf.constant(mask), features[name], tf.fill(tf.shape(features[name]),
                                                                          value))
    np.testing.assert_allclose(tower(noisy, relevance_vector=r).numpy(), base, atol=1e-6)
    # ... while the real history does matter.
    changed = dict(features)
    changed["user_history_item_id"] = tf.where(tf.constant(mask), "i7",
                                               features["user_history_item_id"])
    assert not np.allclose(tower(changed, relevance_vector=r).numpy()[1:], base[1:])


def test_item_features_and_cold_users():
    features = random_features()
    features["item_features"] = tf.constant(np.ones((4, 3)), tf.float32)
    tower = make_tower(use_item_features=True)
    base = tower(features).numpy()
    features["item_features"] = tf.zeros((4, 3))
    assert not np.allclose(tower(features).numpy(), base)
    cold = dict(features, user_id=tf.constant(["never-seen"] * 4))
    assert np.all(np.isfinite(tower(cold).numpy()))


def test_shared_embedding_instances():
    item = IdEmbedding(8, vocabulary=ITEMS)
    tower = BaseCTRTower(K, {"output_dim": 4, "vocabulary": USERS}, item,
                         {"output_dim": 4, "vocabulary": CATEGORIES},
                         {"output_dim": 4, "num_buckets": 16, "id_dtype": "int64"})
    assert tower.item_embedding is item


@keras.saving.register_keras_serializable(package="prectr_tf_tests")
class SharedEmbeddingModel(keras.Model):
    """The pattern a full model uses: it creates the shared embeddings from
    its own config and hands the same instances to the encoder and tower."""

    def __init__(self, dim=8, **kwargs):
        super().__init__(**kwargs)
        self.dim = dim
        item = IdEmbedding(dim, vocabulary=ITEMS, name="item_embedding")
        category = IdEmbedding(4, vocabulary=CATEGORIES, name="category_embedding")
        query = IdEmbedding(4, num_buckets=16, id_dtype="int64", name="query_embedding")
        self.encoder = EventEncoder(K, item, category, query)
        self.tower = BaseCTRTower(K, {"output_dim": 4, "vocabulary": USERS}, item, category,
                                  query, hidden_units=(8,))

    def call(self, features):
        events = self.encoder(features, list_name="user_history")["events"]
        return self.tower(features, relevance_vector=keras.ops.mean(events, axis=1))

    def get_config(self):
        return {**super().get_config(), "dim": self.dim}


def test_shared_embeddings_survive_save_load_in_a_subclassed_model(tmp_path):
    features = random_features()
    model = SharedEmbeddingModel()
    expected = model(features).numpy()
    assert model.tower.item_embedding is model.encoder.item_embedding
    variables = model.trainable_variables
    assert len(variables) == len({id(v) for v in variables})
    model.save(tmp_path / "m.keras")
    restored = keras.saving.load_model(tmp_path / "m.keras")
    assert restored.tower.item_embedding is restored.encoder.item_embedding
    np.testing.assert_allclose(restored(features).numpy(), expected, atol=0)


def test_config_round_trip_and_keras_save_load(tmp_path):
    tower = make_tower(hidden_units=(8, 4), dropout=0.1, stop_gradient_relevance=True)
    clone = BaseCTRTower.from_config(tower.get_config())
    assert clone.get_config() == tower.get_config()

    features = random_features()
    inputs = feature_inputs(features)
    r_in = keras.Input((D,), name="r")
    model = keras.Model({**inputs, "r": r_in}, tower(inputs, relevance_vector=r_in))
    data = {**features, "r": relevance(4)}
    expected = model(data).numpy()
    model.save(tmp_path / "m.keras")
    restored = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(restored(data).numpy(), expected, atol=0)


def test_fit_learns_clicks_that_depend_on_item_and_relevance():
    keras.utils.set_random_seed(0)
    batch = 256
    features = random_features(batch=batch, seed=3)
    r = relevance(batch, seed=3)
    # Click prob depends on the item and on r's first coordinate, so a
    # (K-logit) tower must use both the id embedding and r.
    item_index = np.array([ITEMS.index(i.decode()) for i in features["item_id"].numpy()])
    y = ((item_index % 2 == 0) & (r.numpy()[:, 0] > 0)).astype("float32")
    y = np.repeat(y[:, None], K, axis=1)
    inputs = feature_inputs(features)
    r_in = keras.Input((D,), name="r")
    model = keras.Model({**inputs, "r": r_in}, make_tower()(inputs, relevance_vector=r_in))
    model.compile(optimizer=keras.optimizers.SGD(1.0),
                  loss=keras.losses.BinaryCrossentropy(from_logits=True))
    data = {**features, "r": r}

    def loss():
        return float(keras.losses.BinaryCrossentropy(from_logits=True)(y, model(data)))

    before = loss()
    model.fit(tf.data.Dataset.from_tensors((data, y)).repeat(40), epochs=1, verbose=0,
              shuffle=False)
    after = loss()
    assert after < 0.5 * before


def test_interaction_term_is_the_projected_dot_product_added_to_every_logit(tmp_path):
    features = random_features()
    r = relevance(4)
    tower = make_tower(interaction_dim=3)
    logits = tower(features, relevance_vector=r).numpy()
    context = tower.context(features)
    # The same tower without the term: the MLP logits alone.
    mlp_only = tower.logits(apply_mlp_only(tower, context, r)).numpy()
    user = np.concatenate([tower.user_embedding(features["user_id"]).numpy(),
                           tower.history_attention(
                               np.concatenate([tower.item_embedding(features["item_id"]).numpy(),
                                               tower.category_embedding(
                                                   features["item_category"]).numpy()], -1),
                               history_of(tower, features),
                               padding_mask=history_mask(features)).numpy()], -1)
    target = np.concatenate([tower.item_embedding(features["item_id"]).numpy(),
                             tower.category_embedding(features["item_category"]).numpy()], -1)
    w_u, b_u = (v.numpy() for v in tower.user_factor.weights)
    (w_i,) = (v.numpy() for v in tower.item_factor.weights)
    dot = np.sum((user @ w_u + b_u) * (target @ w_i), axis=-1, keepdims=True)
    assert np.abs(dot).max() > 1e-3
    np.testing.assert_allclose(logits, mlp_only + dot, atol=1e-5)
    clone = BaseCTRTower.from_config(tower.get_config())
    assert clone.get_config()["interaction_dim"] == 3
    with pytest.raises(ValueError, match="interaction_dim"):
        make_tower(interaction_dim=-1)


def apply_mlp_only(tower, context, r):
    from prectr_tf.layers.ctr_tower import apply_mlp
    return apply_mlp(tower.hidden, tf.concat([context["before_r"], r, context["after_r"]], -1),
                     False)


def history_of(tower, features):
    from prectr_tf.layers.ctr_tower import per_row
    return per_row(tf.concat([tower.item_embedding(features["user_history_item_id"]),
                              tower.category_embedding(features["user_history_item_category"])],
                             -1), features)


def history_mask(features):
    from prectr_tf.layers.ctr_tower import lengths_to_mask
    return lengths_to_mask(features["user_history_length"],
                           tf.shape(features["user_history_item_id"])[1])
