import math

import numpy as np
import pytest
import tensorflow as tf
import keras

from prectr_tf.losses import PairwiseDebiasLoss


def numpy_debias(anchor, negative, is_anchor, weights, margin, max_loss, keep_fraction,
                 reduction="sum_over_batch_size"):
    """Straightforward reference: hinge, drop separated pairs, keep the hardest
    ceil(f·n) (ties at the cut kept), clip, weight, reduce over kept pairs."""
    hinge = np.maximum(0.0, margin - (np.asarray(anchor, float) - np.asarray(negative, float)))
    candidates = [i for i in range(len(hinge)) if is_anchor[i] and hinge[i] > 0]
    keep = np.zeros(len(hinge), bool)
    if candidates:
        k = max(1, math.ceil(keep_fraction * len(candidates)))
        cut = sorted(hinge[candidates], reverse=True)[k - 1]
        for i in candidates:
            keep[i] = hinge[i] >= cut
    value = np.minimum(hinge, max_loss) if max_loss is not None else hinge
    per_pair = np.where(keep, value * weights, 0.0)
    if reduction == "none":
        return per_pair
    if reduction == "sum":
        return per_pair.sum()
    if reduction == "mean_with_sample_weight":
        return per_pair.sum() / weights[keep].sum() if keep.any() else 0.0
    return per_pair.sum() / keep.sum() if keep.any() else 0.0


def test_hand_computed():
    scores = np.array([[2.0, 0.5], [0.0, 0.5], [0.0, 0.8], [0.0, 3.0], [0.0, 9.0]], "float32")
    is_anchor = np.array([1, 1, 1, 1, 0])  # the last row is no anchor
    # hinges 0 (dropped: separated), 1.5, 1.8, 4.0 -> keep ceil(0.5·3)=2: 4.0, 1.8
    # clipped at 2.0 -> (2.0 + 1.8) / 2
    loss = PairwiseDebiasLoss(margin=1.0, max_loss=2.0, keep_fraction=0.5)
    assert float(loss(is_anchor, scores)) == pytest.approx(1.9, rel=1e-6)
    per_pair = PairwiseDebiasLoss(margin=1.0, max_loss=2.0, keep_fraction=0.5,
                                  reduction="none")(is_anchor, scores)
    np.testing.assert_allclose(per_pair, [0, 0, 1.8, 2.0, 0], rtol=1e-6)
    # No truncation, no clipping: plain mean hinge over violating anchor pairs.
    plain = PairwiseDebiasLoss(margin=1.0, max_loss=None, keep_fraction=1.0)
    assert float(plain(is_anchor, scores)) == pytest.approx((1.5 + 1.8 + 4.0) / 3, rel=1e-6)


@pytest.mark.parametrize("keep_fraction", [1.0, 0.7, 0.25])
@pytest.mark.parametrize("max_loss", [None, 1.5])
@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "sum", "none", "mean_with_sample_weight"])
def test_random_batch_matches_numpy(keep_fraction, max_loss, reduction):
    rng = np.random.default_rng(int(keep_fraction * 100) + (max_loss is None))
    b = 64
    anchor = rng.normal(0, 1.5, b).astype("float32")
    negative = rng.normal(0, 1.5, b).astype("float32")
    is_anchor = rng.random(b) < 0.7
    weights = rng.uniform(0.2, 2.0, b).astype("float32")
    expected = numpy_debias(anchor, negative, is_anchor, weights, 1.0, max_loss, keep_fraction, reduction)
    loss = PairwiseDebiasLoss(margin=1.0, max_loss=max_loss, keep_fraction=keep_fraction,
                              reduction=reduction)
    got = loss(is_anchor, {"anchor": anchor, "negative": negative}, sample_weight=weights)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_ties_at_the_cut_are_kept():
    scores = np.array([[0.0, 1.0]] * 4, "float32")  # four equal hinges of 2.0
    loss = PairwiseDebiasLoss(margin=1.0, max_loss=None, keep_fraction=0.25, reduction="none")
    np.testing.assert_allclose(loss(None, scores), [2.0] * 4)


def test_unbatched_single_pair():
    assert float(PairwiseDebiasLoss(margin=1.0)(1, np.array([0.2, 0.0], "float32"))) == pytest.approx(0.8)


def test_no_anchor_or_all_separated_gives_zero_with_finite_gradient():
    scores = tf.Variable(np.array([[0.0, 1.0], [5.0, 0.0]], "float32"))
    loss_fn = PairwiseDebiasLoss()
    for mask in ([0, 0], [0, 1]):  # no anchor; the only anchor already separated
        with tf.GradientTape() as tape:
            loss = loss_fn(mask, scores)
        assert float(loss) == 0.0
        grad = tape.gradient(loss, scores)
        assert np.all(np.isfinite(grad)) and np.all(grad == 0)


def test_gradient_pushes_anchor_up_negative_down_and_clip_stops_it():
    scores = tf.Variable(np.array([[0.0, 0.5], [0.0, 50.0]], "float32"))
    with tf.GradientTape() as tape:
        loss = PairwiseDebiasLoss(margin=1.0, max_loss=2.0, keep_fraction=1.0,
                                  reduction="sum")(None, scores)
    grad = tape.gradient(loss, scores).numpy()
    np.testing.assert_allclose(grad[0], [-1.0, 1.0])
    np.testing.assert_allclose(grad[1], [0.0, 0.0])  # clipped pair: bounded, no gradient
    assert float(loss) == pytest.approx(1.5 + 2.0)


def test_extreme_scores_are_finite():
    scores = np.array([[1e30, -1e30], [-1e30, 1e30]], "float32")
    loss = PairwiseDebiasLoss(margin=1.0, max_loss=None, keep_fraction=1.0)
    assert np.isfinite(float(loss(None, scores)))


def test_runs_under_xla():
    loss = PairwiseDebiasLoss(keep_fraction=0.5)
    fn = tf.function(lambda m, s: loss(m, s), jit_compile=True)
    scores = np.random.default_rng(0).normal(size=(16, 2)).astype("float32")
    mask = np.arange(16) % 2
    np.testing.assert_allclose(fn(mask, scores), loss(mask, scores), rtol=1e-6)


def test_fit_separates_pairs():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(256, 4)).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile(optimizer=keras.optimizers.Adam(0.05),
                  loss=PairwiseDebiasLoss(margin=1.0, keep_fraction=1.0))
    history = model.fit(x, np.ones(256), batch_size=64, epochs=5, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_serialization_round_trip_and_validation():
    loss = PairwiseDebiasLoss(margin=0.1, max_loss=None, keep_fraction=0.3, name="debias")
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, PairwiseDebiasLoss) and restored.get_config() == loss.get_config()
    assert PairwiseDebiasLoss(margin=0.5).max_loss == 1.0
    for bad in (dict(margin=0.0), dict(keep_fraction=0.0), dict(keep_fraction=1.5), dict(max_loss=-1.0)):
        with pytest.raises(ValueError):
            PairwiseDebiasLoss(**bad)
