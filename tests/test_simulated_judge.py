"""`SimulatedJudge`: its mistakes follow the confusion matrix, per pair and
reproducibly, and its logits are what the docstring says."""

import numpy as np
import pytest

from prectr_tf.distill import HOMEDEPOT_MINILM_CONFUSION, SimulatedJudge

CONFUSION = ((0.6, 0.3, 0.1, 0.0), (0.2, 0.5, 0.3, 0.0), (0.0, 0.1, 0.7, 0.2),
             (0.0, 0.0, 0.25, 0.75))


def _pairs(n):
    return [f"query {i % 97}" for i in range(n)], [f"title {i}" for i in range(n)]


def test_judged_levels_follow_the_confusion_rows():
    n = 40_000
    queries, titles = _pairs(n)
    levels = np.arange(n) % 4
    judge = SimulatedJudge(confusion=CONFUSION, seed=3)
    judged = judge.judged_levels(queries, titles, levels)
    for y in range(4):
        observed = np.bincount(judged[levels == y], minlength=4) / np.sum(levels == y)
        # binomial std at n=10,000 is at most 0.005
        np.testing.assert_allclose(observed, CONFUSION[y], atol=0.02)


def test_a_pair_is_judged_the_same_in_any_order_and_batch():
    queries, titles = _pairs(500)
    levels = np.arange(500) % 4
    judge = SimulatedJudge(confusion=CONFUSION)
    whole = judge.logits(queries, titles, levels)
    order = np.random.default_rng(0).permutation(500)
    shuffled = judge.logits([queries[i] for i in order], [titles[i] for i in order], levels[order])
    np.testing.assert_array_equal(shuffled, whole[order])
    np.testing.assert_array_equal(judge.logits(queries[:7], titles[:7], levels[:7]), whole[:7])
    other = SimulatedJudge(confusion=CONFUSION, seed=1).logits(queries, titles, levels)
    assert not np.array_equal(other, whole)


def test_logits_peak_at_the_judged_level_and_decay_with_distance():
    judge = SimulatedJudge(confusion=tuple(tuple(float(i == j) for j in range(4))
                                           for i in range(4)), temperature=0.5)
    logits = judge.logits(["q"] * 4, ["a", "b", "c", "d"], [0, 1, 2, 3])
    np.testing.assert_array_equal(logits.argmax(1), [0, 1, 2, 3])  # identity: always right
    np.testing.assert_allclose(logits[1], [-2.0, 0.0, -2.0, -4.0])
    soft = SimulatedJudge(confusion=judge.confusion, temperature=2.0).logits(["q"], ["b"], [1])
    np.testing.assert_allclose(soft[0], [-0.5, 0.0, -0.5, -1.0])


def test_default_is_a_measured_teacher_not_the_truth():
    matrix = np.asarray(HOMEDEPOT_MINILM_CONFUSION)
    np.testing.assert_allclose(matrix.sum(1), 1.0, atol=1e-6)
    assert not np.allclose(matrix, np.eye(4))
    assert SimulatedJudge().confusion == HOMEDEPOT_MINILM_CONFUSION


def test_bad_configuration_and_levels():
    with pytest.raises(ValueError, match="probability distribution"):
        SimulatedJudge(confusion=((0.5, 0.4), (0.5, 0.5)))
    with pytest.raises(ValueError, match="K×K"):
        SimulatedJudge(confusion=((1.0, 0.0, 0.0),))
    with pytest.raises(ValueError, match="temperature"):
        SimulatedJudge(temperature=0)
    with pytest.raises(ValueError, match="index 1 is outside"):
        SimulatedJudge().logits(["a", "b"], ["x", "y"], [0, 4])


def test_with_accuracy_errs_only_on_neighbouring_levels():
    judge = SimulatedJudge.with_accuracy(0.7, temperature=1.0)
    matrix = np.asarray(judge.confusion)
    np.testing.assert_allclose(np.diag(matrix), 0.7)
    np.testing.assert_allclose(matrix[0], [0.7, 0.3, 0, 0])
    np.testing.assert_allclose(matrix[1], [0.15, 0.7, 0.15, 0])
    assert judge.temperature == 1.0
    queries, titles = _pairs(8000)
    levels = np.arange(8000) % 4
    judged = judge.judged_levels(queries, titles, levels)
    assert abs((judged == levels).mean() - 0.7) < 0.02
    assert np.abs(judged - levels).max() == 1
    with pytest.raises(ValueError, match="accuracy"):
        SimulatedJudge.with_accuracy(1.5)
