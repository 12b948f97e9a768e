"""`soft_metrics` against brute force, `prectr_tf.metrics.predictions` and hand-computed cases."""

import itertools

import numpy as np
import pytest

from prectr_tf.evaluation.soft_metrics import soft_group_auc
from prectr_tf.metrics.predictions import ndcg_per_list
from prectr_tf.metrics import predictions as reference


def _brute_force_auc(p, s, exclude_self_pairs=True):
    num = den = 0.0
    for i, j in itertools.product(range(len(p)), repeat=2):
        if i == j and exclude_self_pairs:
            continue
        w = p[i] * (1 - p[j])
        num += w * ((s[i] > s[j]) + 0.5 * (s[i] == s[j]))
        den += w
    return num / den


def test_soft_auc_matches_brute_force_with_ties():
    rng = np.random.default_rng(1)
    p = rng.random(25)
    s = rng.integers(0, 6, 25).astype(float)  # many ties
    for exclude in (True, False):
        assert soft_group_auc(p, s, exclude_self_pairs=exclude) == pytest.approx(
            _brute_force_auc(p, s, exclude))


def test_soft_gauc_matches_reference_on_duplicated_rows():
    rng = np.random.default_rng(2)
    n = 200
    p, s = rng.random(n), rng.integers(0, 20, n).astype(float)
    groups = rng.integers(0, 12, n)
    expected = reference.group_auc(np.r_[np.ones(n), np.zeros(n)], np.r_[s, s],
                                   np.r_[groups, groups], weights=np.r_[p, 1 - p])
    assert soft_group_auc(p, s, groups, exclude_self_pairs=False) == pytest.approx(expected)
    # With hard labels there are no self pairs: the plain (G)AUC of the reference.
    clicks = (rng.random(n) < 0.3).astype(float)
    assert soft_group_auc(clicks, s, groups) == pytest.approx(
        reference.group_auc(clicks, s, groups))
    assert soft_group_auc(clicks, s) == pytest.approx(reference.auc(clicks, s))


def test_soft_gauc_weights_groups_by_rows_and_skips_undefined():
    p = np.array([0.9, 0.1, 0.1, 0.8, 0.3, 0.5])
    s = np.array([1.0, 0.0, 1.0, 0.0, 1.0, 0.0])
    groups = np.array(["a", "a", "b", "b", "b", "c"])  # "c": one row, undefined
    a, b = _brute_force_auc(p[:2], s[:2]), _brute_force_auc(p[2:5], s[2:5])
    assert soft_group_auc(p, s, groups) == pytest.approx((2 * a + 3 * b) / 5)
    assert np.isnan(soft_group_auc([1.0, 1.0], [0.0, 1.0]))


def test_ndcg_per_list_matches_reference_with_exponential_gains():
    rng = np.random.default_rng(3)
    n = 300
    lists = rng.integers(0, 15, n)
    labels = rng.integers(0, 4, n).astype(float)
    scores = rng.integers(0, 8, n).astype(float)  # ties
    for k in (3, 10):
        _, values = ndcg_per_list(lists, 2.0 ** labels - 1, scores, k=k)
        assert np.nanmean(values) == pytest.approx(
            reference.ndcg_at_k(lists, labels, scores, k=k))


def test_ndcg_linear_gain_by_hand():
    # gains [0.5, 0.2, 0.1] ranked [0.1, 0.5, 0.2] at k=2.
    _, values = ndcg_per_list([0, 0, 0], [0.5, 0.2, 0.1], [2.0, 1.0, 3.0], k=2)
    ideal = 0.5 + 0.2 / np.log2(3)
    assert values[0] == pytest.approx((0.1 + 0.5 / np.log2(3)) / ideal)
    _, values = ndcg_per_list([0, 0], [0.0, 0.0], [1.0, 2.0])
    assert np.isnan(values[0])
