import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from test_layer_event_encoder import K, feature_inputs, id_embeddings, random_features  # noqa: E402
from test_layer_target_attention import np_masked_softmax  # noqa: E402

from prectr_tf.layers.event_encoder import EventEncoder  # noqa: E402
from prectr_tf.layers.global_preference import (  # noqa: E402
    GlobalPreferenceAggregator, activity_features)

RNG = np.random.default_rng(0)
D = 4


def tiny_inputs(lengths=(4, 2, 0), length=4, width=5):
    batch = len(lengths)
    mask = np.arange(length)[None, :] < np.asarray(lengths)[:, None]
    return {
        "relevance_vector": tf.constant(RNG.normal(size=(batch, D)), tf.float32),
        "context": {"events": tf.constant(RNG.normal(size=(batch, length, width)) * mask[..., None],
                                          tf.float32),
                    "padding_mask": tf.constant(mask)},
        "user_preference": tf.constant(RNG.normal(size=(batch, D)), tf.float32),
        "history_length": tf.constant([0, 3, 5][:batch], tf.int64),
        "user_event_count": tf.constant([0, 10, 100][:batch], tf.int64),
    }


def call(layer, inputs, **kwargs):
    return layer(inputs["relevance_vector"], inputs["context"], inputs["user_preference"],
                 inputs["history_length"], inputs["user_event_count"], **kwargs)


def np_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def test_numpy_reference():
    inputs = tiny_inputs()
    layer = GlobalPreferenceAggregator(num_heads=2, key_dim=3, gate_hidden_units=(5,))
    out = {k: v.numpy() for k, v in call(layer, inputs, return_attention_scores=True).items()}
    r = inputs["relevance_vector"].numpy()
    events = inputs["context"]["events"].numpy()
    mask = inputs["context"]["padding_mask"].numpy()
    w = {name: getattr(layer, f"{name}_dense") for name in ("query", "key", "value", "output")}
    q = (r @ w["query"].kernel.numpy()).reshape(3, 2, 3)
    k = (events @ w["key"].kernel.numpy() + w["key"].bias.numpy()).reshape(3, 4, 2, 3)
    v = (events @ w["value"].kernel.numpy() + w["value"].bias.numpy()).reshape(3, 4, 2, 3)
    attention = np_masked_softmax(np.einsum("bhk,blhk->bhl", q, k) / np.sqrt(3),
                                  np.broadcast_to(mask[:, None, :], (3, 2, 4)))
    pooled = np.einsum("bhl,blhk->bhk", attention, v).reshape(3, 6)
    r_cross = (pooled @ w["output"].kernel.numpy() + w["output"].bias.numpy())
    r_cross *= mask.any(1, keepdims=True)
    hist, count = inputs["history_length"].numpy(), inputs["user_event_count"].numpy()
    activity = np.stack([np.log1p(hist), np.log1p(count), (hist == 0).astype(float),
                         np.log1p(mask.sum(1))], axis=-1)
    hidden, gate_out = layer.gate_layers
    h = np.maximum(activity @ hidden.kernel.numpy() + hidden.bias.numpy(), 0)
    gate = np_sigmoid(h @ gate_out.kernel.numpy() + gate_out.bias.numpy())
    r_user = inputs["user_preference"].numpy()
    np.testing.assert_allclose(out["attention"], attention, atol=1e-6)
    np.testing.assert_allclose(out["cross_preference"], r_cross, atol=1e-5)
    np.testing.assert_allclose(out["gate"], gate, atol=1e-6)
    np.testing.assert_allclose(out["preference"], gate * r_user + (1 - gate) * r_cross, atol=1e-5)
    np.testing.assert_allclose(activity_features(hist, count, mask.sum(1)).numpy(), activity,
                               atol=1e-6)


def test_padding_events_do_not_change_the_output():
    inputs = tiny_inputs()
    layer = GlobalPreferenceAggregator(num_heads=2)
    base = {k: v.numpy() for k, v in call(layer, inputs).items()}
    events = inputs["context"]["events"].numpy()
    mask = inputs["context"]["padding_mask"].numpy()
    # Garbage in the padded slots, and three more masked garbage events.
    garbage = RNG.normal(size=(3, 7, 5)).astype("float32") * 100
    events = np.concatenate([np.where(mask[..., None], events, garbage[:, :4]), garbage[:, 4:]],
                            axis=1)
    mask = np.concatenate([mask, np.zeros((3, 3), bool)], axis=1)
    noisy = dict(inputs, context={"events": tf.constant(events), "padding_mask": tf.constant(mask)})
    for key, value in call(layer, noisy).items():
        np.testing.assert_allclose(value.numpy(), base[key], atol=1e-5)


def test_empty_context_and_cold_users():
    inputs = tiny_inputs(lengths=(0, 3, 0))
    layer = GlobalPreferenceAggregator(num_heads=2)
    call(layer, inputs)
    layer.output_dense.bias.assign(np.ones(D))  # must not leak into an empty context
    inputs["user_preference"] = tf.constant(np.where([[0], [0], [1]], RNG.normal(size=(3, D)), 0.0),
                                            tf.float32)
    with tf.GradientTape() as tape:
        out = call(layer, inputs)
        loss = tf.reduce_sum(out["preference"])
    out = {k: v.numpy() for k, v in out.items()}
    # Empty context: r_cross is exactly 0 and r_pref = g * r_user.
    assert np.all(out["cross_preference"][[0, 2]] == 0.0)
    np.testing.assert_allclose(out["preference"][2],
                               out["gate"][2] * inputs["user_preference"].numpy()[2], atol=1e-6)
    # Row 1 is a cold user (no history, r_user = 0) with a context: it still
    # gets the population's preference.
    assert np.any(out["cross_preference"][1] != 0.0)
    np.testing.assert_allclose(out["preference"][1],
                               (1 - out["gate"][1]) * out["cross_preference"][1], atol=1e-6)
    assert all(np.all(np.isfinite(tf.convert_to_tensor(g).numpy()))
               for g in tape.gradient(loss, layer.trainable_variables))
    # No user preference at all is treated as zero.
    no_user = call(layer, dict(inputs, user_preference=None))["preference"].numpy()
    np.testing.assert_allclose(no_user[1], out["preference"][1], atol=1e-6)


def test_gate_is_in_open_unit_interval_and_follows_activity():
    batch = 6
    inputs = tiny_inputs(lengths=(4, 2, 0, 1, 3, 4))
    inputs["history_length"] = tf.constant([0, 1, 5, 20, 20, 0], tf.int64)
    inputs["user_event_count"] = tf.constant([0, 1, 10, 1000, 10**6, 0], tf.int64)
    layer = GlobalPreferenceAggregator(num_heads=1)
    gate = call(layer, inputs)["gate"].numpy()
    assert gate.shape == (batch, 1)
    assert np.all((gate > 0) & (gate < 1))
    assert len(np.unique(np.round(gate[:5], 6))) > 1


def test_config_round_trip():
    layer = GlobalPreferenceAggregator(num_heads=3, key_dim=5, output_dim=4,
                                       gate_hidden_units=(8, 4), dropout=0.1)
    clone = GlobalPreferenceAggregator.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


def _model(features):
    """Functional model: a level id -> r; encoder over query_context ->
    aggregator -> Dense(1)."""
    inputs = feature_inputs(features)  # includes the toy task's "level"
    r = keras.layers.Embedding(K, 8)(inputs["level"])
    item, category, query = id_embeddings(seed=1)
    context = EventEncoder(K, item, category, query, name="context_encoder")(
        inputs, list_name="query_context")
    fused = GlobalPreferenceAggregator(num_heads=2)(
        r, context, None, inputs["user_history_length"], inputs["user_event_count"])
    return keras.Model(inputs, keras.layers.Dense(1)(fused["preference"]))


def test_keras_save_load(tmp_path):
    features = random_features()
    features["level"] = tf.constant([0, 1, 2, 3], tf.int64)
    model = _model(features)
    expected = model(features).numpy()
    model.save(tmp_path / "m.keras")
    restored = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(restored(features).numpy(), expected, atol=0)


def test_fit_on_a_task_that_needs_the_context():
    # y = mean click of the context events at the asked relevance level:
    # only attention from r (the level) over the context can answer it.
    # Events are given directly (one-hot level + click) to test this layer
    # alone; the encoder path is covered by the save/load model above.
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(7)
    batch, length = 256, 8
    relevance = rng.integers(0, K, (batch, length))
    clicks = rng.integers(0, 2, (batch, length))
    real = np.arange(length)[None] < rng.integers(0, length + 1, batch)[:, None]
    level = rng.integers(0, K, batch)
    at_level = (relevance == level[:, None]) & real
    y = ((clicks * at_level).sum(1) / np.maximum(at_level.sum(1), 1))[:, None].astype("float32")
    events = np.concatenate([np.eye(K)[relevance], clicks[..., None]], -1) * real[..., None]
    x = {"level": level, "events": events.astype("float32"), "mask": real,
         "history_length": np.zeros(batch, "int64"), "user_event_count": np.zeros(batch, "int64")}
    inputs = {"level": keras.Input((), dtype="int64", name="level"),
              "events": keras.Input((length, K + 1), name="events"),
              "mask": keras.Input((length,), dtype="bool", name="mask"),
              "history_length": keras.Input((), dtype="int64", name="history_length"),
              "user_event_count": keras.Input((), dtype="int64", name="user_event_count")}
    r = keras.layers.Embedding(K, 8)(inputs["level"])
    fused = GlobalPreferenceAggregator(num_heads=2)(
        r, {"events": inputs["events"], "padding_mask": inputs["mask"]}, None,
        inputs["history_length"], inputs["user_event_count"])
    model = keras.Model(inputs, keras.layers.Dense(1)(fused["preference"]))
    model.compile(optimizer=keras.optimizers.Adam(0.03), loss="mse")
    x = {k: tf.constant(v) for k, v in x.items()}

    def loss():
        return float(np.mean((model(x).numpy() - y) ** 2))

    before = loss()
    model.fit(tf.data.Dataset.from_tensors((x, y)).repeat(60), epochs=1, verbose=0,
              shuffle=False)
    after = loss()
    # Well below the best constant (the variance of y): the answer is in the
    # context, and the layer finds it.
    assert after < 0.5 * before and after < 0.3 * y.var()
