import numpy as np
import pytest
import tensorflow as tf
import keras

from prectr_tf.losses import ConsistencyLoss, monotonicity_penalty


def numpy_penalty(b):
    p = 1 / (1 + np.exp(-np.asarray(b, float)))
    return np.maximum(p[..., :-1] - p[..., 1:], 0).sum(-1)


def test_hand_computed():
    s = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    b = np.array([[0.0, 1.0, 2.0, 3.0], [2.0, 0.0, 1.0, -1.0]], "float32")
    expected = [0.0, (s(2) - s(0)) + (s(1) - s(-1))]
    np.testing.assert_allclose(monotonicity_penalty(b), expected, rtol=1e-6)
    assert float(ConsistencyLoss()(None, b)) == pytest.approx(np.mean(expected), rel=1e-6)


def test_random_batch_weights_and_reductions():
    rng = np.random.default_rng(0)
    b = rng.normal(0, 2, (40, 4)).astype("float32")
    w = rng.uniform(0, 2, 40).astype("float32")
    ref = numpy_penalty(b)
    np.testing.assert_allclose(ConsistencyLoss(reduction="none")(None, b), ref, rtol=1e-5)
    np.testing.assert_allclose(ConsistencyLoss()(None, b, sample_weight=w), (ref * w).mean(), rtol=1e-5)
    np.testing.assert_allclose(ConsistencyLoss(reduction="sum")(None, b), ref.sum(), rtol=1e-5)


def test_unbatched_and_y_true_ignored():
    b = np.array([1.0, 0.0], "float32")
    assert float(ConsistencyLoss()(None, b)) == pytest.approx(numpy_penalty(b), rel=1e-6)
    assert float(ConsistencyLoss()(np.ones(2), b)) == pytest.approx(numpy_penalty(b), rel=1e-6)


def test_gradient_only_on_violations_and_extreme_logits():
    b = tf.Variable(np.array([[0.0, 1.0, 2.0], [300.0, -300.0, 0.0]], "float32"))
    with tf.GradientTape() as tape:
        loss = ConsistencyLoss(reduction="sum")(None, b)
    grad = tape.gradient(loss, b).numpy()
    assert float(loss) == pytest.approx(1.0, rel=1e-6)  # σ(300) - σ(-300)
    assert np.all(grad[0] == 0) and np.all(np.isfinite(grad))


def test_fit_makes_levels_monotone():
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(128, 3)).astype("float32")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(
        4, bias_initializer=keras.initializers.Constant([2.0, 1.0, 0.0, -1.0]))])
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss=ConsistencyLoss())
    history = model.fit(x, np.zeros(128), batch_size=32, epochs=15, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]


def test_serialization_round_trip():
    loss = ConsistencyLoss(name="cons", reduction="sum")
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, ConsistencyLoss) and restored.get_config() == loss.get_config()
