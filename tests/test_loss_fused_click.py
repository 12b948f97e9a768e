import numpy as np
import pytest
import tensorflow as tf
import keras

from prectr_tf.losses import FusedClickLoss, fused_click_bce


def mixture_log_probs(click_logits, relevance_logits):
    """numpy: log P(click), log P(no click) of Σ_k σ(b_k)·p_k, computed directly."""
    p = np.exp(relevance_logits - relevance_logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    p_click = (p / (1 + np.exp(-click_logits))).sum(-1)
    return np.log(p_click), np.log1p(-p_click)


def numpy_bce(labels, p_click, weights=None):
    labels = np.asarray(labels, float)
    weights = np.ones_like(labels) if weights is None else np.asarray(weights, float)
    keep = labels >= 0
    losses = -(labels * np.log(p_click) + (1 - labels) * np.log1p(-p_click))
    losses = np.where(keep, losses, 0.0) * weights * keep
    return losses, keep, weights


def log_space(click_logits, relevance_logits):
    """The fusion in log space, as the fusion layer computes it."""
    log_p = tf.nn.log_softmax(relevance_logits, -1)
    lpc = tf.reduce_logsumexp(tf.math.log_sigmoid(click_logits) + log_p, -1)
    lpn = tf.reduce_logsumexp(tf.math.log_sigmoid(-click_logits) + log_p, -1)
    return {"log_p_click": lpc, "log_p_no_click": lpn}


def test_hand_computed():
    p = np.array([0.8, 0.3, 0.5], "float32")
    y_pred = {"log_p_click": np.log(p), "log_p_no_click": np.log1p(-p)}
    expected = (-np.log(0.8) - np.log(0.7)) / 2  # the -1 row leaves the mean
    assert float(FusedClickLoss()([1, 0, -1], y_pred)) == pytest.approx(expected, rel=1e-6)
    stacked = np.stack([np.log1p(-p), np.log(p)], -1)
    assert float(FusedClickLoss()([1, 0, -1], stacked)) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "sum", "none",
                                       "mean_with_sample_weight"])
def test_random_batch_matches_numpy_mixture(reduction):
    rng = np.random.default_rng(0)
    b, k = 64, 4
    click_logits = rng.normal(0, 2, (b, k)).astype("float32")
    rel_logits = rng.normal(0, 2, (b, k)).astype("float32")
    labels = rng.integers(-1, 2, b)
    weights = rng.uniform(0.1, 2.0, b).astype("float32")
    lpc, _ = mixture_log_probs(click_logits.astype(float), rel_logits.astype(float))
    losses, keep, w = numpy_bce(labels, np.exp(lpc), weights)
    expected = {"none": losses, "sum": losses.sum(),
                "sum_over_batch_size": losses.sum() / keep.sum(),
                "mean_with_sample_weight": losses.sum() / (w * keep).sum()}[reduction]
    got = FusedClickLoss(reduction=reduction)(
        labels[:, None], log_space(click_logits, rel_logits), sample_weight=weights)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


def test_unbatched_single_row():
    p = 0.25
    got = FusedClickLoss()(1, np.log([1 - p, p]).astype("float32"))
    assert float(got) == pytest.approx(-np.log(p), rel=1e-6)


def test_all_masked_batch_gives_zero_and_finite_gradient():
    logits = tf.Variable(np.zeros((3, 2), "float32"))
    with tf.GradientTape() as tape:
        loss = FusedClickLoss()([-1, -1, -1], tf.nn.log_softmax(logits))
    assert float(loss) == 0.0
    grad = tape.gradient(loss, logits)
    assert np.all(np.isfinite(grad)) and np.all(grad == 0)


def test_extreme_logits_are_finite():
    click_logits = tf.Variable(np.array([[80.0, -80.0], [-200.0, -200.0], [200.0, 200.0]], "float32"))
    rel_logits = tf.constant([[50.0, -50.0], [0.0, 0.0], [0.0, 0.0]])
    with tf.GradientTape() as tape:
        losses = FusedClickLoss(reduction="none")([0, 1, 0], log_space(click_logits, rel_logits))
        total = tf.reduce_sum(losses)
    grad = tape.gradient(total, click_logits)
    values = losses.numpy()
    assert np.all(np.isfinite(values)) and np.all(np.isfinite(grad))
    assert values[0] == pytest.approx(80.0, rel=1e-3)  # -log σ(-80)
    assert values[1] == pytest.approx(200.0, rel=1e-3)
    # log P = -inf on the other class (a hard 0/1 probability) stays finite.
    hard = {"log_p_click": np.array([0.0, -np.inf], "float32"),
            "log_p_no_click": np.array([-np.inf, 0.0], "float32")}
    assert float(FusedClickLoss()([1, 0], hard)) == 0.0


def test_function_returns_mask():
    losses, mask = fused_click_bce([[1], [-1]], np.log([0.5, 0.5]), np.log([0.5, 0.5]))
    np.testing.assert_array_equal(mask, [True, False])
    np.testing.assert_allclose(losses, [np.log(2), 0.0], rtol=1e-6)


def test_fit_lowers_the_loss():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(256, 5)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    y[::5] = -1
    inputs = keras.Input((5,))
    outputs = keras.layers.Activation("log_softmax")(keras.layers.Dense(2)(inputs))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss=FusedClickLoss())
    history = model.fit(x, y, batch_size=64, epochs=5, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert np.isfinite(history.history["loss"]).all()


def test_serialization_round_trip():
    loss = FusedClickLoss(reduction="sum", name="click")
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, FusedClickLoss)
    assert restored.get_config() == loss.get_config()


def test_bad_shape_raises():
    with pytest.raises(ValueError, match="log_p_click"):
        FusedClickLoss()([1, 0], np.zeros((2, 3), "float32"))
