"""`RelevanceHead`: shapes, numpy reference, features, serialization, fit."""

import keras
import numpy as np
import pytest

from prectr_tf.layers.relevance_head import RelevanceHead

RNG = np.random.default_rng(0)
R = RNG.normal(size=(6, 8)).astype("float32")
FEATURES = RNG.normal(size=(6, 3)).astype("float32")


def test_shape_and_numpy_reference():
    head = RelevanceHead(num_levels=4, hidden_units=(5,))
    logits = head(R, FEATURES)
    assert logits.shape == (6, 4)
    hidden, out = head.hidden_layers[0], head.output_layer
    x = np.concatenate([R, FEATURES], axis=-1)
    h = np.maximum(x @ hidden.kernel.numpy() + hidden.bias.numpy(), 0.0)
    np.testing.assert_allclose(logits, h @ out.kernel.numpy() + out.bias.numpy(), atol=1e-5)


def test_linear_head_and_features_matter():
    head = RelevanceHead(num_levels=3, hidden_units=())
    logits = head(R, FEATURES)
    assert logits.shape == (6, 3) and head.hidden_layers == []
    # Features enter the logits: changing them changes the output.
    assert not np.allclose(head(R, FEATURES + 1.0), logits)
    np.testing.assert_allclose(RelevanceHead(num_levels=4)(R).shape, (6, 4))
    with pytest.raises(ValueError):
        RelevanceHead(num_levels=1)


def test_dropout_only_in_training():
    head = RelevanceHead(hidden_units=(16,), dropout=0.5)
    np.testing.assert_allclose(head(R), head(R), atol=1e-6)
    assert not np.allclose(head(R, training=True), head(R))


def test_config_round_trip():
    head = RelevanceHead(num_levels=5, hidden_units=(7, 3), activation="gelu", dropout=0.1)
    config = head.get_config()
    clone = RelevanceHead.from_config(config)
    assert clone.get_config() == config
    assert clone.hidden_units == (7, 3)


def _model(head):
    r = keras.Input(shape=(8,), name="r")
    features = keras.Input(shape=(3,), name="features")
    return keras.Model([r, features], head(r, features))


def test_keras_save_load(tmp_path):
    model = _model(RelevanceHead(hidden_units=(5,)))
    expected = model([R, FEATURES])
    model.save(tmp_path / "head.keras")
    loaded = keras.models.load_model(tmp_path / "head.keras")
    np.testing.assert_allclose(loaded([R, FEATURES]), expected, atol=1e-6)


def test_fit_learns_the_levels():
    keras.utils.set_random_seed(0)
    r = RNG.normal(size=(256, 8)).astype("float32")
    features = RNG.normal(size=(256, 3)).astype("float32")
    labels = np.argmax(r[:, :4], axis=-1)  # a learnable level
    model = _model(RelevanceHead(hidden_units=(16,)))
    model.compile(optimizer=keras.optimizers.Adam(0.05), jit_compile=False,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit([r, features], labels, epochs=8, batch_size=64, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
