"""Plain-numpy metrics: the reference the Keras metrics are tested against,
and the evaluator for scores that are already numpy arrays (e.g. the full
coarse-ranking candidate space of the simulator).

Same definitions as the Keras metrics of this package (see `gauc.py`,
`ranking.py`); one difference: an undefined value (no group with both
classes, no list with a positive) is NaN here, 0 in the Keras metrics.
"""

import numpy as np

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


def log_loss(labels, probs):
    """Mean binary cross-entropy over rows with label >= 0 (probs clipped to
    [1e-7, 1 - 1e-7])."""
    labels = np.asarray(labels, float).ravel()
    probs = np.clip(np.asarray(probs, float).ravel(), EPSILON, 1 - EPSILON)
    keep = labels >= 0
    if not keep.any():
        return float("nan")
    y, p = labels[keep], probs[keep]
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def _positions(codes, scores, seed):
    """Row order by (list, score desc, random tie-break) and 0-based rank."""
    tie = np.random.default_rng(seed).random(len(codes))
    order = np.lexsort((tie, -scores, codes))
    sorted_codes = codes[order]
    starts = np.r_[0, np.flatnonzero(sorted_codes[1:] != sorted_codes[:-1]) + 1]
    rank = np.arange(len(codes)) - np.repeat(starts, np.diff(np.r_[starts, len(codes)]))
    return order, rank


def _list_rows(list_ids, labels, scores):
    labels = np.asarray(labels, float).ravel()
    keep = labels >= 0
    return _codes(np.asarray(list_ids).ravel()[keep]), labels[keep], \
        np.asarray(scores, float).ravel()[keep]


def ndcg_at_k(list_ids, labels, scores, k=10, seed=0):
    """Mean NDCG@k over lists with a positive label; gain 2^y - 1, discount
    1/log2(rank + 1); ties broken at random (`seed`). NaN without lists."""
    codes, labels, scores = _list_rows(list_ids, labels, scores)
    if len(codes) == 0:
        return float("nan")
    n_lists = codes.max() + 1
    gains = 2.0 ** labels - 1.0

    def dcg(order, rank):
        top = rank < k
        return np.bincount(codes[order][top], gains[order][top] / np.log2(rank[top] + 2.0), n_lists)

    ideal = dcg(*_positions(codes, labels, seed))
    valid = ideal > 0
    if not valid.any():
        return float("nan")
    return float(np.mean(dcg(*_positions(codes, scores, seed))[valid] / ideal[valid]))


def mrr(list_ids, labels, scores, k=None, seed=0):
    """Mean reciprocal rank of the first label >= 1, over lists with a
    positive label (keras-rs convention); ties at random. NaN without lists."""
    codes, labels, scores = _list_rows(list_ids, labels, scores)
    if len(codes) == 0:
        return float("nan")
    n_lists = codes.max() + 1
    order, rank = _positions(codes, scores, seed)
    first = np.full(n_lists, np.inf)
    hit = labels[order] >= 1
    np.minimum.at(first, codes[order][hit], rank[hit] + 1.0)
    if k is not None:
        first[first > k] = np.inf
    valid = np.bincount(codes, labels > 0, n_lists) > 0
    if not valid.any():
        return float("nan")
    return float(np.mean(1.0 / first[valid]))


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
                         activity_key="user_event_count", low_max=DEFAULT_LOW_MAX, seed=0):
    """All evaluation metrics of a table of scored impressions, in numpy.

    Args:
        data: a DataFrame or a dict of equal-length arrays. Columns used when
            present: `score_key` (P(click) or any score), `label_key` (0/1,
            -1 missing), `user_key`, `query_key`, `list_key`,
            `rank_label_key`, `relevance_key` with `relevance_probs_key`
            (`[N, K]`), `activity_key`.
        rank_label_key: graded label for NDCG/MRR (e.g. `"relevance"` or a
            true click probability); default `label_key`.
        k: NDCG cut-off.
        low_max, seed: activity bucket bound; ranking tie-break seed.

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
                relevance_key, relevance_probs_key, activity_key)
               if key is not None and key in data}
    out = _metrics(columns, score_key, label_key, user_key, query_key, list_key,
                   rank_label_key or label_key, k, relevance_key, relevance_probs_key, seed)
    if activity_key in columns:
        bucket = activity_bucket(columns[activity_key], low_max)
        for index, name in enumerate(ACTIVITY_BUCKETS):
            part = {key: value[bucket == index] for key, value in columns.items()}
            sliced = _metrics(part, score_key, label_key, user_key, query_key, list_key,
                              rank_label_key or label_key, k, relevance_key,
                              relevance_probs_key, seed)
            out.update({f"{key}/{name}": value for key, value in sliced.items()})
    return out


def _metrics(c, score_key, label_key, user_key, query_key, list_key, rank_label_key, k,
             relevance_key, relevance_probs_key, seed):
    out = {}
    if score_key in c and label_key in c:
        scores, labels = c[score_key].astype(float), c[label_key].astype(float)
        out["count"] = int(np.sum(labels >= 0))
        out["auc"] = auc(labels, scores)
        for name, key in (("gauc_user", user_key), ("gauc_query", query_key)):
            if key in c:
                out[name] = group_auc(labels, scores, c[key])
        if scores.size == 0 or (scores.min() >= 0 and scores.max() <= 1):
            out["log_loss"] = log_loss(labels, scores)
    if score_key in c and list_key in c and rank_label_key in c:
        args = (c[list_key], c[rank_label_key].astype(float), c[score_key].astype(float))
        out[f"ndcg_at_{k}"] = ndcg_at_k(*args, k=k, seed=seed)
        out["mrr"] = mrr(*args, seed=seed)
    if relevance_key in c and relevance_probs_key in c:
        levels = c[relevance_key].astype(int)
        predicted = np.argmax(c[relevance_probs_key], axis=-1)
        keep = levels >= 0
        out["relevance_accuracy"] = float(np.mean(predicted[keep] == levels[keep])) \
            if keep.any() else float("nan")
        out["relevance_macro_f1"] = macro_f1(levels, predicted)
    return out
