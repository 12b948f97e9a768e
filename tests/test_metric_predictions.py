"""The exact metrics of collected predictions (`prectr_tf.metrics.predictions`)
against scikit-learn, brute force and hand-computed cases."""

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import ndcg_score, roc_auc_score

from prectr_tf.metrics import evaluate_predictions, rela_impr
from prectr_tf.metrics.predictions import auc, group_auc, log_loss, macro_f1, mrr, ndcg_at_k


def brute_auc(labels, scores, weights=None):
    """Σ over (pos, neg) pairs of w_p·w_n·([s_p > s_n] + ½[s_p = s_n]) / (W_pos·W_neg)."""
    labels, scores = np.asarray(labels), np.asarray(scores, float)
    weights = np.ones(len(labels)) if weights is None else np.asarray(weights, float)
    num = den = 0.0
    for i in np.flatnonzero(labels == 1):
        for j in np.flatnonzero(labels == 0):
            w = weights[i] * weights[j]
            num += w * ((scores[i] > scores[j]) + 0.5 * (scores[i] == scores[j]))
            den += w
    return num / den if den else math.nan


def brute_gauc(labels, scores, groups, weights=None):
    labels, groups = np.asarray(labels), np.asarray(groups)
    weights = np.ones(len(labels)) if weights is None else np.asarray(weights, float)
    total = norm = 0.0
    for g in dict.fromkeys(groups.tolist()):
        rows = (groups == g) & (labels >= 0)
        if len(set(labels[rows].tolist())) < 2:
            continue
        total += weights[rows].sum() * brute_auc(labels[rows], np.asarray(scores)[rows], weights[rows])
        norm += weights[rows].sum()
    return total / norm if norm else math.nan


def brute_ndcg_mrr(list_ids, labels, scores, k):
    """Per-list loops; scores must be tie-free."""
    ndcgs, rrs = [], []
    for q in dict.fromkeys(np.asarray(list_ids).tolist()):
        rows = np.asarray(list_ids) == q
        y, s = np.asarray(labels, float)[rows], np.asarray(scores, float)[rows]
        if not (y > 0).any():
            continue
        ranked = y[np.argsort(-s)]
        ideal = np.sort(y)[::-1]
        disc = 1 / np.log2(np.arange(2, len(y) + 2))
        ndcgs.append(((2 ** ranked - 1) * disc)[:k].sum() / ((2 ** ideal - 1) * disc)[:k].sum())
        hits = np.flatnonzero(ranked >= 1)
        rrs.append(1 / (hits[0] + 1) if len(hits) else 0.0)
    return np.mean(ndcgs), np.mean(rrs)


def test_auc_hand_computed_with_ties():
    # pos {0.8, 0.4}, neg {0.4, 0.1}: 0.8 beats both, 0.4 ties 0.4 and beats 0.1 -> 3.5/4
    assert auc([1, 1, 0, 0], [0.8, 0.4, 0.4, 0.1]) == 0.875
    assert auc([1, 0, -1], [0.1, 0.9, 0.5]) == 0.0  # the -1 row is ignored
    assert math.isnan(auc([1, 1], [0.2, 0.3]))


@pytest.mark.parametrize("seed", range(3))
def test_auc_and_gauc_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = 300
    labels = rng.integers(0, 2, n)
    scores = rng.integers(0, 12, n) / 11.0  # many ties
    groups = rng.integers(0, 25, n)
    groups[groups == 3] = 4  # bigger group
    labels[groups == 7] = 1  # a one-class group, excluded
    weights = rng.uniform(0.1, 3.0, n)
    assert auc(labels, scores) == pytest.approx(brute_auc(labels, scores), abs=1e-12)
    assert auc(labels, scores, weights) == pytest.approx(brute_auc(labels, scores, weights), abs=1e-12)
    assert group_auc(labels, scores, groups) == pytest.approx(brute_gauc(labels, scores, groups), abs=1e-12)
    assert group_auc(labels, scores, groups, weights) == pytest.approx(
        brute_gauc(labels, scores, groups, weights), abs=1e-12)


def test_gauc_excludes_one_class_groups_from_the_denominator():
    # user a: AUC 1 over 2 rows; user b: one class (3 rows) -> GAUC 1, not 2/5
    assert group_auc([1, 0, 1, 1, 1], [0.9, 0.1, 0.2, 0.3, 0.4], list("aabbb")) == 1.0
    assert math.isnan(group_auc([1, 1, 0], [0.1, 0.2, 0.3], list("abc")))


@pytest.mark.parametrize("seed", range(3))
def test_ndcg_and_mrr_match_loops(seed):
    rng = np.random.default_rng(seed)
    n = 200
    lists = rng.integers(0, 20, n)
    labels = rng.integers(0, 4, n) * (rng.random(n) < 0.5)
    labels[lists == 5] = 0  # a list without positives is skipped
    scores = rng.permutation(n) / n  # no ties
    ref_ndcg, ref_mrr = brute_ndcg_mrr(lists, labels, scores, k=5)
    assert ndcg_at_k(lists, labels, scores, k=5) == pytest.approx(ref_ndcg, rel=1e-12)
    assert mrr(lists, labels, scores) == pytest.approx(ref_mrr, rel=1e-12)


def test_ndcg_mrr_hand_computed_and_ties():
    # list 1: ranking [0, 1] -> DCG 1/log2 3, IDCG 1; list 2 perfect.
    lists, labels, scores = [1, 1, 2, 2], [0, 1, 1, 0], [0.9, 0.1, 0.8, 0.3]
    assert ndcg_at_k(lists, labels, scores, k=2) == pytest.approx((1 / np.log2(3) + 1) / 2)
    assert mrr(lists, labels, scores) == pytest.approx(0.75)
    assert mrr(lists, labels, scores, k=1) == pytest.approx(0.5)
    # A constant score does not inherit the data order: one hit among 10 tied
    # rows is at each rank with probability 1/10.
    assert mrr(np.zeros(10), np.r_[1, np.zeros(9)], np.zeros(10)) == pytest.approx(
        np.mean(1 / np.arange(1, 11)))
    assert mrr(np.zeros(10), np.r_[np.zeros(9), 1], np.zeros(10)) == pytest.approx(
        np.mean(1 / np.arange(1, 11)))


def _groups_with_both_classes(labels, groups):
    return [g for g in np.unique(groups) if len(np.unique(labels[groups == g])) == 2]


@pytest.mark.parametrize("seed", range(3))
def test_auc_and_gauc_equal_sklearn_with_ties_weights_and_one_class_groups(seed):
    rng = np.random.default_rng(seed)
    n = 500
    labels = rng.integers(0, 2, n)
    scores = rng.integers(0, 8, n) / 7.0  # many ties
    groups = rng.integers(0, 40, n)
    labels[groups == 3] = 0  # one-class groups leave numerator and denominator
    labels[groups == 4] = 1
    weights = rng.uniform(0.1, 3.0, n)
    assert auc(labels, scores, weights) == pytest.approx(
        roc_auc_score(labels, scores, sample_weight=weights), abs=1e-12)
    used = _groups_with_both_classes(labels, groups)
    assert 3 not in used and 4 not in used
    per_group = [roc_auc_score(labels[groups == g], scores[groups == g],
                               sample_weight=weights[groups == g]) for g in used]
    size = [weights[groups == g].sum() for g in used]
    assert group_auc(labels, scores, groups, weights) == pytest.approx(
        np.average(per_group, weights=size), abs=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_ndcg_equals_sklearn_with_ties(seed):
    rng = np.random.default_rng(seed)
    lists = np.repeat(np.arange(30), 12)
    labels = rng.integers(0, 4, len(lists)) * (rng.random(len(lists)) < 0.4)
    labels[lists == 2] = 0  # no positive: left out
    scores = rng.integers(0, 5, len(lists)).astype(float)  # ties within lists
    for k in (3, 10):
        expected = [ndcg_score([2.0 ** labels[lists == q] - 1], [scores[lists == q]], k=k)
                    for q in np.unique(lists) if labels[lists == q].any()]
        assert ndcg_at_k(lists, labels, scores, k=k) == pytest.approx(np.mean(expected),
                                                                      abs=1e-12)


def test_mrr_with_ties_is_the_mean_over_the_orders_of_each_tie():
    rng = np.random.default_rng(0)
    for _ in range(20):
        n = int(rng.integers(2, 7))
        labels = (rng.random(n) < 0.4).astype(float)
        labels[rng.integers(n)] = 1.0
        scores = rng.integers(0, 3, n).astype(float)
        # brute force: every tie-breaking order of the rows, equally likely
        values = []
        for perm in itertools.permutations(range(n)):
            order = sorted(range(n), key=lambda i: (-scores[i], perm.index(i)))
            first = next(r for r, i in enumerate(order) if labels[i] >= 1)
            values.append(1.0 / (first + 1))
        assert mrr(np.zeros(n), labels, scores) == pytest.approx(np.mean(values), abs=1e-12)


def test_log_loss_and_macro_f1():
    assert log_loss([1, 0, -1], [0.8, 0.3, 0.5]) == pytest.approx((-np.log(0.8) - np.log(0.7)) / 2)
    assert np.isfinite(log_loss([1, 0], [0.0, 1.0]))
    # levels: 0 -> F1 2/3, 1 -> F1 2/3, 2 never seen -> excluded (sklearn default)
    assert macro_f1([0, 1, 1, -1], [0, 1, 0, 2]) == pytest.approx(2 / 3)


def test_rela_impr():
    assert rela_impr(0.75, 0.7) == pytest.approx(25.0)


def test_evaluate_predictions_frame_with_slices():
    rng = np.random.default_rng(0)
    n = 400
    frame = pd.DataFrame({
        "user_id": rng.integers(0, 30, n).astype(str),
        "query_id": rng.integers(0, 10, n),
        "request_id": rng.integers(0, 60, n),
        "click": rng.integers(-1, 2, n),
        "score": rng.random(n),
        "relevance": rng.integers(-1, 4, n),
        "user_event_count": rng.choice([0, 3, 80], n),
    })
    frame["relevance_probs"] = list(rng.dirichlet(np.ones(4), n))
    out = evaluate_predictions(frame)
    labelled = frame[frame.click >= 0]
    assert out["count"] == len(labelled)
    assert out["auc"] == pytest.approx(brute_auc(labelled.click, labelled.score))
    assert out["gauc_user"] == pytest.approx(brute_gauc(frame.click, frame.score, frame.user_id))
    assert out["gauc_query"] == pytest.approx(brute_gauc(frame.click, frame.score, frame.query_id))
    assert out["log_loss"] == pytest.approx(log_loss(frame.click, frame.score))
    ref_ndcg, ref_mrr = brute_ndcg_mrr(labelled.request_id, labelled.click, labelled.score, 10)
    assert out["ndcg_at_10"] == pytest.approx(ref_ndcg)
    assert out["mrr"] == pytest.approx(ref_mrr)
    probs = np.stack(frame.relevance_probs)
    rel = frame.relevance.to_numpy()
    assert out["relevance_accuracy"] == pytest.approx(np.mean(probs.argmax(1)[rel >= 0] == rel[rel >= 0]))
    cold = frame[frame.user_event_count == 0]
    assert out["gauc_user/cold"] == pytest.approx(brute_gauc(cold.click, cold.score, cold.user_id))
    assert {"auc/low", "auc/high", "ndcg_at_10/high"} <= set(out)
    # dict input gives the same numbers; absent columns drop their metrics
    as_dict = {k: frame[k].to_numpy() for k in ("click", "score", "user_id")}
    small = evaluate_predictions(as_dict)
    assert small["gauc_user"] == pytest.approx(out["gauc_user"])
    assert "mrr" not in small and "gauc_query" not in small
    # logits (outside [0, 1]) get no log loss
    assert "log_loss" not in evaluate_predictions({"click": [0, 1], "score": [-2.0, 3.0]})


def test_mrr_without_a_single_positive_is_nan_not_an_error():
    """A small validation slice (TREC with a held-out slice) can hold no click."""
    assert np.isnan(mrr([1, 1, 2], [0, 0, 0], [.3, .2, .1]))
    assert mrr([1, 1, 2], [0, 1, 0], [.3, .2, .1]) == 0.5
