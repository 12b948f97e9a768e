"""`NoiseHardNegative` and `hard_negative_anchor_mask` (DESIGN §4.8)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from prectr_tf.layers.hard_negative import NoiseHardNegative, hard_negative_anchor_mask

RNG = np.random.default_rng(0)
R = RNG.normal(scale=3.0, size=(4, 16)).astype("float32")


def test_anchor_mask_numpy_reference():
    click = np.array([1, 1, 1, 1, 0, -1, 1, 1])
    relevance = np.array([3, 2, 1, 0, 3, 3, -1, 3])
    got = np.asarray(hard_negative_anchor_mask(click, relevance, num_levels=4))
    expected = (click == 1) & (relevance >= 2)
    np.testing.assert_array_equal(got, expected)
    assert got.tolist() == [True, True, False, False, False, False, False, True]
    # [B, 1] labels, other K and an explicit level.
    np.testing.assert_array_equal(
        hard_negative_anchor_mask(click[:, None], relevance[:, None], num_levels=5),
        (click == 1) & (relevance >= 3))
    np.testing.assert_array_equal(hard_negative_anchor_mask(click, relevance, min_level=1),
                                  (click == 1) & (relevance >= 1))
    # K = 2: K − 2 = 0, but an unlabelled (-1) row is still no anchor.
    assert not np.asarray(hard_negative_anchor_mask([1], [-1], num_levels=2))[0]


def test_training_output_noise_scale_and_labels():
    layer = NoiseHardNegative(relative_noise_std=0.5, seed=0)
    mask = np.array([True, False, True, True])
    out = layer(R, mask, training=True)
    assert out["representation"].shape == R.shape
    np.testing.assert_array_equal(out["relevance"], [0, 0, 0, 0])
    assert out["relevance"].dtype == "int32"
    np.testing.assert_array_equal(out["mask"], mask.astype("float32"))
    # ε ~ N(0, (σ_rel · RMS(r))²) per row: check the std over many draws.
    r = np.repeat(R[:1], 2000, axis=0)
    r[1000:] *= 10.0  # a row 10x larger gets 10x the noise
    noise = np.asarray(layer(r, training=True)["representation"]) - r
    rms = np.sqrt(np.mean(np.square(R[0])))
    np.testing.assert_allclose(noise[:1000].std(), 0.5 * rms, rtol=0.05)
    np.testing.assert_allclose(noise[1000:].std(), 5.0 * rms, rtol=0.05)
    np.testing.assert_allclose(noise.mean(), 0.0, atol=0.05 * rms)
    # Fresh noise every call; no mask means every row is an anchor.
    again = layer(R, training=True)
    assert not np.allclose(again["representation"], out["representation"])
    np.testing.assert_array_equal(again["mask"], np.ones(4))


def test_gradient_reaches_r_but_not_through_the_noise_scale():
    r = tf.Variable(R)
    layer = NoiseHardNegative(relative_noise_std=0.5, seed=1)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(r, training=True)["representation"])
    np.testing.assert_allclose(tape.gradient(loss, r), np.ones_like(R), atol=1e-6)


def test_inference_is_identity_with_empty_mask():
    out = NoiseHardNegative(seed=0)(R, np.ones(4, bool))
    np.testing.assert_array_equal(out["representation"], R)
    np.testing.assert_array_equal(out["mask"], np.zeros(4))
    np.testing.assert_array_equal(out["relevance"], np.zeros(4))


def _random_ops(layer, training):
    fn = tf.function(lambda r, m: layer(r, m, training=training))
    graph = fn.get_concrete_function(tf.TensorSpec([None, 16], tf.float32),
                                     tf.TensorSpec([None], tf.bool)).graph
    return [op.type for op in graph.get_operations() if "Random" in op.type]


def test_no_random_op_in_the_inference_graph():
    layer = NoiseHardNegative(seed=0)
    assert _random_ops(layer, training=False) == []
    # The check can fail: the training graph does draw noise.
    assert _random_ops(layer, training=True) != []


def test_config_round_trip_and_validation():
    layer = NoiseHardNegative(relative_noise_std=0.25, fake_relevance=0, seed=3)
    config = layer.get_config()
    assert NoiseHardNegative.from_config(config).get_config() == config
    with pytest.raises(ValueError):
        NoiseHardNegative(relative_noise_std=-1.0)


def test_keras_save_load(tmp_path):
    r = keras.Input(shape=(16,), name="r")
    mask = keras.Input(shape=(), dtype="bool", name="anchor_mask")
    layer = NoiseHardNegative(seed=0)
    model = keras.Model([r, mask], layer(r, mask))
    anchors = np.array([True, False, True, True])
    expected = model([R, anchors])
    model.save(tmp_path / "hard_negative.keras")
    loaded = keras.models.load_model(tmp_path / "hard_negative.keras")
    got = loaded([R, anchors])
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key])
    assert loaded.layers[-1].get_config() == layer.get_config()
    # The loaded layer still draws noise when training.
    assert not np.allclose(loaded([R, anchors], training=True)["representation"], R)
