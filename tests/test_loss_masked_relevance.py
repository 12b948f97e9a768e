import numpy as np
import pytest
import tensorflow as tf
import keras

from prectr_tf.losses import MaskedRelevanceLoss, masked_relevance_cross_entropy


def numpy_ce(labels, logits):
    """Per-row softmax CE (float64), NaN where unlabelled."""
    logits = np.asarray(logits, float)
    z = logits - logits.max(-1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(-1, keepdims=True))
    labels = np.asarray(labels)
    out = np.full(len(labels), np.nan)
    for i, y in enumerate(labels):
        if y >= 0:
            out[i] = -log_p[i, y]
    return out


def test_hand_computed_unlabelled_is_not_level_zero():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], "float32")
    loss = MaskedRelevanceLoss()
    assert float(loss([0, -1], np.log(probs))) == pytest.approx(-np.log(0.7), rel=1e-5)
    # Were the -1 row read as level 0, the mean would include -log 0.1.
    assert float(loss([0, 0], np.log(probs))) == pytest.approx(
        (-np.log(0.7) - np.log(0.1)) / 2, rel=1e-5)


@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "sum", "none",
                                       "mean_with_sample_weight"])
def test_random_batch_matches_numpy(reduction):
    rng = np.random.default_rng(0)
    b, k = 50, 4
    logits = rng.normal(0, 3, (b, k)).astype("float32")
    labels = rng.integers(-1, k, b)
    weights = rng.uniform(0.1, 2.0, b).astype("float32")
    keep = labels >= 0
    per_row = np.where(keep, numpy_ce(labels, logits), 0.0) * weights
    expected = {"none": per_row, "sum": per_row.sum(),
                "sum_over_batch_size": per_row.sum() / keep.sum(),
                "mean_with_sample_weight": per_row.sum() / weights[keep].sum()}[reduction]
    got = MaskedRelevanceLoss(reduction=reduction)(labels[:, None], logits, sample_weight=weights)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_unbatched():
    logits = np.array([1.0, 2.0, 0.5], "float32")
    assert float(MaskedRelevanceLoss()(1, logits)) == pytest.approx(numpy_ce([1], logits[None])[0], rel=1e-6)


def test_out_of_range_level_is_masked():
    losses, mask = masked_relevance_cross_entropy([3, 1], np.zeros((2, 3), "float32"))
    np.testing.assert_array_equal(mask, [False, True])
    np.testing.assert_allclose(losses, [0.0, np.log(3)], rtol=1e-6)


def test_all_masked_batch_is_zero_not_nan():
    logits = tf.Variable(np.random.default_rng(0).normal(size=(4, 4)).astype("float32"))
    with tf.GradientTape() as tape:
        loss = MaskedRelevanceLoss()([-1, -1, -1, -1], logits)
    assert float(loss) == 0.0
    grad = tape.gradient(loss, logits)
    assert np.all(np.isfinite(grad)) and np.all(grad == 0)


def test_extreme_logits():
    logits = tf.Variable(np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0]], "float32"))
    with tf.GradientTape() as tape:
        losses = MaskedRelevanceLoss(reduction="none")([0, 0], logits)
        total = tf.reduce_sum(losses)
    np.testing.assert_allclose(losses, [0.0, 2e4], rtol=1e-6)
    assert np.all(np.isfinite(tape.gradient(total, logits)))


def test_fit_lowers_the_loss():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(256, 6)).astype("float32")
    y = np.argmax(x[:, :4], -1)
    y[::3] = -1
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4)])
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss=MaskedRelevanceLoss())
    history = model.fit(x, y, batch_size=64, epochs=5, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_serialization_round_trip():
    loss = MaskedRelevanceLoss(reduction="mean_with_sample_weight", name="rsl")
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, MaskedRelevanceLoss)
    assert restored.get_config() == loss.get_config()
