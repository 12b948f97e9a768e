"""Exact metrics of collected predictions, in numpy: the one implementation
of the grouped metrics (GAUC by user and query, NDCG@k, MRR, per activity
bucket).

`model.evaluate` collects every evaluation batch's scores, labels and ids as
numpy arrays (`prectr_tf.models.evaluation_rows`) and computes these once at
the end; the full coarse-ranking candidate space of the simulator is scored
with them directly. Each is a sort plus bincounts: O(N log N) time, O(N)
memory. Definitions follow scikit-learn (`roc_auc_score`, `ndcg_score`,
ties included); an undefined value (no group with both classes, no list
with a positive) is NaN.
"""

import numpy as np
from scipy.special import gammaln

from prectr_tf.data.activity import ACTIVITY_BUCKETS, DEFAULT_LOW_MAX, activity_bucket

EPSILON = 1e-7  # keras.config.epsilon(): log-loss clipping


def _codes(ids):
    return np.unique(np.asarray(ids).ravel(), return_inverse=True)[1].ravel()


def group_auc(labels, scores, groups=None, weights=None):
    """GAUC = Σ_g n_g·AUC_g / Σ_g n_g over groups with both classes (n_g: the
    group's summed weights; AUC_g with ties counted 1/2). Rows with label < 0
    or weight 0 are ignored; `groups=None` gives the plain AUC. NaN if no
    group has both classes.

    Example:
    >>> round(group_auc([1, 0, 0, 1, 1, 0], [.9, .5, .9, .3, .2, .8], list("uuuvww")), 4)
    0.45
    """
    labels = np.asarray(labels, float).ravel()
    scores = np.asarray(scores, float).ravel()
    weights = np.ones_like(labels) if weights is None else np.asarray(weights, float).ravel()
    codes = np.zeros(len(labels), int) if groups is None else _codes(groups)
    keep = (labels >= 0) & (weights > 0)
    labels, scores, weights, codes = labels[keep], scores[keep], weights[keep], codes[keep]
    if len(labels) == 0:
        return float("nan")
    order = np.lexsort((scores, codes))
    g, s = codes[order], scores[order]
    pos = (weights * (labels > 0))[order]
    neg = (weights * (labels <= 0))[order]
    new_run = np.r_[True, (g[1:] != g[:-1]) | (s[1:] != s[:-1])]
    run = np.cumsum(new_run) - 1
    run_pos, run_neg = np.bincount(run, pos), np.bincount(run, neg)
    run_group = g[new_run]
    below = np.cumsum(run_neg) - run_neg  # negatives strictly below, whole stream
    first = np.r_[True, run_group[1:] != run_group[:-1]]
    below -= np.repeat(below[first], np.diff(np.r_[np.flatnonzero(first), len(run_group)]))
    groups_n = run_group.max() + 1
    pairs = np.bincount(run_group, run_pos * (below + 0.5 * run_neg), groups_n)
    gp, gn = np.bincount(run_group, run_pos, groups_n), np.bincount(run_group, run_neg, groups_n)
    both = (gp > 0) & (gn > 0)
    if not both.any():
        return float("nan")
    size = (gp + gn)[both]
    return float(np.sum(pairs[both] / (gp[both] * gn[both]) * size) / size.sum())


def auc(labels, scores, weights=None):
    """ROC AUC (sklearn's `roc_auc_score`, ties 1/2); NaN with one class."""
    return group_auc(labels, scores, None, weights)


def log_loss(labels, probs, weights=None):
    """(Weighted) mean binary cross-entropy over rows with label >= 0 (probs
    clipped to [1e-7, 1 - 1e-7])."""
    labels = np.asarray(labels, float).ravel()
    probs = np.clip(np.asarray(probs, float).ravel(), EPSILON, 1 - EPSILON)
    weights = np.ones_like(labels) if weights is None else np.asarray(weights, float).ravel()
    keep = (labels >= 0) & (weights > 0)
    if not keep.any():
        return float("nan")
    y, p = labels[keep], probs[keep]
    return float(-np.average(y * np.log(p) + (1 - y) * np.log1p(-p), weights=weights[keep]))


def _ranked(codes, scores):
    """Rows in (list, score descending) order, each row's 0-based rank in its
    list, and the run id of each ranked row: a run is a set of rows of one
    list with equal scores (a tie)."""
    order = np.lexsort((-scores, codes))
    c, s = codes[order], scores[order]
    starts = np.r_[0, np.flatnonzero(c[1:] != c[:-1]) + 1]
    rank = np.arange(len(c)) - np.repeat(starts, np.diff(np.r_[starts, len(c)]))
    run = np.cumsum(np.r_[True, (c[1:] != c[:-1]) | (s[1:] != s[:-1])]) - 1
    return order, rank, run


def _dcg(codes, gains, scores, k, num_lists):
    """DCG@k per list; a tie's rows share the tie's mean gain: the expected
    DCG over the random orders of the tie (sklearn's `ndcg_score`)."""
    order, rank, run = _ranked(codes, scores)
    discount = np.where(rank < k, 1.0 / np.log2(rank + 2.0), 0.0)
    run_gain = np.bincount(run, gains[order]) / np.bincount(run)
    run_list = codes[order][np.r_[True, run[1:] != run[:-1]]]
    return np.bincount(run_list, run_gain * np.bincount(run, discount), num_lists)


def ndcg_per_list(list_ids, gains, scores, k=10):
    """NDCG@k of each list with explicit (non-negative) gains.

    DCG@k = Σ_{rank ≤ k} gain / log2(rank + 1); NDCG = DCG / ideal DCG (the
    list sorted by gain). Tied scores get the expected DCG over the orders of
    the tie, as sklearn's `ndcg_score` (`ignore_ties=False`).

    Args:
        list_ids: `[N]` list (request or query) of each row.
        gains: `[N]` non-negative gains.
        scores: `[N]` scores.
        k: cut-off.

    Returns:
        `(list_keys, ndcg)`: the sorted distinct list ids and float64 `[L]`
        values, NaN for a list whose ideal DCG is 0.

    Example:
    >>> keys, values = ndcg_per_list([7, 7, 8, 8], [0, 1, 1, 0], [.9, .1, .5, .5], k=2)
    >>> keys.tolist(), [round(float(v), 4) for v in values]  # list 8: a tie of both rows
    ([7, 8], [0.6309, 0.8155])
    """
    keys, codes = np.unique(np.asarray(list_ids).ravel(), return_inverse=True)
    codes = codes.ravel()
    gains = np.asarray(gains, np.float64).ravel()
    scores = np.asarray(scores, np.float64).ravel()
    if len(codes) == 0:
        return keys, np.zeros(0)
    ideal = _dcg(codes, gains, gains, k, len(keys))
    actual = _dcg(codes, gains, scores, k, len(keys))
    with np.errstate(invalid="ignore", divide="ignore"):
        return keys, np.where(ideal > 0, actual / np.where(ideal > 0, ideal, 1.0), np.nan)


def mean_of_defined(values):
    """Mean of the non-NaN values; NaN if there are none."""
    values = np.asarray(values, np.float64)
    values = values[~np.isnan(values)]
    return float(values.mean()) if len(values) else float("nan")


def _list_rows(list_ids, labels, scores):
    labels = np.asarray(labels, float).ravel()
    keep = labels >= 0
    return _codes(np.asarray(list_ids).ravel()[keep]), labels[keep], \
        np.asarray(scores, float).ravel()[keep]


def ndcg_at_k(list_ids, labels, scores, k=10):
    """Mean NDCG@k over lists with a positive label; gain 2^y - 1, discount
    1/log2(rank + 1), ties as sklearn's `ndcg_score` (expected over their
    orders). Rows with label < 0 are left out. NaN without lists."""
    codes, labels, scores = _list_rows(list_ids, labels, scores)
    return mean_of_defined(ndcg_per_list(codes, 2.0 ** labels - 1.0, scores, k)[1])


def mrr(list_ids, labels, scores, k=None):
    """Mean reciprocal rank of the first label >= 1, over lists with a
    positive label (keras-rs convention; 0 for a list whose first hit is
    below `k`). Tied scores get the expectation over the orders of the tie.
    NaN without lists.

    Example:
    >>> mrr([1, 1, 1], [0, 1, 0], [.5, .5, .1])  # a tie of 2: E[1/rank] = (1 + 1/2) / 2
    0.75
    """
    codes, labels, scores = _list_rows(list_ids, labels, scores)
    if len(codes) == 0:
        return float("nan")
    n_lists = codes.max() + 1
    order, rank, run = _ranked(codes, scores)
    hit = labels[order] >= 1
    run_hits, run_size = np.bincount(run, hit), np.bincount(run)
    run_start = rank[np.r_[True, run[1:] != run[:-1]]]
    run_list = codes[order][np.r_[True, run[1:] != run[:-1]]]
    # The first run of each list that holds a hit: its m rows hold r hits,
    # and in a random order of the run the first hit is at offset j with
    # P(j) = C(m-1-j, r-1) / C(m, r).
    has_hit = np.flatnonzero(run_hits > 0)
    if len(has_hit) == 0:  # no list holds a positive (a small validation slice can)
        return float("nan")
    first_run = has_hit[np.r_[True, run_list[has_hit][1:] != run_list[has_hit][:-1]]]
    rows = np.flatnonzero(np.isin(run, first_run))
    m, r = run_size[run[rows]], run_hits[run[rows]]
    j = rank[rows] - run_start[run[rows]]
    log_p = (_log_choose(m - 1 - j, r - 1) - _log_choose(m, r))
    p = np.where(j <= m - r, np.exp(np.where(j <= m - r, log_p, 0.0)), 0.0)
    position = rank[rows] + 1.0
    reciprocal = np.where(position <= (np.inf if k is None else k), 1.0 / position, 0.0)
    value = np.bincount(codes[order][rows], p * reciprocal, n_lists)
    valid = np.bincount(codes, labels > 0, n_lists) > 0
    if not valid.any():
        return float("nan")
    return float(np.mean(value[valid]))


def _log_choose(n, r):
    n, r = np.asarray(n, float), np.asarray(r, float)
    safe = (r >= 0) & (n >= r)
    n, r = np.where(safe, n, 0.0), np.where(safe, r, 0.0)
    return gammaln(n + 1) - gammaln(r + 1) - gammaln(n - r + 1)


def macro_f1(labels, predictions):
    """sklearn `f1_score(average="macro")`: classes seen in labels or
    predictions; rows with label < 0 ignored."""
    labels, predictions = np.asarray(labels).ravel(), np.asarray(predictions).ravel()
    keep = labels >= 0
    labels, predictions = labels[keep], predictions[keep]
    classes = np.union1d(labels, predictions)
    if len(classes) == 0:
        return float("nan")
    f1 = [2 * np.sum((labels == c) & (predictions == c))
          / (np.sum(labels == c) + np.sum(predictions == c)) for c in classes]
    return float(np.mean(f1))


def rela_impr(auc_value, base_auc):
    """RelaImpr = ((AUC - 0.5) / (AUC_base - 0.5) - 1) · 100 %."""
    return ((auc_value - 0.5) / (base_auc - 0.5) - 1.0) * 100.0


def _column(data, key):
    value = data[key]
    value = value.to_numpy() if hasattr(value, "to_numpy") else np.asarray(value)
    if value.dtype == object and len(value) and np.ndim(value[0]) > 0:
        value = np.stack(value)
    return value


def evaluate_predictions(data, *, score_key="score", label_key="click",
                         user_key="user_id", query_key="query_id", list_key="request_id",
                         rank_label_key=None, k=10, relevance_key="relevance",
                         relevance_probs_key="relevance_probs",
                         activity_key="user_event_count", weight_key="sample_weight",
                         low_max=DEFAULT_LOW_MAX):
    """All evaluation metrics of a table of scored impressions, in numpy.

    Args:
        data: a DataFrame or a dict of equal-length arrays. Columns used when
            present: `score_key` (P(click) or any score), `label_key` (0/1,
            -1 missing), `user_key`, `query_key`, `list_key`,
            `rank_label_key`, `relevance_key` with `relevance_probs_key`
            (`[N, K]`), `activity_key`, `weight_key`.
        rank_label_key: graded label for NDCG/MRR (e.g. `"relevance"` or a
            true click probability); default `label_key`.
        k: NDCG cut-off.
        weight_key: sample weights: AUC, GAUC (n_g = the group's summed
            weights) and log loss are weighted; a row of weight 0 leaves
            every metric.
        low_max: the largest user event count still in the `low` bucket.

    Returns:
        dict: `count`, `auc`, `gauc_user`, `gauc_query`, `log_loss` (only
        when every score is in [0, 1]), `ndcg_at_<k>`, `mrr`,
        `relevance_accuracy`, `relevance_macro_f1`, and — with
        `activity_key` — each of them per bucket as `<name>/<bucket>`.
        Metrics whose columns are absent are left out; undefined ones are NaN.

    Example:
    >>> out = evaluate_predictions({"click": [1, 0, 1, 0], "score": [.9, .2, .3, .4],
    ...                             "user_id": ["a", "a", "b", "b"],
    ...                             "request_id": [1, 1, 2, 2]})
    >>> out["auc"], out["gauc_user"], out["mrr"]
    (0.75, 0.5, 0.75)
    """
    columns = {key: _column(data, key) for key in
               (score_key, label_key, user_key, query_key, list_key, rank_label_key,
                relevance_key, relevance_probs_key, activity_key, weight_key)
               if key is not None and key in data}
    if weight_key in columns:
        kept = columns[weight_key].astype(float) > 0
        columns = {key: value[kept] for key, value in columns.items()}
    out = _metrics(columns, score_key, label_key, user_key, query_key, list_key,
                   rank_label_key or label_key, k, relevance_key, relevance_probs_key,
                   weight_key)
    if activity_key in columns:
        bucket = activity_bucket(columns[activity_key], low_max)
        for index, name in enumerate(ACTIVITY_BUCKETS):
            part = {key: value[bucket == index] for key, value in columns.items()}
            sliced = _metrics(part, score_key, label_key, user_key, query_key, list_key,
                              rank_label_key or label_key, k, relevance_key,
                              relevance_probs_key, weight_key)
            out.update({f"{key}/{name}": value for key, value in sliced.items()})
    return out


def _metrics(c, score_key, label_key, user_key, query_key, list_key, rank_label_key, k,
             relevance_key, relevance_probs_key, weight_key):
    out = {}
    if score_key in c and label_key in c:
        scores, labels = c[score_key].astype(float), c[label_key].astype(float)
        weights = c[weight_key].astype(float) if weight_key in c else None
        out["count"] = int(np.sum(labels >= 0))
        out["auc"] = auc(labels, scores, weights)
        for name, key in (("gauc_user", user_key), ("gauc_query", query_key)):
            if key in c:
                out[name] = group_auc(labels, scores, c[key], weights)
        if scores.size == 0 or (scores.min() >= 0 and scores.max() <= 1):
            out["log_loss"] = log_loss(labels, scores, weights)
    if score_key in c and list_key in c and rank_label_key in c:
        args = (c[list_key], c[rank_label_key].astype(float), c[score_key].astype(float))
        out[f"ndcg_at_{k}"] = ndcg_at_k(*args, k=k)
        out["mrr"] = mrr(*args)
    if relevance_key in c and relevance_probs_key in c:
        levels = c[relevance_key].astype(int)
        predicted = np.argmax(c[relevance_probs_key], axis=-1)
        keep = levels >= 0
        out["relevance_accuracy"] = float(np.mean(predicted[keep] == levels[keep])) \
            if keep.any() else float("nan")
        out["relevance_macro_f1"] = macro_f1(levels, predicted)
    return out
