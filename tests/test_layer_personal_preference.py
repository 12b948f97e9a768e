import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from test_layer_event_encoder import K, feature_inputs, id_embeddings, random_features  # noqa: E402
from test_layer_target_attention import np_masked_softmax  # noqa: E402

from prectr_tf.layers.event_encoder import EventEncoder  # noqa: E402
from prectr_tf.layers.personal_preference import PersonalRelevancePreference  # noqa: E402

RNG = np.random.default_rng(0)
D = 6


def encoded(batch=3, length=5, width=7, lengths=(5, 2, 0)):
    mask = np.arange(length)[None, :] < np.asarray(lengths)[:, None]
    return {
        "events": tf.constant(RNG.normal(size=(batch, length, width)) * mask[..., None],
                              tf.float32),
        "padding_mask": tf.constant(mask),
        "query_similarity": tf.constant(RNG.uniform(-1, 1, (batch, length)) * mask, tf.float32),
        "item_similarity": tf.constant(RNG.uniform(-1, 1, (batch, length)) * mask, tf.float32),
    }


def test_numpy_reference():
    inputs = encoded()
    layer = PersonalRelevancePreference(D, similarity_scale=3.0, hidden_units=(4,))
    out, weights = layer(inputs, return_attention_scores=True)
    x = {k: v.numpy() for k, v in inputs.items()}
    hidden, score_out = layer.score_layers
    h = np.maximum(x["events"] @ hidden.kernel.numpy() + hidden.bias.numpy(), 0)
    scores = (3.0 * x["query_similarity"] + 3.0 * x["item_similarity"]
              + (h @ score_out.kernel.numpy() + score_out.bias.numpy())[..., 0])
    w = np_masked_softmax(scores, x["padding_mask"])
    pooled = np.einsum("bl,ble->be", w, x["events"])
    expected = pooled @ layer.projection.kernel.numpy() + layer.projection.bias.numpy()
    expected *= x["padding_mask"].any(1, keepdims=True)
    np.testing.assert_allclose(weights.numpy(), w, atol=1e-6)
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-5)
    assert out.shape == (3, D)


def test_empty_history_is_exactly_zero():
    layer = PersonalRelevancePreference(D)
    inputs = encoded()
    layer(inputs)
    layer.projection.bias.assign(np.ones(D))  # a bias must not leak into r_user
    with tf.GradientTape() as tape:
        out = layer(inputs)
        loss = tf.reduce_sum(out)
    assert np.all(out.numpy()[2] == 0.0) and np.any(out.numpy()[0] != 0.0)
    assert all(np.all(np.isfinite(tf.convert_to_tensor(g).numpy()))
               for g in tape.gradient(loss, layer.trainable_variables))


def test_similar_events_dominate():
    # Without the learned term, weights follow exp(scale * similarity):
    # the event under the current query (sim 1) gets e^scale x the others.
    inputs = encoded(batch=1, lengths=(3,))
    inputs["query_similarity"] = tf.constant([[1.0, 0.0, 0.0, 0.0, 0.0]])
    inputs["item_similarity"] = tf.zeros((1, 5))
    layer = PersonalRelevancePreference(D, similarity_scale=5.0, hidden_units=())
    _, weights = layer(inputs, return_attention_scores=True)
    w = weights.numpy()[0]
    np.testing.assert_allclose(w[0] / w[1], np.exp(5.0), rtol=1e-4)
    np.testing.assert_allclose(w[3:], 0.0)


def test_padding_does_not_change_output():
    inputs = encoded()
    layer = PersonalRelevancePreference(D)
    base = layer(inputs).numpy()
    mask = inputs["padding_mask"].numpy()
    noisy = dict(inputs)
    for key in ("events", "query_similarity", "item_similarity"):
        garbage = RNG.normal(size=inputs[key].shape).astype("float32") * 50
        m = mask if key != "events" else mask[..., None]
        noisy[key] = tf.constant(np.where(m, inputs[key].numpy(), garbage))
    np.testing.assert_allclose(layer(noisy).numpy(), base, atol=1e-5)


def test_config_round_trip():
    layer = PersonalRelevancePreference(8, similarity_scale=2.0, hidden_units=(4, 2),
                                        activation="tanh")
    clone = PersonalRelevancePreference.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


def _model(features):
    inputs = feature_inputs(features)
    item, category, query = id_embeddings(seed=1)
    history = EventEncoder(K, item, category, query)(inputs, list_name="user_history")
    r_user = PersonalRelevancePreference(4, hidden_units=(8,))(history)
    return keras.Model(inputs, keras.layers.Dense(1)(r_user))


def test_keras_save_load(tmp_path):
    features = random_features()
    model = _model(features)
    expected = model(features).numpy()
    model.save(tmp_path / "m.keras")
    restored = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(restored(features).numpy(), expected, atol=0)


def test_fit_click_rate_under_the_current_query():
    # Target: the user's click rate on past events under the *current* query
    # — it needs the query-similarity weighting, not a plain mean.
    features = random_features(batch=256, seed=2, lengths=[5])
    f = {k: v.numpy() for k, v in features.items()}
    mask = np.arange(5)[None, :] < f["user_history_length"][:, None]
    same = mask & (f["user_history_query_id"] == f["query_id"][:, None])
    clicks = (f["user_history_click"] == 1) & same
    y = np.where(same.any(1), clicks.sum(1) / np.maximum(same.sum(1), 1), 0.0)[:, None]
    keras.utils.set_random_seed(0)
    model = _model(features)
    model.compile(optimizer=keras.optimizers.SGD(0.2), loss="mse")

    def loss():
        return float(np.mean((model(features).numpy() - y) ** 2))

    before = loss()
    model.fit(tf.data.Dataset.from_tensors((features, y)).repeat(60), epochs=1, verbose=0,
              shuffle=False)
    after = loss()
    # Well below the best constant predictor (the variance of y), not only
    # below the starting point.
    assert after < 0.5 * before and after < 0.3 * y.var()
